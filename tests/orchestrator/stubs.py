"""A stub worker with the surface `WorkerSlot` uses, scripted per attempt, for supervision tests.

The behaviour under test is the supervisor's, so the worker is a small fake of `WorkerLike`:
`run()` follows a script, honours the shared `StopControl` like the real worker (cleanup inside
`stop.cleanup_scope`), publishes its state in `report`, and records what happened on the trio
clock.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import trio
import trio_util

from oco.config import Settings, Token, WorkerConfig
from oco.orchestrator import Orchestrator, WorkerLike
from oco.worker import State, StopControl, WorkerReport

SECRET = "stub-secret-never-shown"


def config(n: int, **changes: object) -> WorkerConfig:
    base = WorkerConfig(
        token=Token(f"machine{n}", f"worker{n}", SECRET),
        convex_url="http://127.0.0.1:9",
        working_directory=Path("/tmp"),
        name=f"w{n}",
    )
    return attrs.evolve(base, **changes)


def configs(*numbers: int) -> dict[str, WorkerConfig]:
    return {c.key: c for c in (config(n) for n in numbers)}


@attrs.define
class Script:
    """How every attempt of one worker behaves; times are seconds on the trio clock."""

    fail_with: Callable[[int], BaseException | None] = lambda attempt: None  # raise at start
    run_for: float = math.inf  # ready this long, then raise `fail_with_after`
    fail_after: Callable[[int], BaseException] = lambda attempt: RuntimeError("boom")
    cleanup: float = 0.0  # seconds of cleanup when stopped; math.inf hangs
    report: dict[str, object] = attrs.field(factory=dict)  # published with `ready` (turns, pid, …)


@attrs.define
class Record:
    starts: list[float] = attrs.field(factory=list)
    cleanups_done: list[float] = attrs.field(factory=list)
    ends: list[float] = attrs.field(factory=list)  # when each attempt's run() returned or raised
    spans: list[list[float]] = attrs.field(factory=list)  # [start, end] per attempt (end: inf while it runs)

    def most_alive_at_once(self) -> int:
        """The most attempts of this worker that ran at one moment (1 is right): counted at each
        start, an attempt that ended at that very moment no longer counts."""
        return max(
            (
                sum(1 for other in self.spans if other is span or other[0] <= span[0] < other[1])
                for span in self.spans
            ),
            default=0,
        )

    workers: list[StubWorker] = attrs.field(factory=list)


class StubWorker:
    def __init__(self, script: Script, record: Record, stop: StopControl, attempt: int) -> None:
        self.report = trio_util.AsyncValue(WorkerReport())
        self._script, self._record, self._stop, self._attempt = script, record, stop, attempt

    def set_state(self, state: State, **changes: object) -> None:
        """Publish `state` (and any other report field) as the real worker does."""
        self.report.value = attrs.evolve(self.report.value, state=state, **changes)

    async def run(self) -> None:
        self._record.starts.append(trio.current_time())
        span = [trio.current_time(), math.inf]
        self._record.spans.append(span)
        try:
            await self._run()
        finally:
            span[1] = trio.current_time()
            self._record.ends.append(span[1])

    async def _run(self) -> None:
        error = self._script.fail_with(self._attempt)
        if error is not None:
            self.set_state(State.FAILED)
            raise error
        self.set_state(State.READY, **self._script.report)
        try:
            await trio.sleep(self._script.run_for)
        except trio.Cancelled:
            self.set_state(State.STOPPING)
            with self._stop.cleanup_scope(math.inf):
                await trio.sleep(self._script.cleanup)
                self._record.cleanups_done.append(trio.current_time())
            # Cleaned up: no turn and no OpenCode are left, as with the real worker.
            self.set_state(State.STOPPED, turns_in_flight=0, active_sessions=0, opencode_pid=None)
            raise
        self.set_state(State.FAILED)
        raise self._script.fail_after(self._attempt)


_: type[WorkerLike] = StubWorker  # the stub must keep the surface the supervisor relies on


class StubFactory:
    """`worker_factory` for the orchestrator: a `Script` per worker key (default: run forever)."""

    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        self.scripts = scripts or {}
        self.records: dict[str, Record] = {}

    def record(self, key: str) -> Record:
        """The record of worker `key` (empty until its first attempt)."""
        return self.records.setdefault(key, Record())

    def __call__(
        self, cfg: WorkerConfig, link: object, stop: StopControl, settings: object = None
    ) -> StubWorker:
        record = self.record(cfg.key)
        worker = StubWorker(self.scripts.get(cfg.key, Script()), record, stop, len(record.starts) + 1)
        record.workers.append(worker)
        return worker


SETTINGS = Settings(shutdown_timeout_s=30.0)


async def run_with(orch: Orchestrator, scenario: Callable[[], Awaitable[None]], *, stop: bool = True) -> int:
    """Run `orch`, play `scenario` once it started, then stop it (`stop`; else the scenario
    ends it); the exit code, bounded in (virtual) time."""
    codes: list[int] = []

    async def main() -> None:
        codes.append(await orch.run())

    with trio.fail_after(10_000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(main)
            await orch.started.wait()
            await scenario()
            if stop:
                orch.request_stop("test")
    return codes[0]
