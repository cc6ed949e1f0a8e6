"""The worker lifecycle table, checked exhaustively: every (state, event) pair is tried."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oco.worker._lifecycle import (
    REGISTERED_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Event,
    IllegalTransition,
    Lifecycle,
    State,
)

# The shortest event path from `starting` to each state (FAIL needs a cause, added in _drive).
PATHS: dict[State, list[Event]] = {
    State.STARTING: [],
    State.REGISTERING: [Event.START],
    State.WAITING_APPROVAL: [Event.START, Event.REGISTERED_PENDING],
    State.CONNECTING: [Event.START, Event.REGISTERED_APPROVED],
    State.READY: [Event.START, Event.REGISTERED_APPROVED, Event.CONNECTED],
    State.STOPPING: [Event.STOP],
    State.STOPPED: [Event.STOP, Event.STOPPED],
    State.FAILED: [Event.FAIL],
}


def _apply(lc: Lifecycle, event: Event) -> State:
    return lc.apply(event, cause=RuntimeError("boom") if event is Event.FAIL else None)


def _drive(state: State) -> Lifecycle:
    lc = Lifecycle()
    for event in PATHS[state]:
        _apply(lc, event)
    assert lc.state is state
    return lc


def test_paths_cover_every_state() -> None:
    assert set(PATHS) == set(State)


def test_happy_path_reaches_ready_then_stops() -> None:
    lc = Lifecycle()
    assert lc.state is State.STARTING
    for event, expected in [
        (Event.START, State.REGISTERING),
        (Event.REGISTERED_PENDING, State.WAITING_APPROVAL),
        (Event.APPROVED, State.CONNECTING),
        (Event.CONNECTED, State.READY),
        (Event.STOP, State.STOPPING),
        (Event.STOPPED, State.STOPPED),
    ]:
        assert lc.apply(event) is expected
    assert lc.terminal
    assert [t.target for t in lc.history][-1] is State.STOPPED


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
@pytest.mark.parametrize("event", list(Event), ids=lambda e: e.value)
def test_every_pair_follows_the_table_or_raises_without_changing_state(state: State, event: Event) -> None:
    lc = _drive(state)
    before = lc.history
    if (state, event) in TRANSITIONS:
        assert _apply(lc, event) is TRANSITIONS[(state, event)]
        assert lc.state is TRANSITIONS[(state, event)]
        assert len(lc.history) == len(before) + 1
    else:
        with pytest.raises(IllegalTransition) as info:
            _apply(lc, event)
        assert lc.state is state
        assert lc.history == before
        assert info.value.state is state and info.value.event is event
        assert state.value in str(info.value) and event.value in str(info.value)


@pytest.mark.parametrize("state", [s for s in State if s not in TERMINAL_STATES], ids=lambda s: s.value)
def test_stop_is_legal_from_every_non_terminal_state(state: State) -> None:
    lc = _drive(state)
    assert lc.apply(Event.STOP) is State.STOPPING
    assert lc.apply(Event.STOPPED) is State.STOPPED


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES, key=lambda s: s.value))
def test_terminal_states_accept_no_event(state: State) -> None:
    lc = _drive(state)
    for event in Event:
        with pytest.raises(IllegalTransition):
            _apply(lc, event)
    assert lc.state is state


def test_approval_withdrawn_sends_ready_back_to_waiting_then_approved_reconnects() -> None:
    lc = _drive(State.READY)
    assert lc.apply(Event.APPROVAL_WITHDRAWN) is State.WAITING_APPROVAL
    assert lc.apply(Event.APPROVED) is State.CONNECTING
    assert lc.apply(Event.CONNECTED) is State.READY


def test_a_connect_request_while_ready_is_not_a_transition() -> None:
    # Documented choice: republishing models happens inside `ready`; no event leads from
    # ready to connecting.
    assert not any(src is State.READY and dst is State.CONNECTING for (src, _), dst in TRANSITIONS.items())


def test_fail_records_the_cause_and_only_fail_takes_one() -> None:
    lc = _drive(State.CONNECTING)
    err = ConnectionError("backend down")
    with pytest.raises(ValueError):
        lc.apply(Event.FAIL)
    with pytest.raises(ValueError):
        lc.apply(Event.CONNECTED, cause=err)
    assert lc.state is State.CONNECTING and lc.cause is None
    assert lc.apply(Event.FAIL, cause=err, at=12.5) is State.FAILED
    assert lc.cause is err
    last = lc.history[-1]
    assert (last.source, last.event, last.target, last.at, last.cause) == (
        State.CONNECTING,
        Event.FAIL,
        State.FAILED,
        12.5,
        err,
    )


def test_cleanup_failure_while_stopping_ends_failed() -> None:
    lc = _drive(State.STOPPING)
    assert lc.apply(Event.STOP) is State.STOPPING  # a second stop request is harmless
    assert lc.apply(Event.FAIL, cause=TimeoutError("setOffline")) is State.FAILED


@pytest.mark.parametrize(
    ("state", "owed"),
    [
        (State.STARTING, False),
        (State.REGISTERING, False),
        (State.WAITING_APPROVAL, True),
        (State.CONNECTING, True),
        (State.READY, True),
    ],
    ids=lambda v: getattr(v, "value", str(v)),
)
def test_set_offline_is_owed_once_register_succeeded_and_stays_owed_through_stop(
    state: State, owed: bool
) -> None:
    lc = _drive(state)
    assert lc.registered is owed
    lc.apply(Event.STOP)
    assert lc.registered is owed
    lc.apply(Event.STOPPED)
    assert lc.registered is owed


def test_registered_states_are_exactly_those_after_a_successful_register() -> None:
    assert {State.WAITING_APPROVAL, State.CONNECTING, State.READY} == REGISTERED_STATES


def test_history_is_bounded_and_keeps_the_newest() -> None:
    lc = Lifecycle(history_size=3)
    _apply(lc, Event.START)
    _apply(lc, Event.REGISTERED_PENDING)
    for _ in range(5):
        _apply(lc, Event.APPROVED)
        _apply(lc, Event.APPROVAL_WITHDRAWN)
    history = lc.history
    assert len(history) == 3
    assert [t.event for t in history] == [
        Event.APPROVAL_WITHDRAWN,
        Event.APPROVED,
        Event.APPROVAL_WITHDRAWN,
    ]
    history.clear()  # a copy: the lifecycle's own history is untouched
    assert len(lc.history) == 3


@given(st.lists(st.sampled_from(list(Event)), max_size=30))
def test_any_event_sequence_keeps_history_consistent(events: list[Event]) -> None:
    lc = Lifecycle()
    for event in events:
        before = lc.state
        try:
            after = _apply(lc, event)
        except IllegalTransition:
            assert lc.state is before
            continue
        assert after is TRANSITIONS[(before, event)]
    history = lc.history
    for earlier, later in itertools.pairwise(history):
        assert earlier.target is later.source
    if history:
        assert history[-1].target is lc.state
    assert lc.registered == any(t.target in REGISTERED_STATES for t in history)
    assert (lc.cause is not None) == (lc.state is State.FAILED)
