"""Convex query subscriptions over the sync protocol: one websocket, many live queries.

`ConvexSubscriptions` opens `/api/<client version>/sync` with httpx-ws (so tests plug in
at the httpx transport), replays its query set on every new socket, and reconnects with
backoff when the socket closes, the server falls silent for 60 s, or sends a frame this
client cannot read (not JSON, binary, the wrong shape, over `MAX_FRAME_BYTES`, a
FatalError, a Transition that does not follow on from the client's version). A frame from
the server never raises out of here: a bad one ends the socket, a bad result fails its
query. The protocol decisions live in the pure `SyncState`; this module moves frames and
time, and passes every text from the server through `oco._text.external` before logging it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import attrs
import httpx
import trio
import trio_util
import wsproto.connection
import wsproto.events
from httpx_ws import (
    AsyncWebSocketSession,
    HTTPXWSException,
    WebSocketDisconnect,
    WebSocketInvalidTypeReceived,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
)
from wsproto.utilities import LocalProtocolError

from oco._retry import retry_line
from oco._text import external
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
    MAX_TRANSITION_CHARS,
    QueryError,
    QueryResult,
    QuerySuccess,
    ReconnectLog,
    SyncState,
)
from oco.errors import OcoError, Refused

__all__ = [
    "CLIENT_VERSION",
    "MAX_FRAME_BYTES",
    "ConvexSubscriptions",
    "Subscription",
    "SyncQueryError",
    "sync_url",
]

log = logging.getLogger("oco.convex.sync")

CLIENT_VERSION = "1.48.0"  # the npm client whose protocol we follow; goes into the URL
INACTIVITY_TIMEOUT = 60.0  # the JS client's serverInactivityThreshold
# Largest frame read from the server. httpx-ws joins a message's fragments without any
# bound (its max_message_size_bytes is the size of one network read), so `_BoundedSession`
# counts them. 16 MiB is what one Convex function may return; larger Transitions come as
# TransitionChunks, which join up to MAX_TRANSITION_CHARS.
MAX_FRAME_BYTES = 16 << 20
_READ_SIZE = 1 << 20


class SyncQueryError(Refused):
    """The server reported that a subscribed query failed (a `QueryFailed`), or sent a
    result for it that could not be read. The message is the server's, made inert."""

    def __init__(self, udf_path: str, message: str, data: Any = None) -> None:
        super().__init__(f"{udf_path}: {external(message)}")
        self.udf_path = udf_path
        self.data = data


