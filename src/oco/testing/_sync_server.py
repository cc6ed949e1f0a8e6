"""The server side of the Convex sync protocol, as an ASGI websocket handler for fakes.

`sync_endpoint(run_query, version)` answers what the official clients send: each
`ModifyQuerySet` gets a Transition with the added queries' results; each change of
`version` (bumped by the fake after a committed mutation) re-runs the subscribed
queries and sends one Transition with the results that changed; a `Ping` goes out
when the socket has been idle for `ping_interval`. `SyncFaults` injects failures;
`inject_frame` and `inject_transition` send a hostile frame to every open socket now.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import anyio
import attrs
import trio
import trio_util

from oco.convex._sync_protocol import (
    Action,
    AddQuery,
    Authenticate,
    Connect,
    FatalError,
    ModifyQuerySet,
    Ping,
    QueryFailed,
    QueryRemoved,
    QueryUpdated,
    StateVersion,
    SyncProtocolError,
    Transition,
    TransitionChunk,
    decode_client_message,
    encode_message,
    encode_value,
    modification_json,
)

__all__ = ["SyncEndpoint", "SyncFaults", "is_sync_path", "sync_app", "sync_endpoint"]

log = logging.getLogger("oco.testing.sync")

_SYNC_PATH = re.compile(r"^/api/(?:[^/]+/)?sync$")
PING_INTERVAL = 15.0  # what Convex does: a Ping after 15 s without other messages

RunQuery = Callable[[str, dict[str, Any]], Any]


def is_sync_path(path: str) -> bool:
    """True for `/api/sync` and `/api/<client version>/sync`."""
    return _SYNC_PATH.match(path) is not None


@attrs.define
class SyncFaults:
    """Failure knobs; tests flip them while sockets are live."""

    refuse_upgrade: int | None = None  # refuse new sockets with this HTTP status
    transition_delay: float = 0.0  # seconds before each Transition goes out
    mute: bool = False  # send nothing at all (no Transitions, no Pings)
    chunk_size: int | None = None  # split Transitions longer than this into chunks
    skew_next_transition: bool = False  # the next Transition starts at a wrong version
    # Sent on every socket right after its first Transition (a server that misbehaves on
    # every connection): text, or bytes for a binary frame.
    frame_after_sync: str | bytes | None = None


class SyncEndpoint:
    """ASGI app for the sync websocket. Mount it on the fake's sync path."""

    def __init__(
        self,
        run_query: RunQuery,
        version: trio_util.AsyncValue[int],
        *,
        faults: SyncFaults | None = None,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        self.run_query = run_query
        self.version = version
        self.faults = faults or SyncFaults()
        self.ping_interval = ping_interval
        self.attempts = trio_util.AsyncValue(0)  # upgrade requests, refused ones included
        self.connects: list[Connect] = []  # every Connect received, in order
        self.open_sockets = trio_util.AsyncValue(0)
        self.transitions_sent = 0
        self.query_runs = 0
        self._drops: list[trio.CancelScope] = []
        self._sockets: list[_ServerSocket] = []
        self._last_ts = 0

    def drop_sockets(self) -> int:
        """Close every open socket now (code 1011, as a backend restart does)."""
        for scope in self._drops:
            scope.cancel()
        return len(self._drops)

    async def inject_frame(self, raw: str | bytes) -> int:
        """Send `raw` as is (text, or bytes for a binary frame) on every open socket; returns
        how many got it. For hostile-frame tests: garbage, wrong shapes, FatalError."""
        for socket in list(self._sockets):
            await socket.send_frame(raw)
        return len(self._sockets)

    async def inject_transition(
        self, modifications: list[Any] | None = None, *, values: dict[str, Any] | None = None
    ) -> int:
        """Send every open socket a well-chained Transition (from its current version, so the
        client applies it) carrying raw JSON `modifications` plus, for each subscribed query
        whose udf path is in `values`, a QueryUpdated with that raw (not encoded) value, e.g.
        a string where a list is expected. The next write re-sends the real results."""
        for socket in list(self._sockets):
            await socket.inject(list(modifications or ()), values or {})
        return len(self._sockets)

    def next_ts(self) -> int:
        self._last_ts = max(time.time_ns(), self._last_ts + 1)
        return self._last_ts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError("the sync endpoint speaks websocket only")
        if (await receive())["type"] != "websocket.connect":
            return
        self.attempts.value += 1
        if self.faults.refuse_upgrade is not None:
            await _refuse(scope, send, self.faults.refuse_upgrade)
            return
        await send({"type": "websocket.accept"})
        socket = _ServerSocket(self, send)
        drop = trio.CancelScope()
        self._drops.append(drop)
        self._sockets.append(socket)
        self.open_sockets.value += 1
        try:
            with drop:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(socket.watch_version)
                    nursery.start_soon(socket.send_pings)
                    await socket.serve(receive)
                    nursery.cancel_scope.cancel()
        finally:
            self._drops.remove(drop)
            self._sockets.remove(socket)
            self.open_sockets.value -= 1
        if drop.cancelled_caught:
            # Told to drop: close like a restarting backend would.
            with trio.move_on_after(1, shield=True):
                await socket.send_raw(
                    {"type": "websocket.close", "code": 1011, "reason": "InternalServerError"}
                )


async def _refuse(scope: dict[str, Any], send: Any, status: int) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"upgrade refused\n"})
    else:
        await send({"type": "websocket.close", "code": 1008})


