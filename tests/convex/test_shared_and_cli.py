"""One client per URL in a process; and `trio-oco fake-convex` as a real subprocess."""

from __future__ import annotations

import signal

import trio

from oco.convex import ConvexClient, RetryPolicy, shared_convex_client
from oco.testing import open_oco


async def test_shared_client_is_one_per_url_and_closed_by_the_last_user() -> None:
    async with shared_convex_client("http://127.0.0.1:9/") as a:
        async with shared_convex_client("http://127.0.0.1:9") as b:
            assert a is b
        assert not a._http.is_closed
        async with shared_convex_client("http://127.0.0.1:10") as other:
            assert other is not a
    assert a._http.is_closed
    async with shared_convex_client("http://127.0.0.1:9") as fresh:
        assert fresh is not a


async def test_shared_client_closes_even_when_cancelled() -> None:
    with trio.CancelScope() as scope:
        async with shared_convex_client("http://127.0.0.1:11") as client:
            scope.cancel()
            await trio.sleep_forever()
    assert client._http.is_closed


async def test_fake_convex_command_serves_until_sigint() -> None:
    async with open_oco("fake-convex", "--workers", "2", "--pending", stderr_apart=True) as proc:
        with trio.fail_after(15):
            info = await proc.json_line()
            assert info["url"].startswith("http://127.0.0.1:")
            assert len(info["workers"]) == 2 and info["user_session"]
            first = info["workers"][0]
            async with ConvexClient(info["url"], retry=RetryPolicy.never()) as client:
                record = await client.query(
                    "workers:getByMachineAndWorker",
                    {"machineId": first["machineId"], "workerId": first["workerId"]},
                )
            assert record["approvalStatus"] == "pending"
            proc.process.send_signal(signal.SIGINT)
            assert await proc.wait(timeout=15) == 0
    assert proc.text.count("\n") == 1  # exactly one line
