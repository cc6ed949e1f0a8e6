"""EventHub against a loopback SSE server: routing per session, reconnect on drop and on silence."""

from __future__ import annotations

import json
import logging

import attrs
import httpx
import pytest
import trio

from oco._retry import OPENCODE_EVENTS
from oco.opencode import EventHub, OpenCodeClient, PartDelta, SessionIdle, StreamReconnected
from oco.testing import serve_asgi


def _sse(kind: str, **properties) -> bytes:
    return f"data: {json.dumps({'type': kind, 'properties': properties})}\n\n".encode()


class ScriptedEvents:
    """`GET /event`: 1st connection sends events then closes; later ones go silent after connecting."""

    def __init__(self) -> None:
        self.connections = 0
        self.authorized: list[bool] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            return
        self.connections += 1
        self.authorized.append(any(k == b"authorization" for k, _ in scope["headers"]))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": _sse("server.connected"), "more_body": True})
        if self.connections == 1:
            for chunk in (
                _sse(
                    "message.part.delta",
                    sessionID="ses_2",
                    messageID="m",
                    partID="p",
                    field="text",
                    delta="other",
                ),
                _sse(
                    "message.part.delta",
                    sessionID="ses_1",
                    messageID="m",
                    partID="p",
                    field="text",
                    delta="mine",
                ),
                _sse("session.next.unknown", sessionID="ses_1"),
                _sse("session.idle", sessionID="ses_1"),
            ):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        await trio.sleep_forever()  # silent: no heartbeat


async def test_events_are_routed_per_session_and_the_stream_is_reopened():
    app = ScriptedEvents()
    async with serve_asgi(app) as url, trio.open_nursery() as nursery:
        client = OpenCodeClient(url, "pw", "/tmp")
        hub = EventHub(client, stall_timeout=0.5, reconnect=attrs.evolve(OPENCODE_EVENTS, wait_initial=0.05))
        with hub.subscribe("ses_1") as mine:
            with trio.fail_after(10):
                await nursery.start(hub.run)
                got = [await mine.receive() for _ in range(3)]
                assert got == [
                    PartDelta("ses_1", "m", "p", "text", "mine"),
                    SessionIdle("ses_1"),
                    StreamReconnected(),
                ]
                # The second connection goes silent; the hub gives up on it and reconnects.
                assert await mine.receive() == StreamReconnected()
        assert app.connections >= 3 and all(app.authorized)
        hub.close()
        with hub.subscribe("ses_1") as late:
            assert [e async for e in late] == []  # closed hub: the subscription ends at once
        await client.aclose()
        nursery.cancel_scope.cancel()


class TimedStreams(httpx.AsyncBaseTransport):
    """`GET /event` in process, streamed on trio time: connection n says `server.connected`,
    stays up `up(n)` seconds (a heartbeat every 10 s, as OpenCode sends them), then ends."""

    def __init__(self, up) -> None:
        self.up = up
        self.opened: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        up = self.up(len(self.opened))
        self.opened.append(trio.current_time())

        async def body():
            yield _sse("server.connected")
            left = up
            while left > 0:
                await trio.sleep(min(10.0, left))
                left -= 10.0
                yield _sse("server.heartbeat")

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


async def run_hub(streams: TimedStreams, seconds: float) -> None:
    client = OpenCodeClient("http://opencode.test", "pw", "/tmp", http=httpx.AsyncClient(transport=streams))
    async with trio.open_nursery() as nursery:
        await nursery.start(EventHub(client).run)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO and "event stream" in r.getMessage()
    ]


async def test_a_stream_that_connects_and_drops_at_once_backs_off_and_is_said_once(autojump_clock, caplog):
    # The delay went back to 0.2 s on every server.connected: ~300 reconnects a minute, each at INFO.
    caplog.set_level(logging.DEBUG, logger="oco.opencode.events")
    streams = TimedStreams(lambda n: 0)
    await run_hub(streams, 60)
    gaps = [round(b - a, 6) for a, b in zip(streams.opened, streams.opened[1:], strict=False)]
    assert gaps[:7] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert len(streams.opened) <= 20
    assert said(caplog) == ["opencode event stream ended; retry 1 in 0.2 s"]


async def test_a_stream_that_was_up_for_a_while_reconnects_fast_again(autojump_clock, caplog):
    caplog.set_level(logging.DEBUG, logger="oco.opencode.events")
    streams = TimedStreams(lambda n: 40 if n == 5 else 0)  # the sixth stays up 40 s
    await run_hub(streams, 60)
    gaps = [round(b - a, 6) for a, b in zip(streams.opened, streams.opened[1:], strict=False)]
    assert gaps[:7] == [0.2, 0.4, 0.8, 1.6, 3.2, 40 + 0.2, 0.4]
    assert len(said(caplog)) == 2  # each run of losses is said once
