"""One configured worker under supervision: run it, contain its failure, restart it by policy.

Containment comes from this loop, not from the nursery (a trio nursery is all-or-nothing by
design): each attempt runs inside `try/except Exception`, so a worker's failure, however deep
in its task tree, ends only that attempt. Cancellation is a BaseException and passes through.

Each failure is said in one line naming what happened, where and what to do (the worker's log
prefix names the worker): a park, or a restart with its delay. An expected failure of the
outside world (any `OcoError`: whatever Convex answered, an OpenCode failure) never prints a
traceback; a bug in trio-oco prints exactly one, its own (the leaf of the exception group).
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Generic, Protocol, TypeVar

import attrs
import trio
import trio_util

from oco.config import WorkerConfig
from oco.errors import (
    Misconfigured,
    OcoError,
    ProtocolViolation,
    Refused,
    Rejected,
    Unavailable,
    describe,
)
from oco.logs import WorkerTag, bind_worker
from oco.worker import State, WorkerReport

from ._policy import FailureKind, Park, RestartHistory, RestartPolicy, decide

log = logging.getLogger(__name__)

L = TypeVar("L")  # what a slot borrows for its worker's Convex URL (a `ConvexLink` in the orchestrator)

#: Lends what a worker needs for a Convex URL, for as long as the slot runs (all its attempts).
ConvexFor = Callable[[str], AbstractAsyncContextManager[L]]


class WorkerLike(Protocol):
    """What a slot needs of a worker: run it, and read what it publishes about itself.

    `oco.worker.Worker` is the real one; tests pass small stubs.
    """

    report: trio_util.AsyncValue[WorkerReport]

    async def run(self) -> None:
        """The worker's whole attempt: returns when cancelled and cleaned up, raises on failure."""


class SlotState(enum.StrEnum):
    """What status shows for a supervised worker: its lifecycle state while an attempt runs
    (the values of `oco.worker.State`), `backoff` or `parked` between attempts, and
    `stopped` once the slot has ended. The values are status.json's `state` strings."""

    STARTING = "starting"
    REGISTERING = "registering"
    WAITING_APPROVAL = "waiting_approval"
    CONNECTING = "connecting"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    BACKOFF = "backoff"
    PARKED = "parked"

    @classmethod
    def of(cls, state: State) -> SlotState:
        """The slot state that shows a worker's lifecycle state."""
        return cls(state.value)


#: Between attempts, or after the slot: no worker runs, so it has no sessions, turns or OpenCode.
STATES_WITHOUT_LIVE_WORKER = frozenset(
    {SlotState.BACKOFF, SlotState.PARKED, SlotState.STOPPED, SlotState.FAILED}
)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def is_bug(exc: BaseException) -> bool:
    """A failure no outside answer explains: anything but an `OcoError` (expected failures)."""
    return not isinstance(exc, OcoError)


def classify(exc: BaseException) -> tuple[FailureKind, BaseException]:
    """What kind of failure ended an attempt, and the leaf exception that says so.

    Decided by the neutral types of `oco.errors` alone (each adapter maps its errors to them).
    A rejection or a configuration error decides (they park); then a bug, if any leaf is one
    (it must not hide behind an outage that happened at the same time); then the rest.
    """
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, Rejected):
            return FailureKind.REJECTED, leaf
    for leaf in leaves:
        if isinstance(leaf, Misconfigured):
            return FailureKind.CONFIG, leaf
    for leaf in leaves:
        if is_bug(leaf):
            return FailureKind.CRASH, leaf
    for leaf in leaves:
        if isinstance(leaf, Unavailable):
            return FailureKind.TRANSIENT, leaf
    for leaf in leaves:
        if isinstance(leaf, (Refused, ProtocolViolation)):
            return FailureKind.BACKEND, leaf
    return FailureKind.TRANSIENT, leaves[0]  # another expected failure (an OcoError)


