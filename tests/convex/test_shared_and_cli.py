"""`trio-oco fake-convex` as a real subprocess.

(One client per URL in a process is the orchestrator's business now:
tests/orchestrator/test_connections.py.)
"""

from __future__ import annotations

import signal

import trio

from oco.convex import ConvexClient
from oco.testing import open_oco


async def test_fake_convex_command_serves_until_sigint() -> None:
    async with open_oco("fake-convex", "--workers", "2", "--pending", stderr_apart=True) as proc:
        with trio.fail_after(15):
            info = await proc.json_line()
            assert info["url"].startswith("http://127.0.0.1:")
            assert len(info["workers"]) == 2 and info["user_session"]
            first = info["workers"][0]
            async with ConvexClient(info["url"]) as client:
                record = await client.query(
                    "workers:getByMachineAndWorker",
                    {"machineId": first["machineId"], "workerId": first["workerId"]},
                )
            assert record["approvalStatus"] == "pending"
            proc.process.send_signal(signal.SIGINT)
            assert await proc.wait(timeout=15) == 0
    assert proc.text.count("\n") == 1  # exactly one line
