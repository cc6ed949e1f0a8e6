"""OpenCode's `/event` SSE stream (or `/global/event` for a shared server): one reader per server (the EventHub) of the typed events.

The hub keeps one connection open (no read timeout; heartbeats arrive every 10 s), reconnects
when it drops or stays silent for `stall_timeout` (the `OPENCODE_EVENTS` policy: the delay
grows while connections keep failing, and starts over only once one stayed up for a while;
the first loss of a run is said at INFO, the rest at DEBUG), and hands each event to the
subscribers of its OpenCode session id through trio memory channels. After a reconnect every
subscriber gets `StreamReconnected`, because events may have been lost in the gap. An event
over `max_event_bytes` is dropped (logged once per hub): a turn reconciles from the message
list at its end, so a lost event costs streaming, not the answer. The event types and
`parse_event` are pure, in `_event_types`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import trio

from oco._retry import OPENCODE_EVENTS, OutageReport, RetryPolicy, Streak, announce

from ._client import OpenCodeClient
from ._event_types import Event, ServerConnected, StreamReconnected, parse_event
from ._sharing import unwrap_global
from ._sse import MAX_EVENT_BYTES, SSEDecoder

log = logging.getLogger("oco.opencode.events")


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
        global_stream: bool = False,
    ) -> None:
        """`global_stream`: read `/global/event` (every directory's events, for a shared
        server) instead of the client directory's `/event`."""
        self.client = client
        self.global_stream = global_stream
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
            self.client.base_url + ("/global/event" if self.global_stream else "/event"),
            params={} if self.global_stream else self.client.params,
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
                            decoded = json.loads(data)
                            event = parse_event(unwrap_global(decoded) if self.global_stream else decoded)
                        except ValueError:
                            continue
                        if event is not None:
                            handle(event)
                    if decoder.dropped > dropped:
                        self._note_dropped(decoder.dropped - dropped)
                        dropped = decoder.dropped
            finally:
                await chunks.aclose()  # type: ignore[attr-defined]  # httpx types its async generator as AsyncIterator

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
