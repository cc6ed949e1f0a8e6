"""Fixtures every test directory shares: the fake Convex in process on trio's clock, real
workers on it, and log records with their trio time.

Being here, this file also puts tests/ on `sys.path`, so the plain modules beside it
(`real_opencode`, `timed_records`) import from any test directory.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from timed_records import Timed

from oco.convex import ConvexClient, RetryPolicy
from oco.testing import CreatedWorker, FakeConvex, in_process_convex, make_worker, trio_ms
from oco.worker import Worker


@pytest.fixture
def fake() -> FakeConvex:
    """A fake Convex whose timestamps are trio time (ms): on a MockClock, call times measure delays."""
    return FakeConvex(clock=trio_ms)


@pytest.fixture
async def convex(fake: FakeConvex) -> AsyncIterator[ConvexClient]:
    """A client of `fake`, in process; one attempt per call (the callers' own retries are under test)."""
    async with in_process_convex(fake, retry=RetryPolicy.never()) as client:
        yield client


@pytest.fixture
def new_worker(convex: ConvexClient, tmp_path: Path) -> Callable[..., Worker]:
    """`new_worker(created, directory=tmp_path, **options)`: `make_worker` on `convex`, on trio's clock.

    These workers poll (`convex_transport="poll"`) unless a test passes another transport;
    subscriptions have their own tests (tests/worker/test_subscription_watch.py)."""

    def new(created: CreatedWorker, directory: Path | None = None, **options: Any) -> Worker:
        options.setdefault("convex_transport", "poll")
        options.setdefault("now_ms", trio_ms)
        return make_worker(created, convex, directory or tmp_path, **options)

    return new


@pytest.fixture
def timed() -> Iterator[Timed]:
    """Every record logged during the test, at DEBUG and up, with its trio time."""
    handler = Timed()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)
