"""Supervision, stop and reload on a MockClock, with stub workers (the supervisor is under test).

Every time asserted here is exact virtual time: `autojump_clock` jumps to the next deadline
whenever all tasks are blocked, so a 30 s grace period passes in microseconds.
"""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import attrs
import pytest
import trio
from stubs import SETTINGS, Script, StubFactory, config, configs, run_with

from oco.config import ConfigError
from oco.convex import ConvexUnavailable, WorkerNotFound
from oco.orchestrator import Orchestrator, Reloaded, RestartPolicy

NO_JITTER = RestartPolicy(jitter=0.0, cap=8.0)


def orchestrator(factory: StubFactory, *numbers: int, **kwargs: object) -> Orchestrator:
    kwargs.setdefault("handle_signals", False)
    kwargs.setdefault("policy", NO_JITTER)
    return Orchestrator(configs(*numbers), SETTINGS, worker_factory=factory, hard_exit=None, **kwargs)


async def all_ready(orch: Orchestrator) -> None:
    for slot in orch.slots.values():
        await slot.state.wait_value("ready")


async def test_worker_hanging_in_cleanup_is_cut_off_exactly_at_the_deadline(autojump_clock) -> None:
    factory = StubFactory({config(2).key: Script(cleanup=math.inf), config(1).key: Script(cleanup=2.0)})
    orch = orchestrator(factory, 1, 2)
    stopped_at: list[float] = []

    async def scenario() -> None:
        await all_ready(orch)
        stopped_at.append(trio.current_time())
        orch.request_stop("test")

    code = await run_with(orch, scenario, stop=False)
    assert code == 1
    assert trio.current_time() - stopped_at[0] == pytest.approx(30.0)
    # The well-behaved worker finished its cleanup; the hanging one never did.
    assert factory.records[config(1).key].cleanups_done == [pytest.approx(stopped_at[0] + 2.0)]
    assert factory.records[config(2).key].cleanups_done == []
    assert {s.state.value for s in orch.slots.values()} == {"stopped"}


async def test_workers_stop_in_parallel_and_a_clean_stop_exits_0(autojump_clock) -> None:
    cleanups = {1: 1.0, 2: 5.0, 3: 3.0}
    factory = StubFactory({config(n).key: Script(cleanup=s) for n, s in cleanups.items()})
    orch = orchestrator(factory, 1, 2, 3)
    stopped_at: list[float] = []

    async def scenario() -> None:
        await all_ready(orch)
        stopped_at.append(trio.current_time())
        orch.request_stop("test")

    assert await run_with(orch, scenario, stop=False) == 0
    # Total is the slowest cleanup (5 s), not the sum (9 s).
    assert trio.current_time() - stopped_at[0] == pytest.approx(5.0)
    for n, seconds in cleanups.items():
        assert factory.records[config(n).key].cleanups_done == [pytest.approx(stopped_at[0] + seconds)]


async def test_a_second_stop_request_forces_at_once(autojump_clock) -> None:
    factory = StubFactory({key: Script(cleanup=math.inf) for key in configs(1, 2)})
    orch = orchestrator(factory, 1, 2)
    forced_at: list[float] = []

    async def scenario() -> None:
        await all_ready(orch)
        orch.request_stop("SIGINT")
        await trio.sleep(3.0)
        forced_at.append(trio.current_time())
        orch.request_stop("SIGINT")

    assert await run_with(orch, scenario, stop=False) == 1
    assert trio.current_time() == pytest.approx(forced_at[0])
    assert orch.stop.forced


async def test_a_real_second_sigterm_forces_the_stop(autojump_clock) -> None:
    factory = StubFactory({config(1).key: Script(cleanup=math.inf)})
    orch = orchestrator(factory, 1, handle_signals=True)
    first_at: list[float] = []

    async def scenario() -> None:
        await all_ready(orch)
        first_at.append(trio.current_time())
        os.kill(os.getpid(), signal.SIGTERM)
        await orch.stop.requested.wait()
        assert orch.stopping and not orch.stop.forced
        os.kill(os.getpid(), signal.SIGTERM)

    assert await run_with(orch, scenario, stop=False) == 1
    assert orch.stop.forced
    assert trio.current_time() - first_at[0] < 1.0  # well before the 30 s deadline


async def test_restart_delays_follow_the_policy_and_others_never_notice(autojump_clock) -> None:
    crashy = config(1).key
    factory = StubFactory({crashy: Script(fail_with=lambda attempt: RuntimeError(f"crash {attempt}"))})
    orch = orchestrator(factory, 1, 2)

    async def scenario() -> None:
        slot = orch.slots[crashy]
        await slot.state.wait_value(lambda _: len(factory.record(crashy).starts) >= 7)
        orch.request_stop("test")

    t0 = trio.current_time()
    assert await run_with(orch, scenario, stop=False) == 0
    starts = [t - t0 for t in factory.records[crashy].starts]
    # 1 s, doubling, capped at 8 s (jitter off): exact virtual times.
    assert starts[:7] == pytest.approx([0, 1, 3, 7, 15, 23, 31])
    assert orch.slots[crashy].restarts == 6
    assert orch.slots[crashy].last_error == "RuntimeError: crash 7"
    assert len(factory.records[config(2).key].starts) == 1  # the healthy worker was never touched


