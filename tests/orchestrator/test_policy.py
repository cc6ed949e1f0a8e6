"""The restart policy: exact backoff with a seeded rng, health-driven reset, parking."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oco.orchestrator._policy import (
    FailureKind,
    Park,
    Restart,
    RestartHistory,
    RestartPolicy,
    decide,
)


def _delays(policy: RestartPolicy, history: RestartHistory, n: int, rng: random.Random) -> list:
    return [
        decide(policy, history, FailureKind.TRANSIENT, now=0.0, ready_since=None, rng=rng) for _ in range(n)
    ]


def test_without_jitter_the_backoff_doubles_from_one_second_up_to_the_cap() -> None:
    policy = RestartPolicy(jitter=0.0)
    delays = [d.delay for d in _delays(policy, RestartHistory(), 9, random.Random(0))]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_with_the_default_jitter_a_seeded_rng_gives_exact_delays() -> None:
    decisions = _delays(RestartPolicy(), RestartHistory(), 9, random.Random(7))
    delays = [round(d.delay, 6) for d in decisions]
    assert delays == [
        0.929533,
        1.720679,
        4.241495,
        6.631796,
        16.229645,
        30.280818,
        49.391974,
        60.0,
        48.899896,
    ]


def test_crashes_back_off_like_transient_failures_and_share_the_streak() -> None:
    policy = RestartPolicy(jitter=0.0)
    history = RestartHistory()
    rng = random.Random(0)
    kinds = [FailureKind.CRASH, FailureKind.TRANSIENT, FailureKind.CRASH]
    delays = [decide(policy, history, k, now=0.0, ready_since=None, rng=rng).delay for k in kinds]
    assert delays == [1.0, 2.0, 4.0]
    assert history.restarts == 3 and history.last_failure is FailureKind.CRASH


def test_the_streak_resets_once_the_worker_was_ready_for_healthy_after() -> None:
    policy = RestartPolicy(jitter=0.0)
    history = RestartHistory()
    rng = random.Random(0)
    _delays(policy, history, 5, rng)  # streak of 5: next would be 32 s
    almost = decide(policy, history, FailureKind.TRANSIENT, now=159.9, ready_since=100.0, rng=rng)
    assert almost == Restart(32.0)  # ready 59.9 s: not yet healthy
    healthy = decide(policy, history, FailureKind.TRANSIENT, now=1000.0, ready_since=940.0, rng=rng)
    assert healthy == Restart(1.0)
    assert history.streak == 1


def test_a_worker_that_never_got_ready_keeps_backing_off() -> None:
    policy = RestartPolicy(jitter=0.0)
    history = RestartHistory()
    rng = random.Random(0)
    _delays(policy, history, 3, rng)
    # Ran for an hour waiting for approval, never ready: no reset.
    decision = decide(policy, history, FailureKind.TRANSIENT, now=3600.0, ready_since=None, rng=rng)
    assert decision == Restart(8.0)


@pytest.mark.parametrize("kind", [FailureKind.REJECTED, FailureKind.CONFIG])
def test_rejected_and_config_failures_park_until_the_retry_period(kind: FailureKind) -> None:
    history = RestartHistory()
    rng = random.Random(0)
    decision = decide(RestartPolicy(), history, kind, now=50.0, ready_since=None, rng=rng)
    assert isinstance(decision, Park)
    assert decision.retry_at == 650.0
    assert decision.kind is kind
    assert decision.reason
    assert history.restarts == 0 and history.last_failure is kind


def test_a_park_keeps_the_streak_for_a_later_transient_failure() -> None:
    policy = RestartPolicy(jitter=0.0)
    history = RestartHistory()
    rng = random.Random(0)
    _delays(policy, history, 2, rng)
    decide(policy, history, FailureKind.REJECTED, now=0.0, ready_since=None, rng=rng)
    after = decide(policy, history, FailureKind.TRANSIENT, now=0.0, ready_since=None, rng=rng)
    assert after == Restart(4.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0.0},
        {"initial": -1.0},
        {"factor": 0.5},
        {"cap": 0.5},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"park_retry": 0.0},
        {"healthy_after": -1.0},
    ],
)
def test_policies_that_could_busy_loop_or_make_no_sense_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        RestartPolicy(**kwargs)


def test_a_very_long_streak_stays_at_the_cap() -> None:
    history = RestartHistory(streak=100_000)
    decision = decide(
        RestartPolicy(jitter=0.0),
        history,
        FailureKind.CRASH,
        now=0.0,
        ready_since=None,
        rng=random.Random(0),
    )
    assert decision == Restart(60.0)


@given(
    st.lists(st.sampled_from(list(FailureKind)), min_size=1, max_size=40),
    st.integers(0, 2**32),
    st.floats(0.0, 0.9),
)
def test_every_delay_is_positive_bounded_and_within_jitter_of_the_base(kinds, seed, jitter) -> None:
    policy = RestartPolicy(jitter=jitter)
    history = RestartHistory()
    rng = random.Random(seed)
    now = 0.0
    for kind in kinds:
        streak_before = history.streak
        decision = decide(policy, history, kind, now=now, ready_since=None, rng=rng)
        if kind in (FailureKind.REJECTED, FailureKind.CONFIG):
            assert isinstance(decision, Park)
            assert decision.retry_at == now + policy.park_retry
            assert history.streak == streak_before
            now = decision.retry_at
            continue
        assert isinstance(decision, Restart)
        base = policy.base_delay(streak_before + 1)
        assert policy.initial * (1 - jitter) <= decision.delay <= policy.cap
        assert base * (1 - jitter) - 1e-9 <= decision.delay <= base * (1 + jitter) + 1e-9
        now += decision.delay
