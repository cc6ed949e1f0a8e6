"""A worker reads its live settings at their next use (issue 15: a reload applies them without a
restart). Real workers against the fake Convex in process, on a MockClock; the change is made
the way the orchestrator's reload makes it, by setting the worker's `live_settings`."""

from __future__ import annotations

import itertools

import attrs
import pytest
import trio

from oco.testing import FakeConvex, running_worker
from oco.worker import State


def times(fake: FakeConvex, function: str) -> list[float]:
    """When each call of `function` reached the fake, in trio seconds."""
    return [call.at / 1000 for call in fake.calls if call.function == function]


async def test_a_shorter_approval_poll_interval_asks_again_at_once(fake, new_worker, autojump_clock) -> None:
    created = fake.create_worker(approved=False)
    worker = new_worker(created, approval_poll_interval_s=60.0)
    async with running_worker(worker, until=State.WAITING_APPROVAL):
        first = times(fake, "workers:register")[-1]
        await trio.sleep(10)
        changed_at = trio.current_time()
        worker.live_settings.value = attrs.evolve(worker.settings, approval_poll_interval_s=5.0)
        await trio.sleep(11)
        later = [t - changed_at for t in times(fake, "workers:register") if t > first]
        assert later == pytest.approx([0, 5, 10])  # not 60 s after the first ask


async def test_polling_and_opencode_timeouts_follow_the_live_settings(
    fake, new_worker, autojump_clock
) -> None:
    created = fake.create_worker()
    worker = new_worker(created, poll_idle_interval_s=3.0, opencode_start_timeout_s=15.0)
    async with running_worker(worker):
        await trio.sleep(30)
        worker.live_settings.value = attrs.evolve(
            worker.settings,
            poll_idle_interval_s=20.0,
            opencode_start_timeout_s=40.0,
            opencode_idle_timeout_s=7.0,
        )
        await trio.sleep(5)  # the tick under way ends on the old interval
        since = trio.current_time()
        await trio.sleep(100)
        ticks = [t for t in times(fake, "chat:subscribeToWorkerSessions") if t >= since]
        assert [b - a for a, b in itertools.pairwise(ticks)] == pytest.approx([20.0] * (len(ticks) - 1))
        assert len(ticks) == 5
        # OpenCode's host takes them for its next start and its next idle period.
        assert (worker.host._start_timeout, worker.host._idle_timeout) == (40.0, 7.0)
