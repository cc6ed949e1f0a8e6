"""The fake backend's web-app functions (starting sessions, sending
messages, naming, approval), as the reference has them.

They authenticate like the reference's `SessionIdArg`: the `sessionId` argument names a row
of `sessions`, which names the logged-in user (`getAuthUserOptional`: null when either is
missing); ownership goes through the machine's `userId`. Mutations throw
`Unauthorized: Must be logged in to ...` for a stranger; queries answer `[]` or `null`.
"""

from __future__ import annotations

import re
from typing import Any

from oco.testing._fake_convex_store import Doc, FunctionFailure, Store, function, optional, string
from oco.testing._fake_convex_worker_api import (
    chat_session,
    js_length,
    message_view,
    nanoid,
    public,
    session_row,
    update_machine_status,
    worker_record,
)


def session_name(content: str) -> str:
    """`generateSessionName`: whitespace collapsed; 'New Chat' if empty; 50 chars + '...'."""
    text = re.sub(r"\s+", " ", content.strip())
    if not text:
        return "New Chat"
    if len(text) <= 50:
        return text
    return text[:50].strip() + "..."


def user_of(db: Store, session_id: str) -> Doc | None:
    """`getAuthUserOptional`: the logged-in user of a web session, or None."""
    session = db.first("sessions", sessionId=session_id)
    return db.first("users", userId=session["userId"]) if session else None


def _logged_in(db: Store, args: dict[str, Any], to: str) -> Doc:
    user = user_of(db, args["sessionId"])
    if user is None:
        raise FunctionFailure(f"Unauthorized: Must be logged in to {to}")
    return user


def _owns(db: Store, user: Doc, machine_id: str) -> bool:
    machine = db.first("machines", machineId=machine_id)
    return machine is not None and machine["userId"] == user["userId"]


def _owned_worker(db: Store, args: dict[str, Any], to: str) -> tuple[Doc, Doc]:
    """approve / reject / remove / getToken: logged in, the worker (by id alone), then ownership."""
    user = _logged_in(db, args, to)
    worker = db.first("workers", workerId=args["workerId"])
    if worker is None:
        raise FunctionFailure("Worker not found")
    if not _owns(db, user, worker["machineId"]):
        raise FunctionFailure("Unauthorized: You do not own this machine")
    return user, worker


def _owned_session(db: Store, args: dict[str, Any], to: str) -> Doc:
    user = _logged_in(db, args, to)
    session = chat_session(db, args["chatSessionId"])
    if session["userId"] != user["userId"]:
        raise FunctionFailure("Unauthorized: You do not own this session")
    return session


def _readable_session(db: Store, args: dict[str, Any]) -> Doc | None:
    """The queries' check: the user's own session, else None (they answer `[]`)."""
    user = user_of(db, args["sessionId"])
    session = db.first("chatSessions", sessionId=args["chatSessionId"]) if user else None
    if session is None or user is None or session["userId"] != user["userId"]:
        return None
    return session


# -- machines ----------------------------------------------------------------------------------


@function("machines:create", "mutation", sessionId=string, machineId=string, name=string)
def create_machine(db: Store, args: dict[str, Any]) -> Any:
    user = _logged_in(db, args, "create a machine")
    if db.first("machines", machineId=args["machineId"]) is not None:
        raise FunctionFailure("Machine ID already exists. Please try again.")
    db.insert(
        "machines",
        {
            "machineId": args["machineId"],
            "name": args["name"],
            "status": "offline",
            "lastHeartbeat": db.now(),
            "userId": user["userId"],
        },
    )
    return {"machineId": args["machineId"], "name": args["name"]}


@function("machines:deleteMachine", "mutation", sessionId=string, machineId=string)
def delete_machine(db: Store, args: dict[str, Any]) -> Any:
    user = _logged_in(db, args, "delete a machine")
    machine = db.first("machines", machineId=args["machineId"])
    if machine is None:
        raise FunctionFailure("Machine not found")
    if machine["userId"] != user["userId"]:
        raise FunctionFailure("Unauthorized: You can only delete your own machines")
    db.delete(machine)  # its workers stay
    return None


