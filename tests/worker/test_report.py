"""What a worker publishes about itself (`Worker.report`): the only thing the supervisor reads."""

from __future__ import annotations

import pytest
import trio

from oco._retry import HEARTBEAT
from oco.testing import running_worker
from oco.worker import State, WorkerReport


@pytest.mark.real_backoff(HEARTBEAT)  # the failing beat is retried while ready
async def test_the_report_follows_the_state_and_the_last_error_as_they_change(
    fake, new_worker, autojump_clock: object
) -> None:
    created = fake.create_worker()
    worker = new_worker(created)
    assert worker.report.value == WorkerReport(State.STARTING)
    async with running_worker(worker, until=None):
        with trio.fail_after(30):
            await worker.report.wait_value(lambda r: r.state is State.READY)
        assert worker.report.value == WorkerReport(State.READY)  # no error, no chat, no OpenCode
        fake.faults.add(function="workers:heartbeat", status=503)
        with trio.fail_after(120):
            failing = await worker.report.wait_value(lambda r: r.last_error is not None)
        assert failing.state is State.READY and "workers:heartbeat" in (failing.last_error or "")
    assert worker.report.value.state is State.STOPPED
    assert (worker.report.value.turns_in_flight, worker.report.value.opencode_pid) == (0, None)