async def test_backoff_resets_after_the_worker_was_healthy(autojump_clock) -> None:
    key = config(1).key
    # Fails at once twice (1 s, 2 s), then runs 100 s healthy and crashes: back to 1 s.
    script = Script(
        fail_with=lambda attempt: ConvexUnavailable("down") if attempt <= 2 else None,
        run_for=100.0,
    )
    factory = StubFactory({key: script})
    orch = orchestrator(factory, 1)

    async def scenario() -> None:
        await orch.slots[key].state.wait_value(lambda _: len(factory.record(key).starts) >= 4)
        orch.request_stop("test")

    t0 = trio.current_time()
    await run_with(orch, scenario, stop=False)
    starts = [t - t0 for t in factory.records[key].starts]
    assert starts == pytest.approx([0, 1, 3, 104])


async def test_a_rejected_worker_is_parked_not_restarted_until_the_park_retry(autojump_clock) -> None:
    key = config(1).key
    factory = StubFactory({key: Script(fail_with=lambda attempt: WorkerNotFound("worker not found"))})
    orch = orchestrator(factory, 1, 2)

    async def scenario() -> None:
        slot = orch.slots[key]
        await slot.state.wait_value("parked")
        assert "unknown worker (deleted in the web app, or a wrong token)" in (slot.last_error or "")
        await trio.sleep(599.0)
        assert len(factory.records[key].starts) == 1  # nothing during the park
        await slot.state.wait_value(lambda _: len(factory.records[key].starts) == 2)
        orch.request_stop("test")

    t0 = trio.current_time()
    assert await run_with(orch, scenario, stop=False) == 0
    assert factory.records[key].starts[1] - t0 == pytest.approx(600.0)
    assert len(factory.records[config(2).key].starts) == 1


async def test_reload_changes_only_what_changed_and_retries_parked_workers(autojump_clock) -> None:
    parked = config(4).key
    factory = StubFactory({parked: Script(fail_with=lambda a: WorkerNotFound("gone") if a == 1 else None)})
    renamed = attrs.evolve(config(2), name="renamed", working_directory=Path("/elsewhere"))
    new_workers = {c.key: c for c in (config(1), renamed, config(4), config(5))}  # 3 removed, 5 new
    orch = orchestrator(factory, 1, 2, 3, 4, reload=lambda: Reloaded(new_workers, SETTINGS))

    async def scenario() -> None:
        await orch.slots[parked].state.wait_value("parked")
        for n in (1, 2, 3):
            await orch.slots[config(n).key].state.wait_value("ready")
        orch.request_reload()
        await orch.reloads_done.wait_value(1)
        for key in new_workers:
            await orch.slots[key].state.wait_value("ready")
        orch.request_stop("test")

    t0 = trio.current_time()
    assert await run_with(orch, scenario, stop=False) == 0
    records = factory.records
    assert len(records[config(1).key].starts) == 1  # untouched
    assert len(records[config(2).key].starts) == 2  # changed: stopped, then started again
    assert records[config(2).key].cleanups_done[0] <= records[config(2).key].starts[1]
    assert len(records[config(3).key].starts) == 1 and len(records[config(3).key].cleanups_done) == 1
    assert len(records[config(5).key].starts) == 1  # new
    assert records[parked].starts[1] - t0 < 1.0  # retried on reload, not after 600 s
    assert set(orch.slots) == set(new_workers)
    assert orch.slots[renamed.key].config.name == "renamed"


async def test_an_invalid_file_on_reload_keeps_the_running_set(autojump_clock) -> None:
    def broken() -> Reloaded:
        raise ConfigError("workers.json: not valid JSON5")

    factory = StubFactory()
    orch = orchestrator(factory, 1, 2, reload=broken)

    async def scenario() -> None:
        await all_ready(orch)
        orch.request_reload()
        await orch.reloads_done.wait_value(1)
        assert {s.state.value for s in orch.slots.values()} == {"ready"}
        orch.request_stop("test")

    assert await run_with(orch, scenario, stop=False) == 0
    assert all(len(r.starts) == 1 and len(r.cleanups_done) == 1 for r in factory.records.values())


async def test_a_cleanup_error_during_stop_does_not_restart_the_worker(autojump_clock) -> None:
    class BrokenCleanup(StubFactory):
        def __call__(self, cfg, convex, stop, settings=None):
            worker = super().__call__(cfg, convex, stop, settings)
            original = worker.run

            async def run() -> None:
                try:
                    await original()
                finally:
                    raise RuntimeError("cleanup failed")  # replaces the Cancelled of the stop

            worker.run = run
            return worker

    factory = BrokenCleanup()
    orch = orchestrator(factory, 1)

    async def scenario() -> None:
        await all_ready(orch)
        orch.request_stop("test")

    assert await run_with(orch, scenario, stop=False) == 0
    assert len(factory.records[config(1).key].starts) == 1