@function("machines:list", "query", sessionId=string)
def list_machines(db: Store, args: dict[str, Any]) -> Any:
    user = user_of(db, args["sessionId"])
    if user is None:
        return []
    out = []
    for machine in db.find("machines", userId=user["userId"]):
        workers = db.find("workers", machineId=machine["machineId"])
        out.append(
            {
                "machineId": machine["machineId"],
                "name": machine["name"],
                "status": machine["status"],
                "lastSeen": machine["lastHeartbeat"],
                "assistantCount": float(len(workers)),
                "workerCounts": {
                    "online": float(sum(w["status"] == "online" for w in workers)),
                    "offline": float(sum(w["status"] == "offline" for w in workers)),
                    "pending": float(sum(w["approvalStatus"] == "pending" for w in workers)),
                },
            }
        )
    return out


# -- workers -----------------------------------------------------------------------------------


def _token(worker: Doc) -> str:
    return f"machine_{worker['machineId']}:worker_{worker['workerId']}:secret_{worker['secret']}"


@function(
    "workers:create",
    "mutation",
    sessionId=string,
    machineId=string,
    workerId=string,
    name=optional(string),
)
def create_worker(db: Store, args: dict[str, Any]) -> Any:
    user = _logged_in(db, args, "create a worker")
    machine = db.first("machines", machineId=args["machineId"])
    if machine is None:
        raise FunctionFailure("Machine not found")
    if machine["userId"] != user["userId"]:
        raise FunctionFailure("Unauthorized: You do not own this machine")
    if db.first("workers", machineId=args["machineId"], workerId=args["workerId"]):
        raise FunctionFailure("Worker ID already exists. Please try again.")
    # The reference stores what `ctx.scheduler.runAfter(0, generateSecret)` resolves to: the
    # id of the scheduled function's document, not the random secret the reference meant to
    # generate (its code stores the id).
    secret = db.convex_id()
    db.insert(
        "workers",
        {
            "workerId": args["workerId"],
            "machineId": args["machineId"],
            "name": args.get("name"),
            "secret": secret,
            "approvalStatus": "pending",
            "status": "offline",
            "createdAt": db.now(),
        },
    )
    token = f"machine_{args['machineId']}:worker_{args['workerId']}:secret_{secret}"
    return {"workerId": args["workerId"], "token": token}


@function("workers:approve", "mutation", sessionId=string, workerId=string)
def approve(db: Store, args: dict[str, Any]) -> Any:
    user, worker = _owned_worker(db, args, "approve workers")
    db.patch(worker, approvalStatus="approved", approvedAt=db.now(), approvedBy=user["_id"])
    return {"success": True}


@function("workers:reject", "mutation", sessionId=string, workerId=string)
def reject(db: Store, args: dict[str, Any]) -> Any:
    _user, worker = _owned_worker(db, args, "reject workers")
    db.delete(worker)  # the reference deletes the row
    return {"success": True}


@function("workers:remove", "mutation", sessionId=string, workerId=string)
def remove(db: Store, args: dict[str, Any]) -> Any:
    _user, worker = _owned_worker(db, args, "remove workers")
    db.delete(worker)
    update_machine_status(db, worker["machineId"])
    return {"success": True}


def _owned_machine_workers(db: Store, args: dict[str, Any], **equal: Any) -> list[Doc]:
    user = user_of(db, args["sessionId"])
    if user is None or not _owns(db, user, args["machineId"]):
        return []
    return db.find("workers", machineId=args["machineId"], **equal)


@function("workers:list", "query", sessionId=string, machineId=string)
def list_workers(db: Store, args: dict[str, Any]) -> Any:
    return [
        worker_record(w, without=("connectRequestedAt", "connectedAt"))
        for w in _owned_machine_workers(db, args)
    ]


