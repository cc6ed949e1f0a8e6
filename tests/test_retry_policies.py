"""The retry policies (`oco._retry`): their delays, the one loop that runs them, the one line
that says a retry, and the switch that turns backoff off in tests."""

from __future__ import annotations

import logging

import attrs
import pytest
import trio

from oco._retry import (
    CONVEX_CALL,
    HEARTBEAT,
    OPENCODE_EVENTS,
    OPENCODE_RESTART,
    POLICIES,
    POLLING,
    REPLY_COMPLETION,
    SYNC_RECONNECT,
    WORKER_REGISTRATION,
    OutageReport,
    Streak,
    TryAgain,
    retry_line,
    retrying,
)
from oco.convex import ConvexServerError, ConvexUnavailable, InvalidSecret


def delays(policy, n: int = 8, jitter: float = 0.0) -> list[float]:
    return [round(policy.delay(retry, jitter), 6) for retry in range(1, n + 1)]


def test_each_concern_keeps_the_delays_it_had() -> None:
    # What the hand-written loops computed before they became policies.
    assert delays(WORKER_REGISTRATION) == [min(60.0, 2.0 ** (n - 1)) for n in range(1, 9)]
    assert delays(HEARTBEAT.capped(30.0)) == [1, 2, 4, 8, 16, 30, 30, 30]
    idle = 3.0
    assert delays(attrs.evolve(POLLING, wait_initial=2 * idle)) == [
        min(idle * 2**n, 60.0) for n in range(1, 9)
    ]
    assert delays(OPENCODE_EVENTS) == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert delays(REPLY_COMPLETION) == [1, 2, 4, 8, 16, 30, 30, 30]
    assert delays(CONVEX_CALL, 5) == [0.5, 1, 2, 4, 8] and CONVEX_CALL.attempts == 5
    assert delays(OPENCODE_RESTART, 6) == [1, 2, 4, 8, 16, 30]


def test_jitter_adds_up_to_wait_jitter_under_the_cap_and_spread_scales_both_ways() -> None:
    assert CONVEX_CALL.delay(1, 0.999) == pytest.approx(0.5 + 0.4995)
    assert CONVEX_CALL.delay(10, 0.999) == 8.0  # the cap holds with jitter
    assert SYNC_RECONNECT.delay(1, 0.0) == 0.5 and SYNC_RECONNECT.delay(1, 0.5) == 1.0
    assert SYNC_RECONNECT.delay(10_000, 0.5) == SYNC_RECONNECT.wait_max  # no overflow


def test_every_policy_is_named_once_and_says_why() -> None:
    names = [p.name for p in POLICIES]
    assert len(set(names)) == len(names)
    assert all(p.why and p.delay(1) > 0 for p in POLICIES)


def test_the_retry_line_says_what_failed_for_how_long_and_when_next() -> None:
    assert retry_line("heartbeat failed", 3, 4.0) == "heartbeat failed; retry 3 in 4.0 s"
    assert retry_line("x", 9, 60.0, lasted=400) == "x (for 6 min); retry 9 in 60.0 s"


def test_a_streak_starts_over_only_after_it_was_up_for_a_while() -> None:
    streak = Streak(OPENCODE_EVENTS)
    assert streak.lost(0.0) == 0.2
    streak.up(1.0)
    assert streak.lost(2.0) == 0.4  # connected, and dropped at once: not healthy
    streak.up(3.0)
    assert streak.lost(3.0 + OPENCODE_EVENTS.healthy_after) == 0.2
    streak.lost(40.0)
    streak.reset()
    assert streak.lost(41.0) == 0.2


class Flaky:
    """Fails with `errors` in turn, then answers; records when it was called."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[float] = []

    async def __call__(self) -> str:
        self.calls.append(trio.current_time())
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def unavailable() -> ConvexUnavailable:
    return ConvexUnavailable("connection refused", sent=False, function="workers:heartbeat")


async def run(policy, call: Flaky, **kw) -> str:
    async for attempt in retrying(policy, **kw):
        with attempt:
            return await call()
    raise AssertionError("unreachable")


@pytest.mark.real_backoff(WORKER_REGISTRATION)
async def test_a_transient_failure_is_retried_with_the_policys_delays(autojump_clock) -> None:
    call = Flaky(unavailable(), unavailable(), unavailable())
    assert await run(WORKER_REGISTRATION, call) == "ok"
    assert [round(b - a, 6) for a, b in zip(call.calls, call.calls[1:], strict=False)] == [1.0, 2.0, 4.0]


@pytest.mark.real_backoff(WORKER_REGISTRATION)
async def test_a_failure_the_policy_does_not_retry_propagates_after_one_attempt(autojump_clock) -> None:
    call = Flaky(InvalidSecret("wrong", function="workers:register"))
    with pytest.raises(InvalidSecret):
        await run(WORKER_REGISTRATION, call)
    assert len(call.calls) == 1


@pytest.mark.real_backoff(REPLY_COMPLETION)
async def test_try_again_is_retried_whatever_on_says(autojump_clock) -> None:
    refused = ConvexServerError(400, function="chat:completeMessage")
    call = Flaky(TryAgain(refused))
    assert await run(REPLY_COMPLETION, call) == "ok" and len(call.calls) == 2


@pytest.mark.real_backoff(CONVEX_CALL)
async def test_a_bounded_policy_gives_up_after_its_attempts_and_does_not_announce_the_last(
    autojump_clock, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="oco.retry")
    call = Flaky(*[unavailable() for _ in range(CONVEX_CALL.attempts)])
    with pytest.raises(ConvexUnavailable):
        await run(attrs.evolve(CONVEX_CALL, wait_jitter=0.0), call, describe=lambda exc: "call failed")
    assert len(call.calls) == CONVEX_CALL.attempts
    assert [r.getMessage() for r in caplog.records] == [
        f"call failed; retry {n} in {d:.1f} s" for n, d in enumerate([0.5, 1.0, 2.0, 4.0], 1)
    ]
    assert all(r.levelno == logging.DEBUG for r in caplog.records)  # no report: DEBUG only


@pytest.mark.real_backoff(REPLY_COMPLETION)
async def test_a_long_run_of_failures_is_a_warning_at_first_then_every_five_minutes(
    autojump_clock, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="test.retry")
    call = Flaky(*[unavailable() for _ in range(40)])  # 30 s apart after the first few: ~18 min
    await run(
        REPLY_COMPLETION,
        call,
        log=logging.getLogger("test.retry"),
        report=OutageReport(),
        describe=lambda exc: "completing failed",
    )
    start = call.calls[0]
    loud = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 4 <= len(loud) <= 5 and len(caplog.records) == 40
    assert "(for " in loud[-1].getMessage() and call.calls[-1] - start > 15 * 60


async def test_without_real_backoff_an_endless_policy_makes_one_attempt_and_never_waits(
    autojump_clock,
) -> None:
    call = Flaky(unavailable())
    started = trio.current_time()
    with pytest.raises(ConvexUnavailable):
        await run(WORKER_REGISTRATION, call)
    assert len(call.calls) == 1 and trio.current_time() == started


@pytest.mark.real_backoff(REPLY_COMPLETION)
async def test_real_backoff_for_one_policy_leaves_the_others_at_one_attempt(autojump_clock) -> None:
    call = Flaky(unavailable())
    with pytest.raises(ConvexUnavailable):
        await run(WORKER_REGISTRATION, call)
    assert len(call.calls) == 1
