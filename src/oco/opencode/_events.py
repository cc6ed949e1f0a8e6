"""OpenCode's `/event` SSE stream: typed events and one reader per server (the EventHub).

The hub keeps one connection open (no read timeout; heartbeats arrive every 10 s), reconnects
when it drops or stays silent for `stall_timeout` (the `OPENCODE_EVENTS` policy: the delay
grows while connections keep failing, and starts over only once one stayed up for a while;
the first loss of a run is said at INFO, the rest at DEBUG), and hands each event to the
subscribers of its OpenCode session id through trio memory channels. After a reconnect every
subscriber gets `StreamReconnected`, because events may have been lost in the gap. An event
over `max_event_bytes` is dropped (logged once per hub): a turn reconciles from the message
list at its end, so a lost event costs streaming, not the answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import httpx
import trio

from oco._retry import OPENCODE_EVENTS, OutageReport, RetryPolicy, Streak, announce
from oco._text import external

from ._client import OpenCodeClient
from ._sse import MAX_EVENT_BYTES, SSEDecoder

log = logging.getLogger("oco.opencode.events")

# Fields are checked when an event is built, so a payload with junk in a field parse_event
# reads becomes None there (TypeError) instead of failing later inside a turn.
_STR = attrs.validators.instance_of(str)
_DICT = attrs.validators.instance_of(dict)


def _text() -> Any:
    return attrs.field(validator=_STR)


def _object() -> Any:
    return attrs.field(validator=_DICT)


@attrs.frozen
class PartDelta:
    """`message.part.delta`: text appended to a part's `field` (usually "text")."""

    session_id: str = _text()
    message_id: str = _text()
    part_id: str = _text()
    field: str = _text()
    delta: str = _text()


@attrs.frozen
class PartUpdated:
    """`message.part.updated`: the whole part as it is now (text, reasoning, tool, step-*)."""

    session_id: str = _text()
    part: dict[str, Any] = _object()


@attrs.frozen
class MessageUpdated:
    """`message.updated`: a message's `info` (role, parentID, time, error …)."""

    session_id: str = _text()
    info: dict[str, Any] = _object()


@attrs.frozen
class SessionStatus:
    """`session.status`: `{"type": "busy" | "idle" | "retry", …}`."""

    session_id: str = _text()
    status: dict[str, Any] = _object()


@attrs.frozen
class SessionIdle:
    session_id: str = _text()


@attrs.frozen
class SessionError:
    """`session.error`: `error` is `{name, data}` (may be absent)."""

    session_id: str = _text()
    error: dict[str, Any] | None = attrs.field(validator=attrs.validators.optional(_DICT))


@attrs.frozen
class PermissionAsked:
    """`permission.asked`: OpenCode waits for `POST /permission/{id}/reply`."""

    session_id: str = _text()
    id: str = _text()
    permission: str = _text()
    patterns: list[str] = attrs.field(
        validator=attrs.validators.deep_iterable(_STR, attrs.validators.instance_of(list))
    )


@attrs.frozen
class QuestionAsked:
    """`question.asked`: the agent's `question` tool waits for an answer nobody in the chat can give."""

    session_id: str = _text()
    id: str = _text()
    questions: list[Any]


@attrs.frozen
class ServerHeartbeat:
    pass


@attrs.frozen
class ServerConnected:
    pass


@attrs.frozen
class StreamReconnected:
    """Synthetic: the stream was re-opened, so events may have been missed."""


Event = (
    PartDelta
    | PartUpdated
    | MessageUpdated
    | SessionStatus
    | SessionIdle
    | SessionError
    | PermissionAsked
    | QuestionAsked
    | ServerHeartbeat
    | ServerConnected
    | StreamReconnected
)


def parse_event(data: Any) -> Event | None:
    """One decoded `/event` payload → a typed event; None for types we do not use or bad shapes."""
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    p = data.get("properties") or {}
    if not isinstance(p, dict):
        return None
    try:
        match kind:
            case "message.part.delta":
                return PartDelta(p["sessionID"], p["messageID"], p["partID"], p["field"], p["delta"])
            case "message.part.updated":
                part = p["part"]
                return PartUpdated(p.get("sessionID") or part["sessionID"], part)
            case "message.updated":
                info = p["info"]
                return MessageUpdated(p.get("sessionID") or info["sessionID"], info)
            case "session.status":
                return SessionStatus(p["sessionID"], p["status"])
            case "session.idle":
                return SessionIdle(p["sessionID"])
            case "session.error":
                if not p.get("sessionID"):
                    return None  # not about a session we could route it to
                return SessionError(p["sessionID"], p.get("error"))
            case "permission.asked":
                return PermissionAsked(p["sessionID"], p["id"], p["permission"], list(p.get("patterns") or []))
            case "question.asked":
                return QuestionAsked(p["sessionID"], p["id"], list(p.get("questions") or []))
            case "server.heartbeat":
                return ServerHeartbeat()
            case "server.connected":
                return ServerConnected()
    except (KeyError, TypeError):
        log.debug("ignoring malformed %s event", external(kind, 80))
    return None


