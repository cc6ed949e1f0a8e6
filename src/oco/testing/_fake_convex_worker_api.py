"""The fake backend's worker-facing functions (reference-worker.md §2.2), texts and shapes kept.

Bugs of the reference backend that define the contract are kept too (e.g. `setOffline`
answering `sessionsTerminated` for a missing worker, `writeChunk` not de-duplicating).
"""

from __future__ import annotations

import secrets
from typing import Any

from oco.testing._fake_convex_store import (
    Doc,
    FunctionFailure,
    Store,
    array,
    function,
    obj,
    optional,
    string,
    number,
)

AUTH = {"machineId": string, "workerId": string, "secret": string}
_NANOID = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def nanoid() -> str:
    return "".join(secrets.choice(_NANOID) for _ in range(21))


def public(doc: Doc, *fields: str, **renames: str) -> dict[str, Any]:
    """The named fields of a document (absent ones left out, as Convex drops `undefined`)."""
    out = {f: doc[f] for f in fields if f in doc}
    out.update({wire: doc[f] for wire, f in renames.items() if f in doc})
    return out


def message_view(doc: Doc) -> dict[str, Any]:
    return public(
        doc, "sessionId", "role", "content", "reasoning", "otherParts", "timestamp",
        "completed", "model", id="messageId",
    )


def update_machine_status(db: Store, machine_id: str) -> None:
    """`internal.machines.updateMachineStatus`: online iff any of its workers is online."""
    machine = db.first("machines", machineId=machine_id)
    if machine is None:
        return
    online = any(w.get("status") == "online" for w in db.find("workers", machineId=machine_id))
    db.patch(machine, status="online" if online else "offline", lastHeartbeat=db.now())


def _authenticated(db: Store, args: dict[str, Any], missing: str) -> Doc:
    worker = db.first("workers", machineId=args["machineId"], workerId=args["workerId"])
    if worker is None:
        raise FunctionFailure(missing)
    if worker["secret"] != args["secret"]:
        raise FunctionFailure("Invalid worker secret. Authentication failed.")
    return worker


def _deactivate_sessions(db: Store, worker_id: str, **extra: Any) -> int:
    active = db.find("chatSessions", workerId=worker_id, status="active")
    for session in active:
        db.patch(session, status="inactive", **extra)
    return len(active)


@function("workers:register", "mutation", **AUTH, workingDirectory=string, username=string)
def register(db: Store, args: dict[str, Any]) -> Any:
    worker = _authenticated(db, args, "Worker not found. Please check your worker token.")
    where = {"workingDirectory": args["workingDirectory"], "username": args["username"]}
    if worker["approvalStatus"] == "approved":
        db.patch(worker, status="online", lastHeartbeat=db.now(), **where)
        update_machine_status(db, worker["machineId"])
        result = {"approvalStatus": "approved", "status": "online", "approved": True}
    else:  # pending, and also 'revoked', report pending
        db.patch(worker, **where)
        result = {"approvalStatus": "pending", "status": "offline", "approved": False}
    return {**result, **public(worker, "workerId", "name")}


@function("workers:heartbeat", "mutation", **AUTH)
def heartbeat(db: Store, args: dict[str, Any]) -> Any:
    worker = _authenticated(db, args, "Unauthorized: Worker not found")
    if worker["approvalStatus"] == "approved":
        db.patch(worker, status="online", lastHeartbeat=db.now())
        update_machine_status(db, worker["machineId"])
    return None


@function("workers:setOffline", "mutation", **AUTH)
def set_offline(db: Store, args: dict[str, Any]) -> Any:
    worker = db.first("workers", machineId=args["machineId"], workerId=args["workerId"])
    if worker is None:
        return {"sessionsTerminated": 0.0}
    _authenticated(db, args, "Worker not found")
    db.patch(worker, status="offline", lastHeartbeat=db.now())
    count = _deactivate_sessions(db, worker["workerId"])
    update_machine_status(db, worker["machineId"])
    return {"sessionsInactivated": float(count)}


@function("workers:markConnected", "mutation", **AUTH)
def mark_connected(db: Store, args: dict[str, Any]) -> Any:
    worker = _authenticated(db, args, "Worker not found")
    db.patch(worker, connectedAt=db.now())
    count = _deactivate_sessions(db, worker["workerId"], opencodeSessionId=None)
    return {"success": True, "sessionsInvalidated": float(count)}


MODEL = obj({"id": string, "name": string, "provider": string})