@function("workers:listPending", "query", sessionId=string, machineId=string)
def list_pending(db: Store, args: dict[str, Any]) -> Any:
    return [
        worker_record(w, without=("approvedAt", "lastHeartbeat", "connectRequestedAt", "connectedAt"))
        for w in _owned_machine_workers(db, args, approvalStatus="pending")
    ]


@function("workers:getToken", "query", sessionId=string, workerId=string)
def get_token(db: Store, args: dict[str, Any]) -> Any:
    _user, worker = _owned_worker(db, args, "get worker token")
    return {"workerId": worker["workerId"], "token": _token(worker)}


@function("workers:requestConnect", "mutation", workerId=string)
def request_connect(db: Store, args: dict[str, Any]) -> Any:
    db.log("[workers.requestConnect] Connect request for worker:", args["workerId"])
    worker = db.first("workers", workerId=args["workerId"])  # no auth, as in the reference
    if worker is None:
        raise FunctionFailure("Worker not found")
    if worker["approvalStatus"] != "approved":
        raise FunctionFailure("Worker is not approved")
    if worker["status"] != "online":
        return {
            "success": False,
            "workerId": args["workerId"],
            "error": "WORKER_OFFLINE",
            "message": "Worker is not online. Please ensure the worker is running.",
        }
    now = db.now()
    db.patch(worker, connectRequestedAt=now)
    db.log("[workers.requestConnect] Connect request sent at:", now)
    return {"success": True, "workerId": args["workerId"], "requestedAt": now}


# -- chat --------------------------------------------------------------------------------------


@function("chat:startSession", "mutation", sessionId=string, workerId=string)
def start_session(db: Store, args: dict[str, Any]) -> Any:
    db.log("[startSession] Called with:", {"workerId": args["workerId"]})
    user = _logged_in(db, args, "start a session")
    db.log("[startSession] User authenticated:", user["_id"])
    worker = db.first("workers", workerId=args["workerId"])
    if worker is None:
        raise FunctionFailure("Worker not found")
    db.log("[startSession] Worker found:", worker["workerId"], "status:", worker["status"])
    if worker["status"] != "online":
        raise FunctionFailure("Worker is not online")
    if not _owns(db, user, worker["machineId"]):
        raise FunctionFailure("Unauthorized: You do not own this worker")
    db.log("[startSession] Machine ownership verified")
    chat_session_id = nanoid()
    db.log("[startSession] Generated chatSessionId:", chat_session_id)
    now = db.now()
    db.insert(
        "chatSessions",
        {
            "sessionId": chat_session_id,
            "workerId": args["workerId"],
            "userId": user["userId"],
            "status": "active",
            "createdAt": now,
            "lastActivity": now,
        },
    )
    db.log("[startSession] Session created successfully")
    return chat_session_id


@function("chat:endSession", "mutation", sessionId=string, chatSessionId=string)
def end_session(db: Store, args: dict[str, Any]) -> Any:
    session = _owned_session(db, args, "end a session")
    db.patch(session, status="inactive", lastActivity=db.now())
    return None


@function(
    "chat:sendMessage",
    "mutation",
    sessionId=string,
    chatSessionId=string,
    content=string,
    model=string,
)
def send_message(db: Store, args: dict[str, Any]) -> Any:
    db.log(
        "[sendMessage] Called with:",
        {
            "chatSessionId": args["chatSessionId"],
            "model": args["model"],
            "contentLength": js_length(args["content"]),
        },
    )
    session = _owned_session(db, args, "send a message")
    chat_session_id = args["chatSessionId"]
    t = db.now()
    was_named = bool(session.get("name"))
    if session["status"] == "inactive":  # auto-resume: this one becomes the worker's only active
        db.log("[sendMessage] Auto-resuming inactive session:", chat_session_id)
        others = db.find("chatSessions", workerId=session["workerId"], status="active")
        for other in others:
            db.patch(other, status="inactive", lastActivity=t)
        db.patch(session, status="active", lastActivity=t)
        db.log("[sendMessage] Resumed session, closed", float(len(others)), "other sessions")
    user_messages = db.find("chatMessages", sessionId=chat_session_id, role="user")
    if not user_messages and not was_named:
        name = session_name(args["content"])
        db.log("[sendMessage] Auto-naming session:", name)
        db.patch(session, name=name, lastActivity=t)
    common = {"sessionId": chat_session_id, "model": args["model"]}
    db.insert(
        "chatMessages",
        {
            "messageId": nanoid(),
            "role": "user",
            "content": args["content"],
            "timestamp": t,
            "completed": True,
            **common,
        },
    )
    assistant_id = nanoid()
    db.insert(
        "chatMessages",
        {
            "messageId": assistant_id,
            "role": "assistant",
            "content": "",
            "timestamp": t + 1,
            "completed": False,
            **common,
        },
    )
    db.patch(session, lastActivity=t, model=args["model"])
    db.log("[sendMessage] Messages created with model:", args["model"])
    return assistant_id


