"""The fake backend's worker-facing functions, the reference's texts and shapes kept.

Each follows the reference backend's source (`services/backend/convex/{workers,chat,
workerModels}.ts`, branch update-opencode-sdk): the same checks in the same order, the same
thrown texts, the same `console.log` lines, the same result fields (absent when `undefined`).
Bugs of the reference that define the contract are kept too (e.g. `setOffline` answering
`sessionsTerminated` for a missing worker, `writeChunk` not de-duplicating). One difference:
`updateMachineStatus`, which the reference schedules to run just after the mutation, runs
inside it here.
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
    number,
    obj,
    optional,
    string,
)
from oco.testing._fake_convex_values import UNDEFINED

AUTH: dict[str, Any] = {"machineId": string, "workerId": string, "secret": string}
_NANOID = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def js_length(text: str) -> float:
    """JavaScript's `text.length` (UTF-16 code units), as a Convex number."""
    return float(len(text.encode("utf-16-le", "surrogatepass")) // 2)


def nanoid() -> str:
    return "".join(secrets.choice(_NANOID) for _ in range(21))


def public(doc: Doc, *fields: str, **renames: str) -> dict[str, Any]:
    """The named fields of a document (absent ones left out, as Convex drops `undefined`)."""
    out = {f: doc[f] for f in fields if f in doc}
    out.update({wire: doc[f] for wire, f in renames.items() if f in doc})
    return out


def message_view(doc: Doc) -> dict[str, Any]:
    return public(
        doc,
        "sessionId",
        "role",
        "content",
        "reasoning",
        "otherParts",
        "timestamp",
        "completed",
        "model",
        id="messageId",
    )


def update_machine_status(db: Store, machine_id: str) -> None:
    """`internal.machines.updateMachineStatus`: online iff any of its workers is online."""
    machine = db.first("machines", machineId=machine_id)
    if machine is None:
        return
    online = any(w.get("status") == "online" for w in db.find("workers", machineId=machine_id))
    db.patch(machine, status="online" if online else "offline", lastHeartbeat=db.now())


@function("machines:updateMachineStatus", "mutation", public=False, machineId=string)
def update_machine_status_function(db: Store, args: dict[str, Any]) -> Any:
    update_machine_status(db, args["machineId"])
    return None


@function("workerActions:generateSecret", "action", public=False)
def generate_secret(db: Store, args: dict[str, Any]) -> Any:
    return secrets.token_urlsafe(32)


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
    if count > 0:
        db.log(f"[workers.setOffline] Marked {count} session(s) as inactive for offline worker")
    update_machine_status(db, worker["machineId"])
    return {"sessionsInactivated": float(count)}


@function("workers:markConnected", "mutation", **AUTH)
def mark_connected(db: Store, args: dict[str, Any]) -> Any:
    worker = _authenticated(db, args, "Worker not found")
    db.patch(worker, connectedAt=db.now())
    count = _deactivate_sessions(db, worker["workerId"], opencodeSessionId=None)
    db.log("[workers.markConnected] Worker marked as connected:", args["workerId"])
    if count > 0:
        db.log(f"[workers.markConnected] Invalidated {count} active session(s) from previous worker instance")
    return {"success": True, "sessionsInvalidated": float(count)}


MODEL = obj({"id": string, "name": string, "provider": string})


@function("workerModels:updateModels", "mutation", workerId=string, models=array(MODEL))
def update_models(db: Store, args: dict[str, Any]) -> Any:
    worker_id, models = args["workerId"], args["models"]
    db.log("[updateModels] Updating models for worker:", worker_id)
    db.log(f"[updateModels] Received {len(models)} models:")
    for model in models:
        db.log(f"[updateModels]   - {model['id']} ({model['provider']}): {model['name']}")
    if db.first("workers", workerId=worker_id) is None:
        raise FunctionFailure(f"Worker {worker_id} not found")
    row = db.first("workerModels", workerId=worker_id)
    if row is None:
        db.insert("workerModels", {"workerId": worker_id, "models": models, "updatedAt": db.now()})
        db.log("[updateModels] ✅ Created new models record")
    else:
        db.patch(row, models=models, updatedAt=db.now())
        db.log("[updateModels] ✅ Updated existing models record")
    db.log("[updateModels] ✅ Models successfully stored in Convex")
    return {"success": True, "modelsCount": float(len(models))}


#: A worker as `workers:getByMachineAndWorker` returns it (never the secret). The web app's
#: `workers:list` and `workers:listPending` return some of these fields, in this order.
WORKER_FIELDS = (
    "workerId",
    "machineId",
    "name",
    "approvalStatus",
    "status",
    "createdAt",
    "approvedAt",
    "lastHeartbeat",
    "connectRequestedAt",
    "connectedAt",
    "workingDirectory",
    "username",
)


def worker_record(worker: Doc, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The worker's `WORKER_FIELDS` but those `without`."""
    return public(worker, *(f for f in WORKER_FIELDS if f not in without))


@function("workers:getByMachineAndWorker", "query", machineId=string, workerId=string)
def get_by_machine_and_worker(db: Store, args: dict[str, Any]) -> Any:
    worker = db.first("workers", machineId=args["machineId"], workerId=args["workerId"])
    return None if worker is None else worker_record(worker)


def session_row(session: Doc) -> dict[str, Any]:
    return public(session, "sessionId", "workerId", "model", "status", "createdAt", "lastActivity")


@function("chat:subscribeToWorkerSessions", "query", workerId=string)
def subscribe_to_worker_sessions(db: Store, args: dict[str, Any]) -> Any:
    return [session_row(s) for s in db.find("chatSessions", workerId=args["workerId"], status="active")]


@function("chat:subscribeToWorkerMessages", "query", workerId=string)
def subscribe_to_worker_messages(db: Store, args: dict[str, Any]) -> Any:
    messages = [
        m
        for s in db.find("chatSessions", workerId=args["workerId"])
        for m in db.find("chatMessages", sessionId=s["sessionId"])
    ]
    return [message_view(m) for m in sorted(messages, key=lambda m: m["timestamp"])]


@function("chat:getActiveSessions", "query", workerId=string)
def get_active_sessions(db: Store, args: dict[str, Any]) -> Any:
    return [
        public(
            s,
            "opencodeSessionId",
            "workerId",
            "model",
            "status",
            "createdAt",
            "lastActivity",
            "name",
            "lastSyncedNameAt",
            "deletedInOpencode",
            chatSessionId="sessionId",
        )
        for s in db.find("chatSessions", workerId=args["workerId"], status="active")
    ]


@function("chat:getSessionName", "query", chatSessionId=string, workerId=string)
def get_session_name(db: Store, args: dict[str, Any]) -> Any:
    session = db.first("chatSessions", sessionId=args["chatSessionId"])
    if session is None or session["workerId"] != args["workerId"]:
        return None
    return session.get("name") or None


def chat_session(db: Store, chat_session_id: str) -> Doc:
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
    session = chat_session(db, args["chatSessionId"])
    db.patch(session, opencodeSessionId=args.get("opencodeSessionId"), lastActivity=db.now())
    db.log(
        "[sessionReady] Session ready:",
        args["chatSessionId"],
        "opencodeSessionId:",
        args.get("opencodeSessionId", UNDEFINED),
    )
    return None


@function(
    "chat:writeChunk",
    "mutation",
    chatSessionId=string,
    messageId=string,
    chunk=string,
    sequence=number,
)
def write_chunk(db: Store, args: dict[str, Any]) -> Any:
    session = chat_session(db, args["chatSessionId"])
    _message(db, args["messageId"])  # the reference does not check it belongs to the session
    db.insert(
        "chatChunks",
        {
            "chunkId": nanoid(),
            "messageId": args["messageId"],
            "sessionId": args["chatSessionId"],
            "chunk": args["chunk"],
            "sequence": args["sequence"],
            "timestamp": db.now(),
        },
    )
    db.patch(session, lastActivity=db.now())
    return None


@function(
    "chat:completeStructuredMessage",
    "mutation",
    chatSessionId=string,
    messageId=string,
    content=string,
    reasoning=optional(string),
    otherParts=optional(string),
)
def complete_structured_message(db: Store, args: dict[str, Any]) -> Any:
    session = chat_session(db, args["chatSessionId"])
    message = _message(db, args["messageId"])
    db.patch(
        message,
        content=args["content"],
        reasoning=args.get("reasoning"),
        otherParts=args.get("otherParts"),
        completed=True,
    )
    db.patch(session, lastActivity=db.now())
    db.log(
        f"[completeStructuredMessage] Message {args['messageId']} completed with structured content:",
        {
            "contentLength": js_length(args["content"]),
            "reasoningLength": js_length(args.get("reasoning") or ""),
            "hasOtherParts": bool(args.get("otherParts")),
        },
    )
    return None


@function("chat:completeMessage", "mutation", chatSessionId=string, messageId=string, content=string)
def complete_message(db: Store, args: dict[str, Any]) -> Any:
    session = chat_session(db, args["chatSessionId"])
    message = _message(db, args["messageId"])
    db.patch(message, content=args["content"], completed=True)
    db.patch(session, lastActivity=db.now())
    return None


# -- left over from the removed session sync: public, never called by the worker ---------------


@function("chat:getLastSyncTimestamp", "query", workerId=string)
def get_last_sync_timestamp(db: Store, args: dict[str, Any]) -> Any:
    state = db.first("workerSyncState", workerId=args["workerId"])
    return None if state is None else state.get("lastSyncedAt")


@function("chat:updateLastSyncTimestamp", "mutation", workerId=string, timestamp=number)
def update_last_sync_timestamp(db: Store, args: dict[str, Any]) -> Any:
    state = db.first("workerSyncState", workerId=args["workerId"])
    if state is None:
        db.insert("workerSyncState", {"workerId": args["workerId"], "lastSyncedAt": args["timestamp"]})
    else:
        db.patch(state, lastSyncedAt=args["timestamp"])
    return None


@function("chat:updateSessionName", "mutation", chatSessionId=string, name=string)
def update_session_name(db: Store, args: dict[str, Any]) -> Any:
    session = chat_session(db, args["chatSessionId"])
    if session.get("name") == args["name"]:
        return False
    db.patch(session, name=args["name"], lastSyncedNameAt=db.now(), lastActivity=db.now())
    return True


@function("chat:markSessionDeletedInOpencode", "mutation", chatSessionId=string)
def mark_session_deleted_in_opencode(db: Store, args: dict[str, Any]) -> Any:
    session = chat_session(db, args["chatSessionId"])
    db.patch(session, deletedAt=db.now(), deletedInOpencode=True, status="inactive")
    db.log("[markSessionDeletedInOpencode] Session marked as deleted:", args["chatSessionId"])
    return None


@function(
    "chat:createSyncedSession",
    "mutation",
    opencodeSessionId=string,
    workerId=string,
    model=string,
    name=optional(string),
)
def create_synced_session(db: Store, args: dict[str, Any]) -> Any:
    worker = db.first("workers", workerId=args["workerId"])
    if worker is None:
        raise FunctionFailure("Worker not found")
    machine = db.first("machines", machineId=worker["machineId"])
    if machine is None:
        raise FunctionFailure("Machine not found")
    existing = db.first("chatSessions", opencodeSessionId=args["opencodeSessionId"])
    if existing is not None:
        db.log("[createSyncedSession] Session already exists:", existing["sessionId"])
        return existing["sessionId"]
    chat_session_id = nanoid()
    now = db.now()
    db.insert(
        "chatSessions",
        {
            "sessionId": chat_session_id,
            "opencodeSessionId": args["opencodeSessionId"],
            "name": args.get("name"),
            "workerId": args["workerId"],
            "userId": machine["userId"],
            "model": args["model"],
            "status": "active",
            "createdAt": now,
            "lastActivity": now,
            "syncedFromOpencode": True,
        },
    )
    db.log(
        "[createSyncedSession] Created synced session:",
        chat_session_id,
        "from OpenCode:",
        args["opencodeSessionId"],
    )
    return chat_session_id
