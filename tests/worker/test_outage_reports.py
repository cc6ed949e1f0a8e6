"""An outage while the worker is ready is said once, then every five minutes, not per retry."""

from __future__ import annotations

import itertools
import logging

import pytest
import trio

from oco._retry import HEARTBEAT, POLLING
from oco.testing import running_worker
from oco.worker import State
from timed_records import Timed


@pytest.mark.real_backoff(POLLING)
async def test_a_watched_query_failing_for_minutes_is_a_warning_every_five_minutes(
    fake, new_worker, autojump_clock: object, timed: Timed
) -> None:
    created = fake.create_worker()
    async with running_worker(new_worker(created)):
        fake.faults.add(function="workers:getByMachineAndWorker", status=503)
        start = trio.current_time()
        await trio.sleep(12 * 60)
    warnings = [
        t - start
        for t, r in timed.records
        if r.levelno >= logging.WARNING and t >= start and "watching" in r.getMessage()
    ]
    assert 2 <= len(warnings) <= 3, warnings  # at once, after 5 and (maybe) 10 minutes
    assert all(b - a >= 300 for a, b in itertools.pairwise(warnings))
    # The client's own retries of each poll stay at DEBUG.
    assert not any(r.levelno >= logging.WARNING and r.name == "oco.retry" for _, r in timed.records)


@pytest.mark.real_backoff(HEARTBEAT)
async def test_an_unreachable_heartbeat_is_said_once_then_every_five_minutes_and_its_end(
    fake, new_worker, autojump_clock: object, timed: Timed
) -> None:
    created = fake.create_worker()
    async with running_worker(new_worker(created)) as worker:
        fake.faults.add(function="workers:heartbeat", status=503, times=40)
        start = trio.current_time()
        await trio.sleep(20 * 60)
        assert worker.state.value is State.READY  # never restarted for it
    beats = [
        (t - start, r)
        for t, r in timed.records
        if t >= start and "workers:heartbeat" in r.getMessage() and r.name == "oco.worker._worker"
    ]
    warnings = [t for t, r in beats if r.levelno == logging.WARNING]
    assert warnings and warnings[0] < 1 and all(b - a >= 300 for a, b in itertools.pairwise(warnings))
    assert any(r.levelno == logging.DEBUG for _, r in beats)
    assert any(
        "answers again" in r.getMessage() and r.levelno == logging.INFO
        for t, r in timed.records
        if t >= start
    )
