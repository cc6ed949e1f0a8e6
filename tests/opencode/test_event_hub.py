"""EventHub against a loopback SSE server: routing per session, reconnect on drop and on silence."""

from __future__ import annotations

import json
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from oco.opencode import EventHub, OpenCodeClient, PartDelta, SessionIdle, StreamReconnected


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
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": _sse("server.connected"), "more_body": True})
        if self.connections == 1:
            for chunk in (
                _sse("message.part.delta", sessionID="ses_2", messageID="m", partID="p", field="text", delta="other"),
                _sse("message.part.delta", sessionID="ses_1", messageID="m", partID="p", field="text", delta="mine"),
                _sse("session.next.unknown", sessionID="ses_1"),
                _sse("session.idle", sessionID="ses_1"),
            ):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        await trio.sleep_forever()  # silent: no heartbeat


async def test_events_are_routed_per_session_and_the_stream_is_reopened():
    app = ScriptedEvents()
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config, mode="asgi"))
        client = OpenCodeClient(binds[0], "pw", "/tmp")
        hub = EventHub(client, stall_timeout=0.5, backoff_initial=0.05)
        with hub.subscribe("ses_1") as mine:
            with trio.fail_after(10):
                await nursery.start(hub.run)
                got = [await mine.receive() for _ in range(3)]
                assert got == [PartDelta("ses_1", "m", "p", "text", "mine"), SessionIdle("ses_1"), StreamReconnected()]
                # The second connection goes silent; the hub gives up on it and reconnects.
                assert await mine.receive() == StreamReconnected()
        assert app.connections >= 3 and all(app.authorized)
        hub.close()
        with hub.subscribe("ses_1") as late:
            assert [e async for e in late] == []  # closed hub: the subscription ends at once
        await client.aclose()
        nursery.cancel_scope.cancel()