@function("chat:getSession", "query", sessionId=string, chatSessionId=string)
def get_session(db: Store, args: dict[str, Any]) -> Any:
    db.log("[getSession] Called with chatSessionId:", args["chatSessionId"])
    user = user_of(db, args["sessionId"])
    if user is None:
        db.log("[getSession] No user found")
        return None
    db.log("[getSession] User found:", user["_id"])
    session = db.first("chatSessions", sessionId=args["chatSessionId"])
    db.log("[getSession] Session found:", "yes" if session else "no")
    if session is None:
        return None
    if session["userId"] != user["userId"]:
        db.log("[getSession] User does not own session")
        return None
    db.log("[getSession] Returning session:", session["sessionId"])
    return session_row(session)


@function("chat:listSessions", "query", sessionId=string, workerId=string)
def list_sessions(db: Store, args: dict[str, Any]) -> Any:
    user = user_of(db, args["sessionId"])
    worker = db.first("workers", workerId=args["workerId"]) if user else None
    if user is None or worker is None or not _owns(db, user, worker["machineId"]):
        return []
    sessions = db.find("chatSessions", workerId=args["workerId"], userId=user["userId"])
    sessions.sort(key=lambda s: -s["lastActivity"])  # most recent first (a stable sort)
    return [
        public(s, "sessionId", "workerId", "name", "model", "status", "createdAt", "lastActivity")
        for s in sessions
    ]


def _session_messages(db: Store, args: dict[str, Any]) -> Any:
    if _readable_session(db, args) is None:
        return []
    found = db.find("chatMessages", sessionId=args["chatSessionId"])
    return [message_view(m) for m in sorted(found, key=lambda m: m["timestamp"])]


@function("chat:getMessages", "query", sessionId=string, chatSessionId=string)
def get_messages(db: Store, args: dict[str, Any]) -> Any:
    return _session_messages(db, args)


@function("chat:subscribeToMessages", "query", sessionId=string, chatSessionId=string)
def subscribe_to_messages(db: Store, args: dict[str, Any]) -> Any:
    return _session_messages(db, args)


@function("chat:subscribeToChunks", "query", sessionId=string, chatSessionId=string, messageId=string)
def subscribe_to_chunks(db: Store, args: dict[str, Any]) -> Any:
    if _readable_session(db, args) is None:
        return []
    # The chunks of the message, whichever session they belong to (the reference's check is
    # on chatSessionId only).
    chunks = sorted(db.find("chatChunks", messageId=args["messageId"]), key=lambda c: c["sequence"])
    return [public(c, "chunkId", "messageId", "sessionId", "chunk", "sequence", "timestamp") for c in chunks]


# -- models ------------------------------------------------------------------------------------


def _models(db: Store, args: dict[str, Any]) -> Any:
    row = db.first("workerModels", workerId=args["workerId"])
    return None if row is None else public(row, "models", "updatedAt")


@function("workerModels:getModels", "query", workerId=string)
def get_models(db: Store, args: dict[str, Any]) -> Any:
    return _models(db, args)


@function("workerModels:subscribeToModels", "query", workerId=string)
def subscribe_to_models(db: Store, args: dict[str, Any]) -> Any:
    return _models(db, args)
