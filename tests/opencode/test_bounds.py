"""What OpenCode sends is bounded and made inert before it reaches a log, an error or a reply.

A loopback server plays a misbehaving OpenCode (endless bodies, huge events, escape
sequences); the client, the event hub and the start-up output reader must stay bounded.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager

import pytest
import trio

from oco.opencode import (
    EventHub,
    OpenCodeClient,
    OpenCodeError,
    OpenCodeStartError,
    PartDelta,
    SessionIdle,
    open_opencode_server,
)
from oco.opencode._client import BODY_MAX_BYTES
from oco.opencode._process import _LISTENING
from oco.opencode._sse import MAX_EVENT_BYTES, SSEDecoder
from oco.testing import serve_asgi
from oco.testing._asgi import answer_lifespan

ESCAPES = "\x1b]0;owned\x07\x1b[31m"
MiB = 1024 * 1024


def _sse(kind: str, **properties) -> bytes:
    return f"data: {json.dumps({'type': kind, 'properties': properties})}\n\n".encode()


class Misbehaving:
    """An OpenCode that answers too much: endless bodies, a huge event, escape sequences."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        path = scope["path"]
        status = 500 if path == "/error" else 200
        kind = b"text/event-stream" if path == "/event" else b"application/json"
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]})
        if path == "/event":
            await send({"type": "http.response.body", "body": _sse("server.connected"), "more_body": True})
            huge = _sse(
                "message.part.delta",
                sessionID="ses_1",
                messageID="m",
                partID="p",
                field="text",
                delta="x" * (MAX_EVENT_BYTES + MiB),
            )
            for start in range(0, len(huge), MiB):
                await send(
                    {"type": "http.response.body", "body": huge[start : start + MiB], "more_body": True}
                )
            for chunk in (
                _sse(
                    "message.part.delta",
                    sessionID="ses_1",
                    messageID="m",
                    partID="p",
                    field="text",
                    delta="ok",
                ),
                _sse("session.idle", sessionID="ses_1"),
            ):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await trio.sleep_forever()
        # An endless body: `[` then filler for ever (an error body starts with raw text).
        first = ESCAPES + "boom\nsecond line " + "y" * 1000 if path == "/error" else "["
        await send({"type": "http.response.body", "body": first.encode(), "more_body": True})
        self.sent[path] = 0
        filler = b" " * 65536
        while True:
            await send({"type": "http.response.body", "body": filler, "more_body": True})
            self.sent[path] += len(filler)


@asynccontextmanager
async def _serving(app):
    async with serve_asgi(app) as url:
        client = OpenCodeClient(url, "pw", "/tmp")
        try:
            yield client
        finally:
            await client.aclose()


async def test_an_endless_answer_is_an_error_not_a_memory_spike():
    app = Misbehaving()
    async with _serving(app) as client:
        with trio.fail_after(30):
            with pytest.raises(OpenCodeError) as info:
                await client.request("GET", "/messages")
    assert info.value.status == 200
    assert "answer larger than 32 MiB" in str(info.value)
    assert app.sent["/messages"] < BODY_MAX_BYTES + 16 * MiB  # we stopped reading near the bound


async def test_an_endless_error_body_is_cut_and_its_escape_sequences_dropped():
    app = Misbehaving()
    async with _serving(app) as client:
        with trio.fail_after(30):
            with pytest.raises(OpenCodeError) as info:
                await client.request("GET", "/error")
    message = str(info.value)
    assert info.value.status == 500
    assert "\x1b" not in message and "\n" not in message and "\x07" not in message
    assert "boom" in message and len(message) < 500


async def test_an_oversized_event_is_dropped_once_logged_and_the_stream_goes_on(caplog):
    app = Misbehaving()
    async with _serving(app) as client:
        hub = EventHub(client)
        with hub.subscribe("ses_1") as events, caplog.at_level(logging.WARNING, "oco.opencode.events"):
            async with trio.open_nursery() as nursery:
                with trio.fail_after(30):
                    await nursery.start(hub.run)
                    got = [await events.receive() for _ in range(2)]
                nursery.cancel_scope.cancel()
    assert got == [PartDelta("ses_1", "m", "p", "text", "ok"), SessionIdle("ses_1")]
    assert hub.dropped_events == 1
    assert [r.getMessage() for r in caplog.records] == [
        "dropped an OpenCode event larger than 8 MiB (further ones are logged at DEBUG)"
    ]


def test_sse_decoder_keeps_framing_across_chunks_and_skips_only_the_oversized_event():
    decoder = SSEDecoder(max_event_bytes=20)
    assert decoder.feed(b"data: hello\n\ndata: a\ndata: b\r\n\r\n: comment\n\n") == ["hello", "a\nb"]
    assert decoder.feed(b"data: " + b"x" * 10) == []
    assert decoder.feed(b"x" * 20) == []  # over the bound: this event is dropped
    assert decoder.feed(b"z\ndata: still the same event\n") == []
    assert decoder.feed(b"\ndata: after\n\n") == ["after"]
    assert decoder.dropped == 1


async def test_startup_output_is_escaped_and_bounded_in_the_error(tmp_path):
    script = tmp_path / "fake-opencode"
    script.write_text(
        "#!/bin/sh\n"
        "head -c 1000000 /dev/zero | tr '\\0' 'z'\n"
        "echo\n"
        "printf '\\033]0;owned\\007\\033[31mred alert\\033[0m\\n'\n"
        "exit 3\n"
    )
    script.chmod(0o700)
    with pytest.raises(OpenCodeStartError) as info:
        async with open_opencode_server(str(script), tmp_path):
            raise AssertionError("should not start")
    message = str(info.value)
    assert "red alert" in message and "\x1b" not in message and "\x07" not in message
    assert len(message) < 5 * 400
    assert all(len(line) <= 330 for line in info.value.output_tail)  # 300 and a "(N chars)" note


def test_only_a_loopback_listening_line_is_believed():
    # The client sends the password wherever this line points.
    assert (
        _LISTENING.search(b"opencode server listening on http://127.0.0.1:4096").group(1)
        == b"http://127.0.0.1:4096"
    )
    assert _LISTENING.search(b"opencode server listening on http://example.com:80") is None


class Recording:
    """An OpenCode that hands out a forged session id and records the paths it is asked."""

    def __init__(self) -> None:
        self.paths: list[bytes] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        self.paths.append(scope["raw_path"])
        body = json.dumps(
            {"id": "\x1b[31m../../global/health"} if scope["method"] == "POST" else {"id": "ses_1"}
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


async def test_ids_from_opencode_stay_one_inert_path_segment():
    app = Recording()
    async with _serving(app) as client:
        with pytest.raises(OpenCodeError) as info:
            await client.create_session("title")
        assert "no usable session id" in str(info.value) and "\x1b" not in str(info.value)
        await client.get_session("../../global/health")
    assert app.paths == [b"/session", b"/session/..%2F..%2Fglobal%2Fhealth"]