class FrameTooLarge(HTTPXWSException):
    """The server sent a websocket message over the client's bound."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a frame over {limit} bytes")
        self.limit = limit


class _BoundedConnection(wsproto.connection.Connection):
    """A wsproto client connection that refuses a message once its fragments pass `limit`
    bytes, before httpx-ws has buffered more of it (it reads 1 MiB at a time)."""

    def __init__(self, limit: int) -> None:
        super().__init__(wsproto.ConnectionType.CLIENT)
        self._limit = limit
        self._pending = 0

    def events(self) -> Any:
        for event in super().events():
            if isinstance(event, wsproto.events.Message):
                data = event.data
                self._pending += (
                    len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode("utf-8"))
                )
                if self._pending > self._limit:
                    raise FrameTooLarge(self._limit)
                if event.message_finished:
                    self._pending = 0
            yield event


class _BoundedSession(AsyncWebSocketSession):
    """An httpx-ws session over `_BoundedConnection`."""

    def __init__(self, *args: Any, max_frame_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = _BoundedConnection(max_frame_bytes)


@attrs.frozen
class _SocketEnd:
    """Why one socket ended: `close_reason` for the next Connect's lastCloseReason, `kind`
    for the backoff (CLIENT_CLOSE, the server's reason, or None when unknown), and `cause`,
    one inert line for the log."""

    close_reason: str
    kind: str | None
    cause: str


def sync_url(deployment_url: str, client_version: str = CLIENT_VERSION) -> str:
    """The sync endpoint of a deployment, as an http(s) URL (httpx-ws upgrades it)."""
    url = httpx.URL(deployment_url)
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    if scheme not in ("http", "https"):
        raise OcoError(f"Convex URL must be http(s): {deployment_url}")
    return str(url.copy_with(scheme=scheme, path=f"/api/{client_version}/sync", query=None, fragment=None))


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
        max_frame_bytes: int = MAX_FRAME_BYTES,
        max_transition_chars: int = MAX_TRANSITION_CHARS,
    ) -> None:
        self.url = sync_url(url, client_version)
        self.connected = trio_util.AsyncValue(False)
        self._client = client
        self._inactivity_timeout = inactivity_timeout
        self._jitter = jitter
        self._max_frame_bytes = max_frame_bytes
        self._state = SyncState(session_id=str(uuid.uuid4()), max_transition_chars=max_transition_chars)
        self._subs: dict[int, Subscription] = {}
        self._wake_writer = trio.Event()
        self._reconnects = ReconnectLog()
        self._warned = False  # a WARNING went out; the next subscription says it is back
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
    def subscribe(self, udf_path: str, args: dict[str, Any] | None = None) -> Iterator[Subscription]:
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
            end = await self._one_socket()
            was_connected = self.connected.value
            self.connected.value = False
            now = trio.current_time()
            delay = self._state.on_close(end.close_reason, end.kind, self._jitter(), now=now)
            self._log_reconnect(end, delay, was_connected, now)
            await trio.sleep(delay)

    def _log_reconnect(self, end: _SocketEnd, delay: float, was_connected: bool, now: float) -> None:
        report = self._reconnects.on_reconnect(now)
        retry = self._state.retries
        if not report.loud:
            log.debug("%s", retry_line(f"sync socket to {self.url} closed ({end.cause})", retry, delay))
            return
        self._warned = True
        if report.repeats:
            log.warning(
                "sync socket to %s reconnected %d times in the last %.0f min: %s",
                self.url,
                report.repeats,
                report.span / 60,
                end.cause,
            )
        elif was_connected:
            log.warning("%s", retry_line(f"sync socket to {self.url} lost ({end.cause})", retry, delay))
        else:
            log.warning("%s", retry_line(f"cannot subscribe over {self.url} ({end.cause})", retry, delay))

    async def _one_socket(self) -> _SocketEnd:
        """Run one socket until it ends; returns why."""
        # One deadline bounds the handshake and then every wait for a server message;
        # each message pushes it back (the JS client's server inactivity timer).
        deadline = trio.CancelScope(deadline=trio.current_time() + self._inactivity_timeout)
        outcome: list[_SocketEnd] = []
        session = functools.partial(_BoundedSession, max_frame_bytes=self._max_frame_bytes)
        try:
            with deadline:
                async with aconnect_ws(  # type: ignore[var-annotated]  # typed by session_class
                    self.url,
                    self._client,
                    max_message_size_bytes=_READ_SIZE,
                    session_class=session,  # type: ignore[arg-type]  # a partial of the session class
                ) as ws:
                    self._state.on_open(int(time.time() * 1000), now=trio.current_time())
                    self._wake_writer.set()
                    log.debug("sync socket open to %s", self.url)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._write, ws, outcome, nursery.cancel_scope)
                        outcome.append(await self._read(ws, deadline))
                        nursery.cancel_scope.cancel()
        except* WebSocketUpgradeError as group:
            status = group.exceptions[0].response.status_code  # type: ignore[union-attr]  # a leaf: one socket raises one
            outcome.append(
                _SocketEnd(f"upgrade refused with HTTP {status}", None, f"upgrade refused with HTTP {status}")
            )
        except* WebSocketDisconnect as group:  # the server closed before accepting
            outcome.append(_closed_by_server(group.exceptions[0]))  # type: ignore[arg-type]
        except* FrameTooLarge as group:
            limit = group.exceptions[0].limit  # type: ignore[union-attr]  # a leaf: one socket raises one
            outcome.append(_SocketEnd("FrameTooLarge", None, f"the server sent a frame over {limit} bytes"))
        except* (httpx.TransportError, HTTPXWSException, OSError) as group:
            e = group.exceptions[0]
            outcome.append(_SocketEnd(type(e).__name__, None, external(f"{type(e).__name__}: {e}")))
        if deadline.cancelled_caught and not outcome:
            outcome.append(
                _SocketEnd(
                    "InactiveServer",
                    CLIENT_CLOSE,
                    f"no message from the server for {self._inactivity_timeout:.0f} s",
                )
            )
        return outcome[0] if outcome else _SocketEnd("closed", None, "closed")

    async def _read(self, ws: Any, deadline: trio.CancelScope) -> _SocketEnd:
        while True:
            try:
                text = await ws.receive_text()
            except WebSocketDisconnect as e:
                return _closed_by_server(e)
            except WebSocketInvalidTypeReceived:
                return _SocketEnd(
                    "BinaryFrame", None, "the server sent a binary frame (the protocol is text only)"
                )
            except WebSocketNetworkError as e:
                return _SocketEnd(type(e).__name__, None, "the network connection broke")
            deadline.deadline = trio.current_time() + self._inactivity_timeout
            try:
                end = self._handle(text)
            except SyncProtocolError as e:
                return _SocketEnd(type(e).__name__, None, f"unreadable frame: {external(e)}")
            if end is not None:
                return end

    def _handle(self, text: str) -> _SocketEnd | None:
        """One server frame; a `_SocketEnd` when it ends the socket."""
        message: object = decode_server_message(text)
        if isinstance(message, TransitionChunk):
            message = self._state.chunks.feed(message)
        elif self._state.chunks.busy:
            log.debug("sync: %s arrived amid TransitionChunks", type(message).__name__)
            self._state.chunks.reset()
        match message:
            case Transition():
                self._apply(message)
            case FatalError() | AuthError():
                name = type(message).__name__
                return _SocketEnd(
                    message.error[:200], message.error, f"the server sent {name}: {external(message.error)}"
                )
            case UnknownServerMessage():
                log.debug("sync: ignoring %s", external(message.type, 80))
            case Ping():
                log.debug("sync: ping")
        return None

    def _apply(self, transition: Transition) -> None:
        results = self._state.apply(transition, now=trio.current_time())
        log.debug(
            "sync transition %s -> %s, %d result(s)",
            transition.start_version,
            transition.end_version,
            len(results),
        )
        for query_id, result in results.items():
            sub = self._subs.get(query_id)
            if sub is not None:
                sub._deliver(result)
        if not self.connected.value:
            if self._warned:
                log.info("subscribed over %s", self.url)
            self._warned = False
            self.connected.value = True

    async def _write(self, ws: Any, outcome: list[_SocketEnd], connection: trio.CancelScope) -> None:
        while True:
            try:
                for message in self._state.take_outbox():
                    await ws.send_text(encode_message(message))
            except (
                HTTPXWSException,
                httpx.TransportError,
                LocalProtocolError,
                OSError,
                anyio.ClosedResourceError,
                anyio.BrokenResourceError,
            ) as e:
                outcome.append(
                    _SocketEnd("FailedToSendMessage", CLIENT_CLOSE, f"could not send ({type(e).__name__})")
                )
                connection.cancel()
                return
            if not self._state.has_outbox:
                self._wake_writer = trio.Event()
                await self._wake_writer.wait()


def _closed_by_server(e: WebSocketDisconnect) -> _SocketEnd:
    reason = e.reason or ""
    cause = f"closed by the server with code {e.code}" + (f": {external(reason, 200)}" if reason else "")
    return _SocketEnd(reason[:200] or f"closed with code {e.code}", reason or None, cause)


__all__ += ["QueryError", "QueryResult", "QuerySuccess"]
