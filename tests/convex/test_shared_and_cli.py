"""`trio-oco fake-convex` as a real subprocess.

(One client per URL in a process is the orchestrator's business now:
tests/orchestrator/test_connections.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import trio

from oco.convex import ConvexClient


async def test_fake_convex_command_serves_until_sigint() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "oco", "fake-convex", "--workers", "2", "--pending"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        with trio.fail_after(15):
            buffer = b""
            while b"\n" not in buffer:
                data = await proc.stdout.receive_some()
                assert data, "fake-convex exited before printing its line"
                buffer += data
            info = json.loads(buffer.split(b"\n")[0])
            assert info["url"].startswith("http://127.0.0.1:")
            assert len(info["workers"]) == 2 and info["user_session"]
            first = info["workers"][0]
            async with ConvexClient(info["url"]) as client:
                record = await client.query(
                    "workers:getByMachineAndWorker",
                    {"machineId": first["machineId"], "workerId": first["workerId"]},
                )
            assert record["approvalStatus"] == "pending"
            proc.send_signal(signal.SIGINT)
            assert await proc.wait() == 0
            rest = await proc.stdout.receive_some()
            assert buffer.count(b"\n") + rest.count(b"\n") == 1  # exactly one line
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
