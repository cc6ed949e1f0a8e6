"""A stub worker with the surface `WorkerSlot` uses, scripted per attempt, for supervision tests.

The behaviour under test is the supervisor's, so the worker is a small fake: `run()` follows a
script, honours the shared `StopControl` like the real worker (cleanup inside
`stop.cleanup_scope`), and records what happened on the trio clock.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import attrs
import trio
import trio_util

from oco.config import Settings, Token, WorkerConfig
from oco.worker import State, StopControl

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


@asynccontextmanager
async def no_convex(url: str) -> AsyncIterator[None]:
    yield None


@attrs.define
class Script:
    """How every attempt of one worker behaves; times are seconds on the trio clock."""

    fail_with: Callable[[int], BaseException | None] = lambda attempt: None  # raise at start
    run_for: float = math.inf  # ready this long, then raise `fail_with_after`
    fail_after: Callable[[int], BaseException] = lambda attempt: RuntimeError("boom")
    cleanup: float = 0.0  # seconds of cleanup when stopped; math.inf hangs


@attrs.define
class Record:
    starts: list[float] = attrs.field(factory=list)
    cleanups_done: list[float] = attrs.field(factory=list)
    workers: list[StubWorker] = attrs.field(factory=list)


class StubWorker:
    def __init__(self, script: Script, record: Record, stop: StopControl, attempt: int) -> None:
        self.state = trio_util.AsyncValue(State.STARTING)
        self.host = SimpleNamespace(pid=None)
        self.relay = SimpleNamespace(turns=trio_util.AsyncValue(0), active_sessions=lambda: 0)
        self._script, self._record, self._stop, self._attempt = script, record, stop, attempt

    async def run(self) -> None:
        self._record.starts.append(trio.current_time())
        error = self._script.fail_with(self._attempt)
        if error is not None:
            self.state.value = State.FAILED
            raise error
        self.state.value = State.READY
        try:
            await trio.sleep(self._script.run_for)
        except trio.Cancelled:
            self.state.value = State.STOPPING
            with self._stop.cleanup_scope(math.inf):
                await trio.sleep(self._script.cleanup)
                self._record.cleanups_done.append(trio.current_time())
            self.state.value = State.STOPPED
            raise
        self.state.value = State.FAILED
        raise self._script.fail_after(self._attempt)


class StubFactory:
    """`worker_factory` for the orchestrator: a `Script` per worker key (default: run forever)."""

    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        self.scripts = scripts or {}
        self.records: dict[str, Record] = {}

    def record(self, key: str) -> Record:
        """The record of worker `key` (empty until its first attempt)."""
        return self.records.setdefault(key, Record())

    def __call__(self, cfg: WorkerConfig, convex: object, stop: StopControl) -> StubWorker:
        record = self.record(cfg.key)
        worker = StubWorker(self.scripts.get(cfg.key, Script()), record, stop, len(record.starts) + 1)
        record.workers.append(worker)
        return worker


SETTINGS = Settings(shutdown_timeout_s=30.0)
