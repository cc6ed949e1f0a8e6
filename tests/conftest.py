"""Fixtures every test directory shares.

Backoff is off in every test (stamina's test mode: one attempt, no wait) unless the test
opts back in with `@pytest.mark.real_backoff`: with no arguments every retry policy keeps its
real delays; with policies (`real_backoff(REPLY_COMPLETION)`) only those do, and every other
`retrying` loop makes one attempt (so a worker's own retries are timed without the Convex
client's retries inside them).

The fake Convex in process on trio's clock (`fake`, `convex`), real workers on it
(`new_worker`), and log records with their trio time (`timed`). Being here, this file also
puts tests/ on `sys.path`, so the plain modules beside it (`real_opencode`, `timed_records`,
`fuzzing`) import from any test directory.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina

from oco._retry import RetryPolicy, real_backoff_in_tests
from oco.convex import ConvexClient
from oco.testing import CreatedWorker, FakeConvex, in_process_convex, make_worker, trio_ms
from oco.worker import Worker
from timed_records import Timed


@pytest.fixture(autouse=True)
def _backoff(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("real_backoff")
    if marker is None:
        stamina.set_testing(True, attempts=1)
        try:
            yield
        finally:
            stamina.set_testing(False)
        return
    policies = marker.args
    assert all(isinstance(p, RetryPolicy) for p in policies), "real_backoff takes RetryPolicy objects"
    if not policies:
        yield
        return
    with real_backoff_in_tests(policies):
        yield


@pytest.fixture
def fake() -> FakeConvex:
    """A fake Convex whose timestamps are trio time (ms): on a MockClock, call times measure delays."""
    return FakeConvex(clock=trio_ms)


@pytest.fixture
async def convex(fake: FakeConvex) -> AsyncIterator[ConvexClient]:
    """A client of `fake`, in process."""
    async with in_process_convex(fake) as client:
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