@function("workerModels:updateModels", "mutation", workerId=string, models=array(MODEL))
def update_models(db: Store, args: dict[str, Any]) -> Any:
    worker_id = args["workerId"]
    if db.first("workers", workerId=worker_id) is None:
        raise FunctionFailure(f"Worker {worker_id} not found")
    row = db.first("workerModels", workerId=worker_id)
    if row is None:
        db.insert("workerModels", {"workerId": worker_id, "models": args["models"], "updatedAt": db.now()})
    else:
        db.patch(row, models=args["models"], updatedAt=db.now())
    return {"success": True, "modelsCount": float(len(args["models"]))}


@function("workers:getByMachineAndWorker", "query", machineId=string, workerId=string)
def get_by_machine_and_worker(db: Store, args: dict[str, Any]) -> Any:
    worker = db.first("workers", machineId=args["machineId"], workerId=args["workerId"])
    if worker is None:
        return None
    return public(
        worker, "workerId", "machineId", "name", "approvalStatus", "status", "createdAt",
        "approvedAt", "lastHeartbeat", "connectRequestedAt", "connectedAt",
        "workingDirectory", "username",
    )


@function("chat:subscribeToWorkerSessions", "query", workerId=string)
def subscribe_to_worker_sessions(db: Store, args: dict[str, Any]) -> Any:
    return [
        public(s, "sessionId", "workerId", "model", "status", "createdAt", "lastActivity")
        for s in db.find("chatSessions", workerId=args["workerId"], status="active")
    ]


@function("chat:subscribeToWorkerMessages", "query", workerId=string)
def subscribe_to_worker_messages(db: Store, args: dict[str, Any]) -> Any:
    messages = [
        message_view(m)
        for s in db.find("chatSessions", workerId=args["workerId"])
        for m in db.find("chatMessages", sessionId=s["sessionId"])
    ]
    return sorted(messages, key=lambda m: m["timestamp"])


@function("chat:getActiveSessions", "query", workerId=string)
def get_active_sessions(db: Store, args: dict[str, Any]) -> Any:
    return [
        public(
            s, "opencodeSessionId", "workerId", "model", "status", "createdAt", "lastActivity",
            "name", "lastSyncedNameAt", "deletedInOpencode", chatSessionId="sessionId",
        )
        for s in db.find("chatSessions", workerId=args["workerId"], status="active")
    ]


@function("chat:getSessionName", "query", chatSessionId=string, workerId=string)
def get_session_name(db: Store, args: dict[str, Any]) -> Any:
    session = db.first("chatSessions", sessionId=args["chatSessionId"])
    if session is None or session["workerId"] != args["workerId"]:
        return None
    return session.get("name") or None


def _session(db: Store, chat_session_id: str) -> Doc:
    session = db.first("chatSessions", sessionId=chat_session_id)
    if session is None:
        raise FunctionFailure("Session not found")
    return session


def _message(db: Store, message_id: str) -> Doc:
    message = db.first("chatMessages", messageId=message_id)
    if message is None:
        raise FunctionFailure("Message not found")
    return message


@function("chat:sessionReady", "mutation", chatSessionId=string, opencodeSessionId=optional(string))
def session_ready(db: Store, args: dict[str, Any]) -> Any:
    session = _session(db, args["chatSessionId"])
    db.patch(session, opencodeSessionId=args.get("opencodeSessionId"), lastActivity=db.now())
    return None


@function(
    "chat:writeChunk", "mutation",
    chatSessionId=string, messageId=string, chunk=string, sequence=number,
)
def write_chunk(db: Store, args: dict[str, Any]) -> Any:
    session = _session(db, args["chatSessionId"])
    _message(db, args["messageId"])  # the reference does not check it belongs to the session
    db.insert(
        "chatChunks",
        {
            "chunkId": nanoid(), "messageId": args["messageId"], "sessionId": session["sessionId"],
            "chunk": args["chunk"], "sequence": args["sequence"], "timestamp": db.now(),
        },
    )
    db.patch(session, lastActivity=db.now())
    return None


@function(
    "chat:completeStructuredMessage", "mutation",
    chatSessionId=string, messageId=string, content=string,
    reasoning=optional(string), otherParts=optional(string),
)
def complete_structured_message(db: Store, args: dict[str, Any]) -> Any:
    session = _session(db, args["chatSessionId"])
    message = _message(db, args["messageId"])
    db.patch(
        message, content=args["content"], reasoning=args.get("reasoning"),
        otherParts=args.get("otherParts"), completed=True,
    )
    db.patch(session, lastActivity=db.now())
    return None


@function("chat:completeMessage", "mutation", chatSessionId=string, messageId=string, content=string)
def complete_message(db: Store, args: dict[str, Any]) -> Any:
    session = _session(db, args["chatSessionId"])
    message = _message(db, args["messageId"])
    db.patch(message, content=args["content"], completed=True)
    db.patch(session, lastActivity=db.now())
    return None
