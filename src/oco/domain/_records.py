"""The backend's records as the worker sees them: its registration, its row, chat sessions and
messages, and the models it publishes.

Owned by neither adapter: the Convex adapter builds these from decoded wire values (checked
by `oco.convex._convert`; extra fields tolerated, a missing or wrong-typed required field is
a protocol violation), and the OpenCode adapter builds `ModelInfo` from its model listing.
Timestamps are Convex float64 milliseconds since the epoch. Pure: attrs only.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Registration:
    """`workers:register` result."""

    approved: bool
    approval_status: str  # wire: approvalStatus
    status: str
    worker_id: str  # wire: workerId
    name: str | None = None


@attrs.frozen
class WorkerRecord:
    """`workers:getByMachineAndWorker` result (None when the worker row is gone)."""

    worker_id: str
    machine_id: str
    approval_status: str
    status: str
    created_at: float
    name: str | None = None
    approved_at: float | None = None
    last_heartbeat: float | None = None
    connect_requested_at: float | None = None
    connected_at: float | None = None
    working_directory: str | None = None
    username: str | None = None


@attrs.frozen
class ActiveSession:
    """One row of `chat:subscribeToWorkerSessions` (active sessions only)."""

    session_id: str
    worker_id: str
    status: str
    created_at: float
    last_activity: float
    model: str | None = None


@attrs.frozen
class ChatMessage:
    """One item of `chat:subscribeToWorkerMessages` (wire `id` is the messageId)."""

    id: str
    session_id: str
    role: str
    content: str
    timestamp: float
    completed: bool
    reasoning: str | None = None
    other_parts: str | None = None  # wire: otherParts, a JSON-encoded array
    model: str | None = None


@attrs.frozen
class SessionDetails:
    """One row of `chat:getActiveSessions`."""

    chat_session_id: str
    worker_id: str
    status: str
    created_at: float
    last_activity: float
    opencode_session_id: str | None = None
    model: str | None = None
    name: str | None = None


@attrs.frozen
class ModelInfo:
    """A model the worker's OpenCode offers, as published with `workerModels:updateModels`."""

    id: str  # "provider/model"
    name: str
    provider: str