class WorkerSlot(Generic[L]):
    """The supervision record of one worker: current attempt, restarts, state for status.

    `state` is the worker's lifecycle state while an attempt runs, `backoff` or `parked`
    between attempts, and `stopped` once the slot has ended; `since` is the trio time it
    entered that state. `on_change` is called on every change of the state or of the running
    worker's report (the status writer). `cancel()` ends the slot (its worker cleans up).
    `on_rejected(config, reason)` is asked before a rejected worker parks: True means its
    owner takes over (dev mode ends the process), and the slot ends without parking.
    """

    def __init__(
        self,
        config: WorkerConfig,
        make_worker: Callable[[L], WorkerLike],
        convex_for: ConvexFor[L],
        policy: RestartPolicy,
        *,
        rng: random.Random | None = None,
        on_change: Callable[[], None] = lambda: None,
        on_rejected: Callable[[WorkerConfig, str], bool] | None = None,
    ) -> None:
        self.config = config
        self._on_rejected = on_rejected
        self._make_worker = make_worker
        self._convex_for = convex_for
        self._policy = policy
        self._rng = rng or random.Random()
        self._on_change = on_change
        self.worker: WorkerLike | None = None
        self.attempts = 0
        self.restarts = 0
        self._last_failure: str | None = None
        self._running = False  # an attempt is under way: its worker's own last_error is newest
        self._scope = trio.CancelScope()
        self.state = trio_util.AsyncValue(SlotState.STARTING)
        self.since = trio.current_time()
        self.first_attempt_done = trio.Event()
        self.retry_now = trio.Event()  # set by a reload to end a park early
        self.done = trio.Event()  # the slot's task has ended (its worker cleaned up)
        self._tag: WorkerTag | None = None  # its log label, once supervising

    @property
    def last_error(self) -> str | None:
        """The newest error to show in status: what the running worker last retried (e.g. an
        unreachable deployment), else how the last attempt ended."""
        if self._running and self.worker is not None:
            live = self.worker.report.value.last_error
            if live:
                return live
        return self._last_failure

    @property
    def live_report(self) -> WorkerReport | None:
        """The running worker's report, or None between attempts and once the slot ended."""
        if self.worker is None or self.state.value in STATES_WITHOUT_LIVE_WORKER:
            return None
        return self.worker.report.value

    @property
    def opencode_pid(self) -> int | None:
        """The current worker's OpenCode server, if one runs (a forced stop kills its group)."""
        return self.worker.report.value.opencode_pid if self.worker is not None else None

    def relabel(self, config: WorkerConfig) -> None:
        """The running worker's new `name` (a reload): its log lines and status row use it from
        now on; nothing restarts. `config` is the slot's own but for the name."""
        if attrs.evolve(config, name=self.config.name) != self.config:
            raise ValueError(f"relabel of worker {self.config.name} with another config")
        self.config = config
        if self._tag is not None:
            self._tag.name = config.name
        self._on_change()

    def cancel(self, reason: str) -> None:
        """End the slot: the attempt (or the wait before the next) is cancelled and cleans up;
        `done` is set once it has."""
        self._scope.cancel(reason=reason)

    def _set_state(self, state: SlotState) -> None:
        if state != self.state.value:
            self.state.value = state
            self.since = trio.current_time()
            self._on_change()

    async def run(self) -> None:
        """Supervise until cancelled (by `cancel()` or from outside); never raises for a
        worker's failure."""
        try:
            with self._scope:
                # One Convex client for all attempts: a restart never builds a new connection pool.
                async with self._convex_for(self.config.convex_url) as convex:
                    await self._supervise(convex)
        finally:
            self._set_state(SlotState.STOPPED)
            self.done.set()

    async def _supervise(self, convex: L) -> None:
        history = RestartHistory()
        with bind_worker(self.config.name, self.config.worker_id) as tag:
            self._tag = tag  # `relabel` renames it: every line of this worker, its tasks' too
            while True:
                worker = self._make_worker(convex)
                self.worker = worker
                self.attempts += 1
                ready_since: list[float] = []
                failure: BaseException | None = None
                self._running = True
                try:
                    try:
                        async with trio.open_nursery() as watch:
                            watch.start_soon(self._mirror, worker, ready_since)
                            await worker.run()
                            watch.cancel_scope.cancel()
                    finally:
                        self._running = False
                        # The mirror is gone by now; show how the attempt really ended.
                        self._set_state(SlotState.of(worker.report.value.state))
                except* Exception as group:  # noqa: BLE001 - a crash of any kind is logged and restarted; Cancelled propagates
                    # `except*`: when a stop cancels the attempt as it crashes, the group holds
                    # both; the Cancelled part propagates (no restart), the crash is logged.
                    failure = group
                    kind, _ = self._note_failure(group)  # here, as a Cancelled part skips the rest
                if failure is None:
                    log.warning("worker returned by itself; not restarting it")
                    return
                # A cleanup error can replace the Cancelled of a stop and land in the except
                # above; this checkpoint re-raises that cancellation instead of restarting.
                await trio.lowlevel.checkpoint()
                self.first_attempt_done.set()
                decision = decide(
                    self._policy,
                    history,
                    kind,
                    now=trio.current_time(),
                    ready_since=ready_since[0] if ready_since else None,
                    rng=self._rng,
                    reason=self._last_failure,
                )
                if isinstance(decision, Park):
                    taker = self._on_rejected if decision.kind is FailureKind.REJECTED else None
                    if taker is not None and taker(self.config, decision.reason):
                        return  # its owner ends it: no park, no "retrying on reload"
                    self._set_state(SlotState.PARKED)
                    log.error(
                        "parked: %s (retrying in %.0f s, or on reload)",
                        decision.reason,
                        decision.retry_at - trio.current_time(),
                    )
                    with trio.move_on_at(decision.retry_at):
                        await self.retry_now.wait()
                else:
                    self._set_state(SlotState.BACKOFF)
                    if kind is FailureKind.CRASH:
                        log.info("restarting in %.1f s", decision.delay)  # the crash is logged
                    else:
                        log.warning("%s; restarting in %.1f s", self._last_failure, decision.delay)
                    await trio.sleep(decision.delay)
                self.retry_now = trio.Event()
                self.restarts += 1

    def _note_failure(self, failure: BaseException) -> tuple[FailureKind, BaseException]:
        """Records how the attempt ended; logs a bug at once, with its own traceback only.

        Other failures are logged with the decision that follows (park or restart), in one
        line. The whole exception group is never printed: its frames are the nurseries'.
        """
        kind, cause = classify(failure)
        self._last_failure = describe(cause)
        if kind is FailureKind.CRASH:
            others = sum(1 for leaf in _leaves(failure) if leaf is not cause)
            log.error(
                "worker crashed (a bug in trio-oco): %s%s",
                self._last_failure,
                f" (and {others} more error(s) in the same attempt)" if others else "",
                exc_info=(type(cause), cause, cause.__traceback__),
            )
        return kind, cause

    async def _mirror(self, worker: WorkerLike, ready_since: list[float]) -> None:
        """Copies the worker's lifecycle state into the slot, notes when it became ready, and
        passes every other change of its report on (sessions, turns, OpenCode, last error)."""
        async for report in worker.report.eventual_values():
            state = report.state
            if state.value == self.state.value:
                self._on_change()
            self._set_state(SlotState.of(state))
            if state is State.READY and not ready_since:
                ready_since.append(trio.current_time())
            if state in (State.READY, State.WAITING_APPROVAL):
                self.first_attempt_done.set()
