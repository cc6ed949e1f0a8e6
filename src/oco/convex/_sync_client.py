"""Convex query subscriptions over the sync protocol: one websocket, many live queries.

`ConvexSubscriptions` opens `/api/<client version>/sync` with httpx-ws (so tests plug in
at the httpx transport), replays its query set on every new socket, and reconnects with
the JS client's backoff when the socket closes, the server falls silent for 60 s, or a
Transition does not follow on from the client's version. The protocol decisions live in
the pure `SyncState`; this module only moves frames and time.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import trio
import trio_util
from httpx_ws import (
    HTTPXWSException,
    WebSocketDisconnect,
    WebSocketInvalidTypeReceived,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
)
from wsproto.utilities import LocalProtocolError

from oco.convex._sync_protocol import (
    AuthError,
    FatalError,
    Ping,
    SyncProtocolError,
    Transition,
    TransitionChunk,
    UnknownServerMessage,
    decode_server_message,
    encode_message,
)
from oco.convex._sync_state import (
    CLIENT_CLOSE,
    EXPECTED_CLOSE_CODES,
    QueryError,
    QueryResult,
    QuerySuccess,
    SyncState,
)
from oco.errors import OcoError

__all__ = ["CLIENT_VERSION", "ConvexSubscriptions", "Subscription", "SyncQueryError",
           "sync_url"]

log = logging.getLogger("oco.convex.sync")

CLIENT_VERSION = "1.48.0"  # the npm client whose protocol we follow; goes into the URL
INACTIVITY_TIMEOUT = 60.0  # the JS client's serverInactivityThreshold
_MAX_FRAME_READ = 1 << 20


class SyncQueryError(OcoError):
    """The server reported that a subscribed query failed (a `QueryFailed`)."""

    def __init__(self, udf_path: str, message: str, data: Any = None) -> None:
        super().__init__(f"{udf_path}: {message}")
        self.udf_path = udf_path
        self.data = data


def sync_url(deployment_url: str, client_version: str = CLIENT_VERSION) -> str:
    """The sync endpoint of a deployment, as an http(s) URL (httpx-ws upgrades it)."""
    url = httpx.URL(deployment_url)
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    if scheme not in ("http", "https"):
        raise OcoError(f"Convex URL must be http(s): {deployment_url}")
    return str(url.copy_with(scheme=scheme, path=f"/api/{client_version}/sync",
                             query=None, fragment=None))


class Subscription:
    """One live query. `async for value in sub` yields each new result, newest first:
    a slow consumer skips straight to the latest value, it never sees a backlog.

    A failed query raises `SyncQueryError` from the iteration; iterating again waits
    for the next result. The iteration ends when the subscription is closed."""

    def __init__(self, udf_path: str, args: dict[str, Any]) -> None:
        self.udf_path = udf_path
        self.args = args
        self._result: QueryResult | None = None
        self._generation = 0
        self._seen = 0
        self._closed = False
        self._changed = trio.Event()

    @property
    def latest(self) -> QueryResult | None:
        """The newest result, or None before the first one arrived."""
        return self._result

    async def next_result(self) -> QueryResult:
        """The newest result not yet returned; `trio.EndOfChannel` once closed."""
        while self._seen == self._generation:
            if self._closed:
                raise trio.EndOfChannel
            await self._changed.wait()
        self._seen = self._generation
        assert self._result is not None
        return self._result

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        try:
            result = await self.next_result()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        if isinstance(result, QueryError):
            raise SyncQueryError(self.udf_path, result.message, result.data)
        return result.value

    def _deliver(self, result: QueryResult) -> None:
        # A reconnect re-sends every result; only a different one is news.
        if result == self._result:
            return
        self._result = result
        self._generation += 1
        self._wake()

    def _close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


class ConvexSubscriptions:
    """One sync-protocol websocket to a Convex deployment carrying many subscriptions.

    Use as `async with ConvexSubscriptions(url, client=shared_httpx_client) as subs:`,
    then `with subs.subscribe("chat:fn", {...}) as sub: async for value in sub: ...`.
    `connected` is True while a socket is up and has delivered a Transition; callers
    poll over HTTP while it is False. The socket is retried with backoff for as long as
    the context is open.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        client_version: str = CLIENT_VERSION,
        inactivity_timeout: float = INACTIVITY_TIMEOUT,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.url = sync_url(url, client_version)
        self.connected = trio_util.AsyncValue(False)
        self._client = client
        self._inactivity_timeout = inactivity_timeout
        self._jitter = jitter
        self._state = SyncState(session_id=str(uuid.uuid4()))
        self._subs: dict[int, Subscription] = {}
        self._wake_writer = trio.Event()
        self._warned = False
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def connection_count(self) -> int:
        """Sockets opened so far (the `connectionCount` the next Connect will carry)."""
        return self._state.connection_count

    async def __aenter__(self) -> ConvexSubscriptions:
        async with contextlib.AsyncExitStack() as stack:
            if self._client is None:
                self._client = await stack.enter_async_context(httpx.AsyncClient())
            nursery = await stack.enter_async_context(trio.open_nursery())
            stack.callback(self._close_all)
            stack.callback(nursery.cancel_scope.cancel)
            nursery.start_soon(self._maintain_socket)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._stack is not None
        return await self._stack.__aexit__(*exc_info)

    @contextlib.contextmanager
    def subscribe(self, udf_path: str, args: dict[str, Any] | None = None
                  ) -> Iterator[Subscription]:
        """Subscribe to a query for the duration of the `with` block."""
        args = dict(args or {})
        query_id = self._state.add(udf_path, args)
        sub = self._subs[query_id] = Subscription(udf_path, args)
        self._wake_writer.set()
        try:
            yield sub
        finally:
            del self._subs[query_id]
            sub._close()
            self._state.remove(query_id)
            self._wake_writer.set()

    def _close_all(self) -> None:
        for sub in self._subs.values():
            sub._close()
        self.connected.value = False

    # -- the socket loop -------------------------------------------------------------------

    async def _maintain_socket(self) -> None:
        while True:
            reason, kind = await self._one_socket()
            was_connected = self.connected.value
            self.connected.value = False
            delay = self._state.on_close(reason, kind, self._jitter())
            if was_connected:
                log.info("sync socket to %s lost (%s); reconnecting in %.1fs",
                         self.url, reason, delay)
            elif not self._warned:
                self._warned = True
                log.warning("cannot subscribe over %s (%s); retrying with backoff",
                            self.url, reason)
            else:
                log.debug("sync reconnect failed (%s); next try in %.1fs", reason, delay)
            await trio.sleep(delay)

    async def _one_socket(self) -> tuple[str, str | None]:
        """Run one socket until it ends; returns (close reason, backoff kind)."""
        # One deadline bounds the handshake and then every wait for a server message;
        # each message pushes it back (the JS client's server inactivity timer).
        deadline = trio.CancelScope(deadline=trio.current_time() + self._inactivity_timeout)
        outcome: list[tuple[str, str | None]] = []
        try:
            with deadline:
                async with aconnect_ws(self.url, self._client,
                                       max_message_size_bytes=_MAX_FRAME_READ) as ws:
                    self._state.on_open(int(time.time() * 1000))
                    self._wake_writer.set()
                    log.debug("sync socket open to %s", self.url)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._write, ws, outcome, nursery.cancel_scope)
                        await self._read(ws, outcome, deadline)
                        nursery.cancel_scope.cancel()
        except* WebSocketUpgradeError as group:
            status = group.exceptions[0].response.status_code  # type: ignore[attr-defined]
            outcome.append((f"upgrade refused with HTTP {status}", None))
        except* WebSocketDisconnect as group:  # the server closed before accepting
            e = group.exceptions[0]
            outcome.append((e.reason or f"closed with code {e.code}", e.reason or None))  # type: ignore[attr-defined]
        except* (httpx.TransportError, HTTPXWSException, OSError) as group:
            outcome.append((f"{type(group.exceptions[0]).__name__}: {group.exceptions[0]}",
                            None))
        if deadline.cancelled_caught and not outcome:
            outcome.append(("InactiveServer", CLIENT_CLOSE))
        return outcome[0] if outcome else ("closed", None)

    async def _read(self, ws: Any, outcome: list[tuple[str, str | None]],
                    deadline: trio.CancelScope) -> None:
        while True:
            try:
                text = await ws.receive_text()
            except WebSocketDisconnect as e:
                if e.code not in EXPECTED_CLOSE_CODES:
                    log.warning("sync socket closed with code %s: %s", e.code, e.reason)
                outcome.append((e.reason or f"closed with code {e.code}", e.reason or None))
                return
            except (WebSocketNetworkError, WebSocketInvalidTypeReceived) as e:
                outcome.append((f"{type(e).__name__}", None))
                return
            deadline.deadline = trio.current_time() + self._inactivity_timeout
            try:
                message = decode_server_message(text)
                if isinstance(message, TransitionChunk):
                    message = self._state.chunks.feed(message)
                elif self._state.chunks.busy:
                    log.warning("sync: %s arrived amid TransitionChunks",
                                type(message).__name__)
                    self._state.chunks.reset()
                if isinstance(message, Transition):
                    self._apply(message)
            except SyncProtocolError as e:
                log.warning("sync protocol error: %s", e)
                outcome.append((type(e).__name__, CLIENT_CLOSE))
                return
            if isinstance(message, (FatalError, AuthError)):
                log.error("sync server sent %s: %s", type(message).__name__, message.error)
                outcome.append((message.error, message.error))
                return
            if isinstance(message, UnknownServerMessage):
                log.debug("sync: ignoring %s", message.type)
            elif isinstance(message, Ping):
                log.debug("sync: ping")

    def _apply(self, transition: Transition) -> None:
        results = self._state.apply(transition)
        log.debug("sync transition %s -> %s, %d result(s)", transition.start_version,
                  transition.end_version, len(results))
        for query_id, result in results.items():
            sub = self._subs.get(query_id)
            if sub is not None:
                sub._deliver(result)
        if not self.connected.value:
            if self._warned:
                log.info("subscribed over %s", self.url)
            self._warned = False
            self.connected.value = True

    async def _write(self, ws: Any, outcome: list[tuple[str, str | None]],
                     connection: trio.CancelScope) -> None:
        while True:
            try:
                for message in self._state.take_outbox():
                    await ws.send_text(encode_message(message))
            except (HTTPXWSException, httpx.TransportError, LocalProtocolError, OSError,
                    anyio.ClosedResourceError, anyio.BrokenResourceError) as e:
                outcome.append((f"FailedToSendMessage: {type(e).__name__}", CLIENT_CLOSE))
                connection.cancel()
                return
            if not self._state.has_outbox:
                self._wake_writer = trio.Event()
                await self._wake_writer.wait()


__all__ += ["QueryError", "QueryResult", "QuerySuccess"]
