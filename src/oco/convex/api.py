"""`WorkerBackend`: one typed method per backend function the worker calls.

Arguments go out with the reference's wire names and types (numbers as float64); results
come back as the attrs records of `oco.domain`, checked by `_convert`; `WorkerBackend`
implements `oco.domain.Backend`, the protocol the worker is written against.

Why a call that names this worker failed is decided from state: a dev deployment's error
text may already name a contract type (`WorkerNotFound`, `InvalidSecret`), but a production
deployment redacts every text, so an untyped function error of register, heartbeat,
setOffline, markConnected or updateModels is explained by one `workers:getByMachineAndWorker`
call (`_why.why_failed`): the caller always gets the typed rejection, after two calls at most.

List results are checked item by item: one malformed row (a newer or broken backend) is
logged once and left out, so it cannot hide the good rows or stop the worker.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from oco._retry import OutageReport
from oco.convex._client import ConvexClient
from oco.convex._convert import structure, unstructure
from oco.convex._errors import (
    ConvexException,
    ConvexProtocolError,
    WorkerDeleted,
    WorkerNotFound,
    is_redacted,
    is_transient,
    is_untyped,
)
from oco.convex._why import SECRET_CHECKED, why_failed
from oco.domain import (
    ARRAY_LIMIT,
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
# Calls whose success proves the backend accepts this token's secret (setOffline answers a
# missing worker without checking it).
_ACCEPTING = SECRET_CHECKED - {"workers:setOffline"}


def _at_deployment(method: Callable[..., Any]) -> Callable[..., Any]:
    """Stamps the deployment URL on a Convex error the method raises (a malformed result is
    found here, after the client has returned)."""

    def stamp(backend: WorkerBackend, exc: ConvexException) -> None:
        if exc.url is None:
            exc.url = backend.client.url

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def located(self: WorkerBackend, *args: Any, **kwargs: Any) -> Any:
            try:
                return await method(self, *args, **kwargs)
            except ConvexException as exc:
                stamp(self, exc)
                raise

        return located

    @functools.wraps(method)
    def located_sync(self: WorkerBackend, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ConvexException as exc:
            stamp(self, exc)
            raise

    return located_sync


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
        self.secret_accepted = False  # a secret-checked call with this token has succeeded
        self.outage = OutageReport()  # when to say this worker cannot reach its deployment

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

    @_at_deployment
    def parse_worker(self, value: Any) -> WorkerRecord | None:
        """A `workers:getByMachineAndWorker` value; a malformed record is a protocol error."""
        return structure("workers:getByMachineAndWorker", value, WorkerRecord | None)

    @_at_deployment
    def parse_sessions(self, value: Any) -> list[ActiveSession]:
        """A `chat:subscribeToWorkerSessions` value; malformed rows are logged once and dropped."""
        return self._items("chat:subscribeToWorkerSessions", value, ActiveSession)

    @_at_deployment
    def parse_messages(self, value: Any) -> list[ChatMessage]:
        """A `chat:subscribeToWorkerMessages` value; malformed rows are logged once and dropped."""
        return self._items("chat:subscribeToWorkerMessages", value, ChatMessage)

    def _auth(self) -> dict[str, str]:
        return {"machineId": self.machine_id, "workerId": self.worker_id, "secret": self.__secret}

    async def _as_worker(self, function: str, args: dict[str, Any]) -> Any:
        """A mutation that names this worker, its failure typed from the worker's state."""
        try:
            result = await self.client.mutation(function, args)
        except ConvexException as exc:
            if self.secret_accepted and type(exc) is WorkerNotFound:
                # The text said "not found" (dev) after this token worked: deleted meanwhile.
                raise WorkerDeleted(exc.message, function=function, url=exc.url) from None
            if not is_untyped(exc):
                raise
            raise await self._explained(function, exc) from None
        if function in _ACCEPTING:
            self.secret_accepted = True
        return result

    async def _explained(self, function: str, exc: ConvexException) -> ConvexException:
        """The error `exc` (a function error of unknown cause) means, asked from the record."""
        try:
            record = await self.get_worker()
        except ConvexException as lookup:
            # If the lookup is unreachable too, the caller retries; if it fails otherwise,
            # nothing more is known than the original error.
            return lookup if is_transient(lookup) else exc
        redacted = is_redacted(getattr(exc, "message", ""))
        kind = why_failed(function, record, secret_accepted=self.secret_accepted, redacted=redacted)
        if kind is None:
            return exc
        log.debug("%s failed (%s); from the worker's record: %s", function, exc, kind.__name__)
        return kind(getattr(exc, "message", ""), function=function, url=exc.url)

    # -- lifecycle ------------------------------------------------------------------------

    @_at_deployment
    async def register(self, working_directory: str, username: str) -> Registration:
        """`workers:register`: announce the worker; `approved` says whether it may serve."""
        path = "workers:register"
        args = {**self._auth(), "workingDirectory": working_directory, "username": username}
        return structure(path, await self._as_worker(path, args), Registration)

    @_at_deployment
    async def heartbeat(self) -> None:
        """`workers:heartbeat`: keep `status: online` (a no-op while not approved)."""
        await self._as_worker("workers:heartbeat", self._auth())

    @_at_deployment
    async def set_offline(self) -> int:
        """`workers:setOffline`: go offline; returns how many active sessions became inactive."""
        path = "workers:setOffline"
        result = await self._as_worker(path, self._auth())
        # The backend says sessionsTerminated (always 0) when the worker row is missing.
        return _count(path, result, "sessionsInactivated", "sessionsTerminated")

    @_at_deployment
    async def mark_connected(self) -> int:
        """`workers:markConnected`: returns how many active sessions the backend invalidated."""
        path = "workers:markConnected"
        return _count(path, await self._as_worker(path, self._auth()), "sessionsInvalidated")

    @_at_deployment
    async def update_models(self, models: Sequence[ModelInfo]) -> None:
        """`workerModels:updateModels`: publish the models this worker's OpenCode offers.

        Convex refuses arrays over 8192 items: a longer list is cut (and said so once).
        """
        if len(models) > ARRAY_LIMIT:
            log.warning(
                "publishing the first %d of %d models (Convex's array limit)", ARRAY_LIMIT, len(models)
            )
            models = models[:ARRAY_LIMIT]
        await self._as_worker(
            "workerModels:updateModels",
            {"workerId": self.worker_id, "models": [unstructure(m) for m in models]},
        )

    # -- what the worker watches ----------------------------------------------------------

    @_at_deployment
    async def get_worker(self) -> WorkerRecord | None:
        """`workers:getByMachineAndWorker`: the worker row, None once it is deleted."""
        path = "workers:getByMachineAndWorker"
        args = {"machineId": self.machine_id, "workerId": self.worker_id}
        return self.parse_worker(await self.client.query(path, args))

    @_at_deployment
    async def worker_messages(self) -> list[ChatMessage]:
        """`chat:subscribeToWorkerMessages`: every message of every session, by timestamp."""
        path = "chat:subscribeToWorkerMessages"
        return self.parse_messages(await self.client.query(path, {"workerId": self.worker_id}))

    @_at_deployment
    async def active_sessions(self) -> list[SessionDetails]:
        """`chat:getActiveSessions`: active sessions with their OpenCode session ids and names."""
        path = "chat:getActiveSessions"
        result = await self.client.query(path, {"workerId": self.worker_id})
        return self._items(path, result, SessionDetails)

    @_at_deployment
    async def session_name(self, chat_session_id: str) -> str | None:
        """`chat:getSessionName`: the session's name, None if unnamed, missing or not ours."""
        path = "chat:getSessionName"
        args = {"chatSessionId": chat_session_id, "workerId": self.worker_id}
        return structure(path, await self.client.query(path, args), str | None)

    @_at_deployment
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

    @_at_deployment
    async def session_ready(self, chat_session_id: str, opencode_session_id: str | None) -> None:
        """`chat:sessionReady`: record the OpenCode session serving this chat session."""
        args: dict[str, Any] = {"chatSessionId": chat_session_id}
        if opencode_session_id is not None:
            args["opencodeSessionId"] = opencode_session_id
        await self.client.mutation("chat:sessionReady", args)

    @_at_deployment
    async def write_chunk(self, chat_session_id: str, message_id: str, chunk: str, sequence: int) -> None:
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

    @_at_deployment
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

    @_at_deployment
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
