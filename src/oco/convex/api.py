"""`WorkerBackend`: one typed method per backend function the worker calls (reference §2.2).

Arguments go out with the reference's wire names and types (numbers as float64); results
come back as the attrs types of `oco.convex.types`, checked by `_convert`. Contract error
texts arrive already typed (`WorkerNotFound`, `InvalidSecret`, `SessionNotFound`, ...).

List results are checked item by item: one malformed row (a newer or broken backend) is
logged once and left out, so it cannot hide the good rows or stop the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

from oco.convex._client import ConvexClient
from oco.convex._convert import structure, unstructure
from oco.convex._errors import ConvexProtocolError
from oco.convex.types import (
    ActiveSession,
    ChatMessage,
    ModelInfo,
    Registration,
    SessionDetails,
    WorkerRecord,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bad rows remembered so each is logged once, not on every poll; bounded against a flood.
_MAX_REPORTED = 1000


def structure_items(
    function: str, value: Any, item_type: type[T]
) -> tuple[list[T], list[ConvexProtocolError]]:
    """A list result as `item_type` items: the good ones, and one error per malformed item.

    A result that is not a list at all is a `ConvexProtocolError` (nothing can be trusted).
    """
    if not isinstance(value, list):
        raise ConvexProtocolError(function, "$", f"expected an array, got {type(value).__name__}")
    items: list[T] = []
    errors: list[ConvexProtocolError] = []
    for index, raw in enumerate(value):
        try:
            items.append(structure(function, raw, item_type))
        except ConvexProtocolError as exc:
            errors.append(ConvexProtocolError(function, f"$[{index}]{exc.field[1:]}", exc.detail))
    return items, errors


class WorkerBackend:
    """The backend as one worker sees it: its identity is bound once, the secret kept private."""

    def __init__(self, client: ConvexClient, machine_id: str, worker_id: str, secret: str) -> None:
        self.client = client
        self.machine_id = machine_id
        self.worker_id = worker_id
        self.__secret = secret
        self._reported: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"WorkerBackend({self.client.url!r}, machine_id={self.machine_id!r}, "
            f"worker_id={self.worker_id!r})"
        )

    def _items(self, function: str, value: Any, item_type: type[T]) -> list[T]:
        items, errors = structure_items(function, value, item_type)
        for error in errors:
            key = str(error)
            if key not in self._reported:
                if len(self._reported) >= _MAX_REPORTED:
                    self._reported.clear()
                self._reported.add(key)
                log.warning("ignoring a malformed item: %s", error)
        return items

    # -- results of the watched queries (also used for subscription values) --------------

    def parse_worker(self, value: Any) -> WorkerRecord | None:
        """A `workers:getByMachineAndWorker` value; a malformed record is a protocol error."""
        return structure("workers:getByMachineAndWorker", value, WorkerRecord | None)

    def parse_sessions(self, value: Any) -> list[ActiveSession]:
        """A `chat:subscribeToWorkerSessions` value; malformed rows are logged once and dropped."""
        return self._items("chat:subscribeToWorkerSessions", value, ActiveSession)

    def parse_messages(self, value: Any) -> list[ChatMessage]:
        """A `chat:subscribeToWorkerMessages` value; malformed rows are logged once and dropped."""
        return self._items("chat:subscribeToWorkerMessages", value, ChatMessage)

    def _auth(self) -> dict[str, str]:
        return {"machineId": self.machine_id, "workerId": self.worker_id, "secret": self.__secret}

    # -- lifecycle ------------------------------------------------------------------------

    async def register(self, working_directory: str, username: str) -> Registration:
        """`workers:register`: announce the worker; `approved` says whether it may serve."""
        path = "workers:register"
        args = {**self._auth(), "workingDirectory": working_directory, "username": username}
        return structure(path, await self.client.mutation(path, args), Registration)

    async def heartbeat(self) -> None:
        """`workers:heartbeat`: keep `status: online` (a no-op while not approved)."""
        await self.client.mutation("workers:heartbeat", self._auth())

    async def set_offline(self) -> int:
        """`workers:setOffline`: go offline; returns how many active sessions became inactive."""
        path = "workers:setOffline"
        result = await self.client.mutation(path, self._auth())
        # The backend says sessionsTerminated (always 0) when the worker row is missing.
        return _count(path, result, "sessionsInactivated", "sessionsTerminated")

    async def mark_connected(self) -> int:
        """`workers:markConnected`: returns how many active sessions the backend invalidated."""
        path = "workers:markConnected"
        return _count(path, await self.client.mutation(path, self._auth()), "sessionsInvalidated")

    async def update_models(self, models: Sequence[ModelInfo]) -> None:
        """`workerModels:updateModels`: publish the models this worker's OpenCode offers."""
        await self.client.mutation(
            "workerModels:updateModels",
            {"workerId": self.worker_id, "models": [unstructure(m) for m in models]},
        )

    # -- what the worker watches ----------------------------------------------------------

    async def get_worker(self) -> WorkerRecord | None:
        """`workers:getByMachineAndWorker`: the worker row, None once it is deleted."""
        path = "workers:getByMachineAndWorker"
        args = {"machineId": self.machine_id, "workerId": self.worker_id}
        return self.parse_worker(await self.client.query(path, args))

    async def worker_sessions(self) -> list[ActiveSession]:
        """`chat:subscribeToWorkerSessions`: the worker's active sessions (cheap to poll)."""
        path = "chat:subscribeToWorkerSessions"
        return self.parse_sessions(await self.client.query(path, {"workerId": self.worker_id}))

    async def worker_messages(self) -> list[ChatMessage]:
        """`chat:subscribeToWorkerMessages`: every message of every session, by timestamp."""
        path = "chat:subscribeToWorkerMessages"
        return self.parse_messages(await self.client.query(path, {"workerId": self.worker_id}))

    async def active_sessions(self) -> list[SessionDetails]:
        """`chat:getActiveSessions`: active sessions with their OpenCode session ids and names."""
        path = "chat:getActiveSessions"
        result = await self.client.query(path, {"workerId": self.worker_id})
        return self._items(path, result, SessionDetails)

    async def session_name(self, chat_session_id: str) -> str | None:
        """`chat:getSessionName`: the session's name, None if unnamed, missing or not ours."""
        path = "chat:getSessionName"
        args = {"chatSessionId": chat_session_id, "workerId": self.worker_id}
        return structure(path, await self.client.query(path, args), str | None)

    async def poll_watch(self) -> tuple[WorkerRecord | None, list[ActiveSession]]:
        """The worker row and its active sessions at one timestamp (one request when batched)."""
        get_worker = "workers:getByMachineAndWorker"
        sessions = "chat:subscribeToWorkerSessions"
        worker_raw, sessions_raw = await self.client.query_batch(
            [
                (get_worker, {"machineId": self.machine_id, "workerId": self.worker_id}),
                (sessions, {"workerId": self.worker_id}),
            ]
        )
        return self.parse_worker(worker_raw), self.parse_sessions(sessions_raw)

    # -- chat write-back ------------------------------------------------------------------

    async def session_ready(self, chat_session_id: str, opencode_session_id: str | None) -> None:
        """`chat:sessionReady`: record the OpenCode session serving this chat session."""
        args: dict[str, Any] = {"chatSessionId": chat_session_id}
        if opencode_session_id is not None:
            args["opencodeSessionId"] = opencode_session_id
        await self.client.mutation("chat:sessionReady", args)

    async def write_chunk(
        self, chat_session_id: str, message_id: str, chunk: str, sequence: int
    ) -> None:
        """`chat:writeChunk`: append streamed text (inserts a row: never blindly retried)."""
        await self.client.mutation(
            "chat:writeChunk",
            {
                "chatSessionId": chat_session_id,
                "messageId": message_id,
                "chunk": chunk,
                "sequence": float(sequence),  # Convex float64, as the reference sends it
            },
        )

    async def complete_structured(
        self,
        chat_session_id: str,
        message_id: str,
        content: str,
        reasoning: str | None,
        other_parts: str | None,
    ) -> None:
        """`chat:completeStructuredMessage`: the final answer, reasoning and tool parts (JSON)."""
        args: dict[str, Any] = {
            "chatSessionId": chat_session_id,
            "messageId": message_id,
            "content": content,
        }
        if reasoning is not None:
            args["reasoning"] = reasoning
        if other_parts is not None:
            args["otherParts"] = other_parts
        await self.client.mutation("chat:completeStructuredMessage", args)

    async def complete_message(self, chat_session_id: str, message_id: str, content: str) -> None:
        """`chat:completeMessage`: complete a message with plain content (the error path)."""
        await self.client.mutation(
            "chat:completeMessage",
            {"chatSessionId": chat_session_id, "messageId": message_id, "content": content},
        )


def _count(function: str, result: Any, *keys: str) -> int:
    if isinstance(result, dict):
        for key in keys:
            value = result.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return int(value)
    raise ConvexProtocolError(function, f"$.{keys[0]}", "missing count")


__all__ = ["WorkerBackend", "structure_items"]
