"""The fake backend's web-app functions a test needs (reference-worker.md §2.4, §4.6).

They authenticate like the reference's `SessionIdArg`: the `sessionId` argument names a row
of `sessions`, which names the logged-in user; ownership goes through the machine's `userId`.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from oco.testing._fake_convex_store import Doc, FunctionFailure, Store, function, optional, string
from oco.testing._fake_convex_worker_api import (
    _session,
    message_view,
    nanoid,
    public,
    update_machine_status,
)


def session_name(content: str) -> str:
    """`generateSessionName`: whitespace collapsed; 'New Chat' if empty; 50 chars + '...'."""
    text = re.sub(r"\s+", " ", content.strip())
    if not text:
        return "New Chat"
    if len(text) <= 50:
        return text
    return text[:50].strip() + "..."


def user_of(db: Store, session_id: str) -> Doc:
    session = db.first("sessions", sessionId=session_id)
    user = db.first("users", userId=session["userId"]) if session else None
    if user is None:
        raise FunctionFailure("Unauthorized")
    return user


def _owned_worker(db: Store, args: dict[str, Any]) -> Doc:
    user = user_of(db, args["sessionId"])
    worker = db.first("workers", workerId=args["workerId"])
    if worker is None:
        raise FunctionFailure("Worker not found")
    machine = db.first("machines", machineId=worker["machineId"])
    if machine is None or machine["userId"] != user["userId"]:
        raise FunctionFailure("Unauthorized")
    return worker


def _owned_session(db: Store, args: dict[str, Any]) -> Doc:
    user = user_of(db, args["sessionId"])
    session = _session(db, args["chatSessionId"])
    if session["userId"] != user["userId"]:
        raise FunctionFailure("Unauthorized")
    return session


@function("machines:create", "mutation", sessionId=string, machineId=string, name=string)
def create_machine(db: Store, args: dict[str, Any]) -> Any:
    user = user_of(db, args["sessionId"])
    if db.first("machines", machineId=args["machineId"]) is not None:
        raise FunctionFailure("Machine ID already exists. Please try again.")
    db.insert(
        "machines",
        {
            "machineId": args["machineId"], "name": args["name"], "status": "offline",
            "lastHeartbeat": db.now(), "userId": user["userId"],
        },
    )
    return {"machineId": args["machineId"], "name": args["name"]}


@function(
    "workers:create", "mutation",
    sessionId=string, machineId=string, workerId=string, name=optional(string),
)
def create_worker(db: Store, args: dict[str, Any]) -> Any:
    user = user_of(db, args["sessionId"])
    machine = db.first("machines", machineId=args["machineId"])
    if machine is None:
        raise FunctionFailure("Machine not found")
    if machine["userId"] != user["userId"]:
        raise FunctionFailure("Unauthorized")
    if db.first("workers", machineId=args["machineId"], workerId=args["workerId"]):
        raise FunctionFailure("Worker ID already exists. Please try again.")
    secret = secrets.token_urlsafe(32)  # what the reference meant to do (§1.4)
    db.insert(
        "workers",
        {
            "workerId": args["workerId"], "machineId": args["machineId"], "name": args.get("name"),
            "secret": secret, "approvalStatus": "pending", "status": "offline",
            "createdAt": db.now(),
        },
    )
    token = f"machine_{args['machineId']}:worker_{args['workerId']}:secret_{secret}"
    return {"workerId": args["workerId"], "token": token}


@function("workers:approve", "mutation", sessionId=string, workerId=string)
def approve(db: Store, args: dict[str, Any]) -> Any:
    worker = _owned_worker(db, args)
    user = user_of(db, args["sessionId"])
    db.patch(worker, approvalStatus="approved", approvedAt=db.now(), approvedBy=user["userId"])
    return {"success": True}


@function("workers:reject", "mutation", sessionId=string, workerId=string)
def reject(db: Store, args: dict[str, Any]) -> Any:
    db.delete(_owned_worker(db, args))  # the reference deletes the row
    return {"success": True}


@function("workers:remove", "mutation", sessionId=string, workerId=string)
def remove(db: Store, args: dict[str, Any]) -> Any:
    worker = _owned_worker(db, args)
    db.delete(worker)
    update_machine_status(db, worker["machineId"])
    return {"success": True}


@function("workers:requestConnect", "mutation", workerId=string)
def request_connect(db: Store, args: dict[str, Any]) -> Any:
    worker = db.first("workers", workerId=args["workerId"])  # no auth, as in the reference
    if worker is None:
        raise FunctionFailure("Worker not found")
    if worker["approvalStatus"] != "approved":
        raise FunctionFailure("Worker is not approved")
    if worker["status"] != "online":
        return {
            "success": False, "workerId": worker["workerId"], "error": "WORKER_OFFLINE",
            "message": "Worker is not online. Please ensure the worker is running.",
        }
    now = db.now()
    db.patch(worker, connectRequestedAt=now)
    return {"success": True, "workerId": worker["workerId"], "requestedAt": now}


@function("chat:startSession", "mutation", sessionId=string, workerId=string, model=optional(string))
def start_session(db: Store, args: dict[str, Any]) -> Any:
    user = user_of(db, args["sessionId"])
    worker = db.first("workers", workerId=args["workerId"])
    if worker is None:
        raise FunctionFailure("Worker not found")
    if worker["status"] != "online":
        raise FunctionFailure("Worker is not online")
    machine = db.first("machines", machineId=worker["machineId"])
    if machine is None or machine["userId"] != user["userId"]:
        raise FunctionFailure("Unauthorized")
    chat_session_id = nanoid()
    now = db.now()
    db.insert(
        "chatSessions",
        {
            "sessionId": chat_session_id, "workerId": worker["workerId"],
            "userId": user["userId"], "status": "active", "createdAt": now, "lastActivity": now,
        },
    )
    return chat_session_id


@function("chat:endSession", "mutation", sessionId=string, chatSessionId=string)
def end_session(db: Store, args: dict[str, Any]) -> Any:
    session = _owned_session(db, args)
    db.patch(session, status="inactive", lastActivity=db.now())
    return None


@function(
    "chat:sendMessage", "mutation",
    sessionId=string, chatSessionId=string, content=string, model=string,
)
def send_message(db: Store, args: dict[str, Any]) -> Any:
    session = _owned_session(db, args)
    chat_session_id = session["sessionId"]
    if session["status"] != "active":  # auto-resume: this one becomes the worker's only active
        for other in db.find("chatSessions", workerId=session["workerId"], status="active"):
            db.patch(other, status="inactive")
        db.patch(session, status="active")
    messages = db.find("chatMessages", sessionId=chat_session_id)
    if not session.get("name") and not any(m["role"] == "user" for m in messages):
        db.patch(session, name=session_name(args["content"]))
    t = db.now()
    common = {"sessionId": chat_session_id, "model": args["model"]}
    db.insert(
        "chatMessages",
        {"messageId": nanoid(), "role": "user", "content": args["content"], "timestamp": t,
         "completed": True, **common},
    )
    assistant_id = nanoid()
    db.insert(
        "chatMessages",
        {"messageId": assistant_id, "role": "assistant", "content": "", "timestamp": t + 1,
         "completed": False, **common},
    )
    db.patch(session, lastActivity=t, model=args["model"])
    return assistant_id


@function("chat:getMessages", "query", sessionId=string, chatSessionId=string)
def get_messages(db: Store, args: dict[str, Any]) -> Any:
    session = _owned_session(db, args)
    found = db.find("chatMessages", sessionId=session["sessionId"])
    return sorted((message_view(m) for m in found), key=lambda m: m["timestamp"])


@function("chat:subscribeToChunks", "query", sessionId=string, messageId=string)
def subscribe_to_chunks(db: Store, args: dict[str, Any]) -> Any:
    user = user_of(db, args["sessionId"])
    chunks = db.find("chatChunks", messageId=args["messageId"])
    owned = [
        c for c in chunks
        if (s := db.first("chatSessions", sessionId=c["sessionId"])) and s["userId"] == user["userId"]
    ]
    return [
        public(c, "chunkId", "messageId", "sessionId", "chunk", "sequence", "timestamp")
        for c in sorted(owned, key=lambda c: c["sequence"])
    ]


@function("workerModels:getModels", "query", workerId=string)
def get_models(db: Store, args: dict[str, Any]) -> Any:
    row = db.first("workerModels", workerId=args["workerId"])
    return None if row is None else public(row, "workerId", "models", "updatedAt")
