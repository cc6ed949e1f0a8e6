"""The worker's lifecycle as a pure state machine: events in, the new state out.

Everything that decides a transition lives in `TRANSITIONS` (one table, h11-style); the trio
shell performs the work of each state and reports what happened as an `Event`. An event the
table does not allow is a bug in the shell, so `Lifecycle.apply` raises `IllegalTransition`
and leaves the state unchanged.

One `Lifecycle` covers one attempt: `stopped` and `failed` are terminal, and the orchestrator
builds a fresh `Lifecycle` when it restarts the worker (the reference could never restart its
FSM and wrote STOPPED into a private field instead).

A connect request while `ready` (the web app's `requestConnect`) is deliberately *not* an
event: the worker republishes its models and calls `markConnected` while staying `ready`, so
turns in flight keep running and the status does not flap. Only losing approval leaves
`ready` (→ `waiting_approval`).
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Mapping

import attrs


class State(enum.Enum):
    """Where a worker is in one attempt; `value` is the text used in logs and status.json."""

    STARTING = "starting"
    REGISTERING = "registering"
    WAITING_APPROVAL = "waiting_approval"
    CONNECTING = "connecting"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class Event(enum.Enum):
    """What the shell reports; each name says what has just happened."""

    START = "start"  # the worker task began: register next
    REGISTERED_APPROVED = "registered_approved"  # workers:register answered approved
    REGISTERED_PENDING = "registered_pending"  # workers:register answered not (yet) approved
    APPROVED = "approved"  # a later register while waiting answered approved
    CONNECTED = "connected"  # models published and markConnected succeeded
    APPROVAL_WITHDRAWN = "approval_withdrawn"  # the worker record is no longer approved
    STOP = "stop"  # a stop was requested (signal, reload, revocation); cleanup follows
    STOPPED = "stopped"  # cleanup finished
    FAIL = "fail"  # the attempt ended with an error (needs a cause)


TERMINAL_STATES: frozenset[State] = frozenset({State.STOPPED, State.FAILED})

#: States in which a `workers:register` call has succeeded during this attempt. Once a
#: lifecycle has entered one of them, `workers:setOffline` is owed on the way out (even when
#: the stop comes during connecting, which the reference worker skipped): see
#: `Lifecycle.registered`.
REGISTERED_STATES: frozenset[State] = frozenset({State.WAITING_APPROVAL, State.CONNECTING, State.READY})

_LIVE_STATES = (
    State.STARTING,
    State.REGISTERING,
    State.WAITING_APPROVAL,
    State.CONNECTING,
    State.READY,
    State.STOPPING,
)

#: The whole transition table: (state, event) → next state. STOP is legal from every
#: non-terminal state (a second STOP while stopping is a harmless no-op); FAIL ends any
#: non-terminal state, stopping included (cleanup itself can fail).
TRANSITIONS: Mapping[tuple[State, Event], State] = {
    (State.STARTING, Event.START): State.REGISTERING,
    (State.REGISTERING, Event.REGISTERED_APPROVED): State.CONNECTING,
    (State.REGISTERING, Event.REGISTERED_PENDING): State.WAITING_APPROVAL,
    (State.WAITING_APPROVAL, Event.APPROVED): State.CONNECTING,
    (State.CONNECTING, Event.CONNECTED): State.READY,
    # markConnected refuses a worker that lost approval meanwhile; the record can say so too.
    (State.CONNECTING, Event.APPROVAL_WITHDRAWN): State.WAITING_APPROVAL,
    (State.READY, Event.APPROVAL_WITHDRAWN): State.WAITING_APPROVAL,
    (State.STOPPING, Event.STOPPED): State.STOPPED,
    **{(state, Event.STOP): State.STOPPING for state in _LIVE_STATES},
    **{(state, Event.FAIL): State.FAILED for state in _LIVE_STATES},
}


class IllegalTransition(Exception):
    """The shell reported an event the table does not allow in the current state: a bug."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"illegal lifecycle transition: {event.value} in state {state.value}")
        self.state = state
        self.event = event


@attrs.frozen
class Transition:
    """One entry of `Lifecycle.history`; `at` is whatever clock the shell passed to `apply`."""

    source: State
    event: Event
    target: State
    at: float | None = None
    cause: object = None


class Lifecycle:
    """The current state of one worker attempt, its failure cause and a bounded history.

    `apply(Event.FAIL, cause=exc)` records why the attempt failed (`cause` keeps the object the
    shell passed, usually the exception, so the orchestrator can classify it).
    """

    def __init__(self, *, history_size: int = 50) -> None:
        self._state = State.STARTING
        self._cause: object = None
        self._registered = False
        self._history: collections.deque[Transition] = collections.deque(maxlen=history_size)

    @property
    def state(self) -> State:
        return self._state

    @property
    def cause(self) -> object:
        """What made the attempt fail (None unless the state is `failed`)."""
        return self._cause

    @property
    def history(self) -> list[Transition]:
        """The last `history_size` transitions, oldest first (a copy)."""
        return list(self._history)

    @property
    def registered(self) -> bool:
        """True once a register call succeeded in this attempt: `setOffline` is owed on stop."""
        return self._registered

    @property
    def terminal(self) -> bool:
        return self._state in TERMINAL_STATES

    def apply(self, event: Event, *, cause: object = None, at: float | None = None) -> State:
        """Move to the state the table gives for `event` and return it.

        Raises `IllegalTransition` (state unchanged) when the table has no entry, and
        `ValueError` when `cause` is missing for FAIL or given for any other event.
        """
        if (event is Event.FAIL) != (cause is not None):
            raise ValueError("a cause is required with FAIL and only with FAIL")
        target = TRANSITIONS.get((self._state, event))
        if target is None:
            raise IllegalTransition(self._state, event)
        self._history.append(Transition(self._state, event, target, at, cause))
        self._state = target
        if target is State.FAILED:
            self._cause = cause
        if target in REGISTERED_STATES:
            self._registered = True
        return target

    def __repr__(self) -> str:
        return f"<Lifecycle {self._state.value}>"