class EventHub:
    """Reads one server's event stream and routes events to per-session subscribers."""

    def __init__(
        self,
        client: OpenCodeClient,
        *,
        stall_timeout: float = 30.0,
        reconnect: RetryPolicy = OPENCODE_EVENTS,
        buffer: int = 10_000,
        max_event_bytes: int = MAX_EVENT_BYTES,
    ) -> None:
        self.client = client
        self.stall_timeout = stall_timeout
        self.reconnect = reconnect
        self.buffer = buffer
        self.max_event_bytes = max_event_bytes
        self.dropped_events = 0  # too large to keep, since the hub started
        self.connections = 0  # how many times the stream was (re)opened
        self._subscribers: dict[str, set[trio.MemorySendChannel[Event]]] = {}
        self._closed = False

    @contextmanager
    def subscribe(self, session_id: str) -> Iterator[trio.MemoryReceiveChannel[Event]]:
        """Events of one OpenCode session, from now until the block ends."""
        send, receive = trio.open_memory_channel[Event](self.buffer)
        if self._closed:
            send.close()  # the server is gone: the subscriber sees the end at once
        self._subscribers.setdefault(session_id, set()).add(send)
        try:
            with receive:
                yield receive
        finally:
            subscribers = self._subscribers.get(session_id, set())
            subscribers.discard(send)
            if not subscribers:
                self._subscribers.pop(session_id, None)
            send.close()

    def close(self) -> None:
        """End every subscription (the server stopped): receivers see the end of the channel."""
        self._closed = True
        for group in self._subscribers.values():
            for send in group:
                send.close()

    def dispatch(self, event: Event) -> None:
        """Hand an event to its session's subscribers (reconnect notices go to all)."""
        if isinstance(event, StreamReconnected):
            targets = [s for group in self._subscribers.values() for s in group]
        else:
            session_id = getattr(event, "session_id", None)
            targets = list(self._subscribers.get(session_id, ())) if session_id else []
        for send in targets:
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                # A consumer this far behind loses stream events; run_turn reconciles at the end.
                log.warning("event subscriber is %d events behind; dropping one", self.buffer)
            except trio.ClosedResourceError:
                pass

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read the stream forever; `started` once the first `server.connected` arrives."""
        losses = Streak(self.reconnect)
        report = OutageReport(loud=logging.INFO)
        status: list[trio.TaskStatus[None]] = [task_status]

        def handle(event: Event) -> None:
            if isinstance(event, ServerConnected):
                self.connections += 1
                losses.up(trio.current_time())
                if status:
                    status.pop().started()
                else:
                    self.dispatch(StreamReconnected())
            self.dispatch(event)

        while True:
            try:
                await self._read_once(handle)
                lost = "opencode event stream ended"
            except (httpx.HTTPError, _Stalled) as exc:
                lost = f"opencode event stream lost ({type(exc).__name__})"
            now = trio.current_time()
            delay = losses.lost(now)
            if losses.losses == 1:
                report.recovered(now)  # a new run of losses: its first is said again
            announce(log, report, lost, losses.losses, delay, now)
            await trio.sleep(delay)

    async def _read_once(self, handle: Callable[[Event], None]) -> None:
        """One connection: hand typed events to `handle` until the stream ends, fails or stalls."""
        async with self.client.http.stream(
            "GET",
            self.client.base_url + "/event",
            params=self.client.params,
            auth=self.client.auth,
            headers={"Accept": "text/event-stream", "Cache-Control": "no-store"},
            timeout=httpx.Timeout(10.0, read=None),  # silence is detected below, not by httpx
        ) as response:
            response.raise_for_status()
            decoder = SSEDecoder(self.max_event_bytes)
            dropped = 0
            chunks = response.aiter_bytes()
            try:
                while True:
                    with trio.move_on_after(self.stall_timeout) as scope:
                        chunk = await anext(chunks, None)
                    if scope.cancelled_caught:
                        raise _Stalled()
                    if chunk is None:
                        return
                    for data in decoder.feed(chunk):
                        try:
                            event = parse_event(json.loads(data))
                        except ValueError:
                            continue
                        if event is not None:
                            handle(event)
                    if decoder.dropped > dropped:
                        self._note_dropped(decoder.dropped - dropped)
                        dropped = decoder.dropped
            finally:
                await chunks.aclose()

    def _note_dropped(self, count: int) -> None:
        if self.dropped_events == 0:
            log.warning(
                "dropped an OpenCode event larger than %d MiB (further ones are logged at DEBUG)",
                self.max_event_bytes // (1024 * 1024),
            )
        else:
            log.debug("dropped %d more oversized OpenCode event(s)", count)
        self.dropped_events += count


class _Stalled(Exception):
    """No event (not even a heartbeat) within the stall timeout."""