def sync_endpoint(
    run_query: RunQuery,
    version: trio_util.AsyncValue[int],
    *,
    faults: SyncFaults | None = None,
    ping_interval: float = PING_INTERVAL,
) -> SyncEndpoint:
    """An ASGI websocket handler serving the sync protocol over `run_query`.

    `run_query(udf_path, args)` returns the decoded result (or an awaitable of it) and
    raises to make the query fail; `version` changes after every committed write."""
    return SyncEndpoint(run_query, version, faults=faults, ping_interval=ping_interval)


class _ServerSocket:
    """One client's socket: its query set, state version and last results."""

    def __init__(self, endpoint: SyncEndpoint, send: Any) -> None:
        self.endpoint = endpoint
        self._send = send
        self.queries: dict[int, AddQuery] = {}
        self.state = StateVersion(0, 0, 0)
        self.last: dict[int, str] = {}  # query id → its last result, as sent
        self.lock = trio.Lock()  # keeps Transitions chained start → end, in order
        self.closed = False
        self.synced = False  # sent its first Transition
        self.last_sent = trio.current_time()

    async def serve(self, receive: Any) -> None:
        while not self.closed:
            try:
                event = await receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return
            if event["type"] == "websocket.disconnect":
                return
            text = event.get("text") or (event.get("bytes") or b"").decode()
            try:
                message = decode_client_message(text)
            except SyncProtocolError as e:
                await self.fatal(str(e))
                return
            await self.handle(message)

    async def handle(self, message: Any) -> None:
        match message:
            case Connect():
                self.endpoint.connects.append(message)
            case ModifyQuerySet():
                await self.modify(message)
            case Authenticate():
                async with self.lock:
                    if message.base_version != self.state.identity:
                        await self.fatal("Authenticate: base version mismatch")
                        return
                    end = attrs.evolve(
                        self.state, identity=message.base_version + 1, ts=self.endpoint.next_ts()
                    )
                    await self.transition((), end)
            case Action():
                log.debug("fake sync endpoint ignores %s", message.type)

    async def modify(self, message: ModifyQuerySet) -> None:
        async with self.lock:
            if message.base_version != self.state.query_set:
                await self.fatal(
                    f"ModifyQuerySet base version {message.base_version} != {self.state.query_set}"
                )
                return
            modifications: list[Any] = []
            for change in message.modifications:
                if isinstance(change, AddQuery):
                    self.queries[change.query_id] = change
                    modifications.append(await self.run(change))
                else:
                    self.queries.pop(change.query_id, None)
                    self.last.pop(change.query_id, None)
                    modifications.append(QueryRemoved(change.query_id))
            end = StateVersion(message.new_version, self.state.identity, self.endpoint.next_ts())
            await self.transition(tuple(modifications), end)

    async def watch_version(self) -> None:
        seen = self.endpoint.version.value
        while True:
            await self.endpoint.version.wait_value(lambda v: v != seen)  # noqa: B023 - the predicate is awaited in this iteration
            seen = self.endpoint.version.value
            async with self.lock:
                changed = []
                for query in list(self.queries.values()):
                    before = self.last.get(query.query_id)
                    result = await self.run(query)
                    if self.last.get(query.query_id) != before:
                        changed.append(result)
                if changed:
                    end = attrs.evolve(self.state, ts=self.endpoint.next_ts())
                    await self.transition(tuple(changed), end)

    async def run(self, query: AddQuery) -> QueryUpdated | QueryFailed:
        self.endpoint.query_runs += 1
        try:
            value = self.endpoint.run_query(query.udf_path, dict(query.args))
            if inspect.isawaitable(value):
                value = await value
            result: QueryUpdated | QueryFailed = QueryUpdated(query.query_id, value)
            encode_value(value)  # a result the codec cannot encode is a failed query
        except Exception as e:  # noqa: BLE001 — a failing query is data for the client
            # The fake's own failures carry the exact text Convex sends (redacted in prod).
            message = getattr(e, "error_message", None) or f"Uncaught Error: {e}"
            result = QueryFailed(query.query_id, message, error_data=getattr(e, "data", None))
        self.last[query.query_id] = json.dumps(modification_json(result), sort_keys=True)
        return result

    async def transition(self, modifications: tuple[Any, ...], end: StateVersion) -> None:
        faults = self.endpoint.faults
        start = self.state
        if faults.skew_next_transition:
            faults.skew_next_transition = False
            start = attrs.evolve(start, query_set=start.query_set + 7)
        self.state = end
        if faults.transition_delay:
            await trio.sleep(faults.transition_delay)
        text = encode_message(Transition(start, end, modifications))
        size = faults.chunk_size
        if size and len(text) > size:
            parts = [text[i : i + size] for i in range(0, len(text), size)]
            tid = f"t{end.ts}"
            for n, part in enumerate(parts):
                await self.send_text(encode_message(TransitionChunk(part, n, len(parts), tid)))
        else:
            await self.send_text(text)
        self.endpoint.transitions_sent += 1
        if not self.synced:
            self.synced = True
            if faults.frame_after_sync is not None:
                await self.send_frame(faults.frame_after_sync)

    async def inject(self, modifications: list[Any], values: dict[str, Any]) -> None:
        async with self.lock:
            for query in self.queries.values():
                if query.udf_path in values:
                    modifications.append(
                        {
                            "type": "QueryUpdated",
                            "queryId": query.query_id,
                            "value": values[query.udf_path],
                            "logLines": [],
                            "journal": None,
                        }
                    )
                    # The client now holds something else: the next run re-sends the truth.
                    self.last.pop(query.query_id, None)
            start, end = self.state, attrs.evolve(self.state, ts=self.endpoint.next_ts())
            self.state = end
            frame = json.loads(encode_message(Transition(start, end, ())))
            frame["modifications"] = modifications
            await self.send_text(json.dumps(frame))

    async def send_pings(self) -> None:
        while True:
            await trio.sleep_until(self.last_sent + self.endpoint.ping_interval)
            if trio.current_time() >= self.last_sent + self.endpoint.ping_interval:
                await self.send_text(encode_message(Ping()))

    async def fatal(self, error: str) -> None:
        await self.send_text(encode_message(FatalError(error)))
        await self.send_raw({"type": "websocket.close", "code": 1011, "reason": error[:100]})
        self.closed = True

    async def send_text(self, text: str) -> None:
        await self.send_frame(text)

    async def send_frame(self, raw: str | bytes) -> None:
        self.last_sent = trio.current_time()
        if self.endpoint.faults.mute:
            return
        key = "bytes" if isinstance(raw, bytes) else "text"
        await self.send_raw({"type": "websocket.send", key: raw})

    async def send_raw(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            await self._send(message)
        except Exception:  # noqa: BLE001 — the peer went away; this socket is done
            self.closed = True


def sync_app(endpoint: SyncEndpoint, fallback: Any = None) -> Any:
    """An ASGI app that routes the sync paths to `endpoint` and other HTTP and websocket
    requests to `fallback` (404 without one). It answers lifespan events itself."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "websocket" and is_sync_path(scope["path"]):
            await endpoint(scope, receive, send)
        elif fallback is not None:
            await fallback(scope, receive, send)
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008})
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not found\n"})

    return app
