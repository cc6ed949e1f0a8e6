"""Slot states are an enum whose values are status.json's `state` strings, unchanged."""

from __future__ import annotations

import json

from oco.orchestrator import SlotState
from oco.worker import State

STATUS_STRINGS = {
    "starting",
    "registering",
    "waiting_approval",
    "connecting",
    "ready",
    "stopping",
    "stopped",
    "failed",
    "backoff",
    "parked",
}


def test_the_values_are_the_status_file_strings() -> None:
    assert {state.value for state in SlotState} == STATUS_STRINGS
    assert json.dumps([SlotState.PARKED, SlotState.READY]) == '["parked", "ready"]'


def test_every_lifecycle_state_shows_as_the_slot_state_of_the_same_name() -> None:
    for state in State:
        assert SlotState.of(state).name == state.name and SlotState.of(state).value == state.value


def test_only_backoff_and_parked_are_the_supervisors_own() -> None:
    assert {s for s in SlotState if s.value not in {v.value for v in State}} == {
        SlotState.BACKOFF,
        SlotState.PARKED,
    }
