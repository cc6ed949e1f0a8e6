"""The shared mode's pure parts and its view, without OpenCode: keys, routing, directory checks.

The view and the hub talk HTTP to an `httpx.MockTransport` playing OpenCode (the outside world
here), including one that ignores `?directory=` the way upstream reports say some versions do.
"""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from oco.opencode import (
    EventHub,
    OpenCodeClient,
    OpenCodeError,
    PartDelta,
    PermissionAsked,
    ServerKey,
    StreamReconnected,
    parse_event,
    server_key,
)
from oco.opencode._sharing import same_directory, unwrap_global
from oco.opencode._view import DirectoryClient

ENV = {"PATH": "/usr/bin", "OPENAI_API_KEY": "sk-very-secret-value", "XDG_CONFIG_HOME": "/home/u/.config"}


def test_workers_with_the_same_environment_share_a_key_and_any_difference_splits_them(tmp_path) -> None:
    bin = tmp_path / "opencode"
    bin.write_text("")
    link = tmp_path / "opencode-link"
    link.symlink_to(bin)
    key = server_key(str(bin), ENV)
    assert server_key(str(link), dict(reversed(ENV.items()))) == key  # same binary, same variables
    assert server_key(str(bin), {**ENV, "XDG_CONFIG_HOME": "/other"}) != key  # another global config
    assert server_key(str(bin), {**ENV, "EXTRA": ""}) != key
    assert server_key(str(tmp_path / "other-opencode"), ENV) != key
    # A key is shown in logs and status: it never carries a variable's value.
    for shown in (str(key), repr(key), key.label):
        assert "sk-very-secret-value" not in shown and "/home/u" not in shown
    assert key.label == f"shared {key.environment[:8]}"
    assert isinstance(key, ServerKey)


def test_global_events_unwrap_to_the_per_directory_shape() -> None:
    inner = {"type": "session.idle", "properties": {"sessionID": "ses_a"}}
    assert unwrap_global({"directory": "/p/a", "payload": inner}) == inner
    assert unwrap_global({"payload": inner}) == inner  # server.connected has no directory
    assert unwrap_global(inner) == inner
    assert unwrap_global([1]) == [1]
    assert same_directory("/tmp/../tmp", "/tmp")


def _global(directory: str, kind: str, **properties: object) -> bytes:
    body = {"directory": directory, "payload": {"type": kind, "properties": properties}}
    return f"data: {json.dumps(body)}\n\n".encode()


async def test_one_global_stream_routes_each_event_to_its_session_only() -> None:
    """Deltas and permission requests of one directory's session never reach another's turn."""
    seen_urls: list[httpx.URL] = []

    def opencode(request: httpx.Request) -> httpx.Response:
        seen_urls.append(request.url)
        stream = b"".join(
            [
                f"data: {json.dumps({'payload': {'type': 'server.connected', 'properties': {}}})}\n\n".encode(),
                _global(
                    "/p/a",
                    "message.part.delta",
                    sessionID="ses_a",
                    messageID="m",
                    partID="p",
                    field="text",
                    delta="alpha",
                ),
                _global(
                    "/p/b",
                    "permission.asked",
                    sessionID="ses_b",
                    id="per_b",
                    permission="bash",
                    patterns=["ls"],
                ),
                _global(
                    "/p/b",
                    "message.part.delta",
                    sessionID="ses_b",
                    messageID="m",
                    partID="p",
                    field="text",
                    delta="beta",
                ),
            ]
        )
        return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(opencode)) as http:
        client = OpenCodeClient("http://127.0.0.1:1", "pw", "/neutral", http=http)
        hub = EventHub(client, global_stream=True)
        with hub.subscribe("ses_a") as a, hub.subscribe("ses_b") as b:
            async with trio.open_nursery() as nursery:
                await nursery.start(hub.run)
                with trio.fail_after(5):
                    got_a = await a.receive()
                    got_b = [await b.receive(), await b.receive()]
                nursery.cancel_scope.cancel()
            rest = []
            while True:
                try:
                    rest.append(a.receive_nowait())
                except trio.WouldBlock:
                    break
        assert isinstance(got_a, PartDelta) and got_a.delta == "alpha"
        assert isinstance(got_b[0], PermissionAsked) and got_b[0].id == "per_b"
        assert isinstance(got_b[1], PartDelta) and got_b[1].delta == "beta"
        # Nothing of ses_b came to ses_a (a reconnect notice, when the stream was reopened, goes to all).
        assert [e for e in rest if not isinstance(e, StreamReconnected)] == []
    assert seen_urls[0].path == "/global/event" and "directory" not in seen_urls[0].params


def _opencode_reporting(directory_of: dict[str, str], calls: list[httpx.Request]):
    """A fake OpenCode that creates sessions in `directory_of["created"]` whatever it is asked."""

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.method == "POST" and request.url.path == "/session":
            return httpx.Response(200, json={"id": "ses_new", "directory": directory_of["created"]})
        if request.method == "GET" and request.url.path.startswith("/session/"):
            return httpx.Response(200, json={"id": "ses_x", "directory": directory_of["existing"]})
        if request.method == "DELETE":
            return httpx.Response(200, json=True)
        return httpx.Response(404)

    return handler


async def test_a_view_refuses_a_session_created_in_another_directory_and_says_what_to_do() -> None:
    calls: list[httpx.Request] = []
    where = {"created": "/projects/elsewhere", "existing": "/projects/other"}
    async with httpx.AsyncClient(transport=httpx.MockTransport(_opencode_reporting(where, calls))) as http:
        origin = OpenCodeClient("http://127.0.0.1:1", "pw", "/neutral", http=http)
        mine = DirectoryClient(origin, "/projects/mine")
        with pytest.raises(OpenCodeError) as info:
            await mine.create_session("chat")
        message = str(info.value)
        assert "ignores ?directory=" in message and '"opencode_server": "per-worker"' in message
        assert [(c.method, c.url.path) for c in calls] == [
            ("POST", "/session"),
            ("DELETE", "/session/ses_new"),
        ]
        assert all(c.url.params["directory"] == "/projects/mine" for c in calls)
        assert calls[0].headers["authorization"] == origin.auth._auth_header  # the server's password

        # Another directory's session is not ours, although OpenCode answers for it.
        assert await mine.get_session("ses_x") is None
        where["existing"] = "/projects/mine"
        assert (await mine.get_session("ses_x")) == {"id": "ses_x", "directory": "/projects/mine"}
        where["created"] = "/projects/mine"
        assert await mine.create_session("chat") == "ses_new"


def test_parse_event_after_unwrap_routes_by_session_id() -> None:
    event = parse_event(
        unwrap_global(
            {"directory": "/p/a", "payload": {"type": "session.idle", "properties": {"sessionID": "ses_a"}}}
        )
    )
    assert getattr(event, "session_id", None) == "ses_a"
