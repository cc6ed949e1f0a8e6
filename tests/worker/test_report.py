"""What a worker publishes about itself (`Worker.report`): the only thing the supervisor reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from worker_support import make_worker, trio_ms

from oco._retry import HEARTBEAT
from oco.testing import FakeConvex
from oco.worker import State, WorkerReport


@pytest.mark.real_backoff(HEARTBEAT)  # the failing beat is retried while ready
async def test_the_report_follows_the_state_and_the_last_error_as_they_change(
    tmp_path: Path, autojump_clock: object
) -> None:
    fake = FakeConvex(clock=trio_ms)
    created = fake.create_worker()
    worker = make_worker(fake, created, tmp_path)
    assert worker.report.value == WorkerReport(State.STARTING)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        with trio.fail_after(30):
            await worker.report.wait_value(lambda r: r.state is State.READY)
        assert worker.report.value == WorkerReport(State.READY)  # no error, no chat, no OpenCode
        fake.faults.add(function="workers:heartbeat", status=503)
        with trio.fail_after(120):
            failing = await worker.report.wait_value(lambda r: r.last_error is not None)
        assert failing.state is State.READY and "workers:heartbeat" in (failing.last_error or "")
        nursery.cancel_scope.cancel()
    assert worker.report.value.state is State.STOPPED
    assert (worker.report.value.turns_in_flight, worker.report.value.opencode_pid) == (0, None)
