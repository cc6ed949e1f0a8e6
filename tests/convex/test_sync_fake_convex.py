"""The sync endpoint mounted on the fake Convex (the two lines the fake needs), with the
official Python client and ours subscribing to `chat:subscribeToWorkerSessions` while a
session is started through the HTTP API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest
import trio
from httpx_ws.transport import ASGIWebSocketTransport

from oco.convex._sync_client import ConvexSubscriptions
from oco.testing import FakeConvex, output_lines, serve_asgi, sync_endpoint
from oco.testing._sync_server import SyncEndpoint


def mount_sync(fake: FakeConvex) -> SyncEndpoint:
    endpoint = sync_endpoint(fake.run_query, fake.version)
    fake.websocket_routes["/api/{version}/sync"] = fake.websocket_routes["/api/sync"] = endpoint
    return endpoint


def online_worker(fake: FakeConvex) -> str:
    """An approved worker that has registered (so sessions can start on it)."""
    worker = fake.create_worker()
    secret = fake.store.first("workers", workerId=worker.worker_id)["secret"]
    fake.call(
        "workers:register",
        {
            "machineId": worker.machine_id,
            "workerId": worker.worker_id,
            "secret": secret,
            "workingDirectory": "/tmp/project",
            "username": "tester",
        },
    )
    return worker.worker_id


async def start_session_over_http(http: httpx.AsyncClient, fake: FakeConvex, worker_id: str) -> str:
    response = await http.post(
        "/api/mutation",
        json={
            "path": "chat:startSession",
            "format": "convex_encoded_json",
            "args": {"sessionId": fake.user_session, "workerId": worker_id},
        },
    )
    body = response.json()
    assert body["status"] == "success", body
    return body["value"]


async def test_our_client_sees_a_session_started_over_http(autojump_clock):
    fake = FakeConvex(clock=lambda: trio.current_time() * 1000)
    endpoint = mount_sync(fake)
    worker_id = online_worker(fake)
    transport = ASGIWebSocketTransport(fake.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        async with ConvexSubscriptions("http://fake", client=http) as subs:
            with subs.subscribe("chat:subscribeToWorkerSessions", {"workerId": worker_id}) as sessions:
                with trio.fail_after(5):
                    assert await anext(aiter(sessions)) == []
                    runs = endpoint.query_runs
                    session_id = await start_session_over_http(http, fake, worker_id)
                    (row,) = await anext(aiter(sessions))
                    assert row["sessionId"] == session_id
                    assert endpoint.query_runs == runs + 1  # one re-run per write


OFFICIAL_CLIENT = """
import json, sys
import convex
client = convex.ConvexClient(sys.argv[1])
for value in client.subscribe(sys.argv[2], json.loads(sys.argv[3])):
    print(json.dumps(value, sort_keys=True), flush=True)
"""


async def test_official_python_client_sees_a_session_started_over_http():
    pytest.importorskip("convex", reason="the official client is a test extra: convex==0.8.1")
    fake = FakeConvex()
    mount_sync(fake)
    worker_id = online_worker(fake)
    async with serve_asgi(fake.app) as url:
        child = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-c",
                OFFICIAL_CLIENT,
                url,
                "chat:subscribeToWorkerSessions",
                json.dumps({"workerId": worker_id}),
            ],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            lines = output_lines(child.stdout)
            with trio.fail_after(20):
                assert json.loads(await anext(lines)) == []
                async with httpx.AsyncClient(base_url=url) as http:
                    session_id = await start_session_over_http(http, fake, worker_id)
                (row,) = json.loads(await anext(lines))
                assert (row["sessionId"], row["status"]) == (session_id, "active")
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            # Reap the child even when the test is being cancelled.
            with trio.move_on_after(5, shield=True):
                await child.wait()
