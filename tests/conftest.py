"""Backoff is off in every test (stamina's test mode: one attempt, no wait) unless the test
opts back in with `@pytest.mark.real_backoff`: with no arguments every retry policy keeps its
real delays; with policies (`real_backoff(REPLY_COMPLETION)`) only those do, and every other
`retrying` loop makes one attempt (so a worker's own retries are timed without the Convex
client's retries inside them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina

from oco._retry import RetryPolicy, real_backoff_in_tests


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
