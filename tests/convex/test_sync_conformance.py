"""Conformance: the official Convex Python client (`convex` on PyPI, a Rust sync client)
subscribes to our fake sync endpoint over real loopback and sees a change arrive.

The client runs in a child process: its blocking calls hold the GIL, so in a thread of
this process it would starve the trio server it talks to.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import httpx
import pytest
import trio
import trio_util

from oco.testing import output_lines, serve_asgi, sync_app, sync_endpoint
from oco.testing._asgi import read_body

pytest.importorskip("convex", reason="the official client is a test extra: convex==0.8.1")

OFFICIAL_CLIENT = """
import json, sys
import convex
client = convex.ConvexClient(sys.argv[1])
for value in client.subscribe(sys.argv[2], json.loads(sys.argv[3])):
    print(json.dumps(value, sort_keys=True), flush=True)
"""


class SessionsBackend:
    """`chat:subscribeToWorkerSessions` over a list, and one HTTP mutation that starts a
    session and bumps the version, as the fake Convex does after a committed write."""

    def __init__(self) -> None:
        self.sessions: list[dict[str, Any]] = []
        self.version = trio_util.AsyncValue(0)

    def run_query(self, path: str, args: dict[str, Any]) -> Any:
        assert path == "chat:subscribeToWorkerSessions"
        return [s for s in self.sessions if s["workerId"] == args["workerId"]]

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        request = json.loads(body)
        assert (scope["path"], request["path"]) == ("/api/mutation", "chat:startSession")
        self.sessions.append({"sessionId": f"s{len(self.sessions)}", "status": "active", **request["args"]})
        self.version.value += 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send(
            {"type": "http.response.body", "body": json.dumps({"status": "success", "value": None}).encode()}
        )


async def test_official_python_client_sees_a_new_session_arrive():
    backend = SessionsBackend()
    endpoint = sync_endpoint(backend.run_query, backend.version)
    async with serve_asgi(sync_app(endpoint, fallback=backend.http)) as url:
        child = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-c",
                OFFICIAL_CLIENT,
                url,
                "chat:subscribeToWorkerSessions",
                json.dumps({"workerId": "w1"}),
            ],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        lines = output_lines(child.stdout)
        try:
            with trio.fail_after(20):
                assert json.loads(await anext(lines)) == []
                async with httpx.AsyncClient(base_url=url) as http:
                    response = await http.post(
                        "/api/mutation",
                        json={
                            "path": "chat:startSession",
                            "format": "convex_encoded_json",
                            "args": {"workerId": "w1", "model": "m"},
                        },
                    )
                    response.raise_for_status()
                assert json.loads(await anext(lines)) == [
                    {"model": "m", "sessionId": "s0", "status": "active", "workerId": "w1"}
                ]
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            # Reap the child even when the test is being cancelled.
            with trio.move_on_after(5, shield=True):
                await child.wait()
    (connect,) = endpoint.connects
    assert connect.connection_count == 0 and connect.last_close_reason == "InitialConnect"
