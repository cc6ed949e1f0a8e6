"""The per-worker API (start, stop, restart one worker; `workers()`) and the one serialised
command path it shares with reload, on a MockClock with stub workers (exact virtual times)."""

from __future__ import annotations

import math
from collections.abc import Awaitable

import attrs
import pytest
import trio
from stubs import SETTINGS, Script, StubFactory, config, configs, run_with

from oco.config import ConfigError
from oco.convex import WorkerNotFound
from oco.orchestrator import (
    Orchestrator,
    OrchestratorStopping,
    Reloaded,
    ReloadUnavailable,
    RestartPolicy,
    UnknownWorker,
)

NO_JITTER = RestartPolicy(jitter=0.0, cap=8.0)


def orchestrator(factory: StubFactory, workers: dict, **kwargs: object) -> Orchestrator:
    kwargs.setdefault("handle_signals", False)
    kwargs.setdefault("policy", NO_JITTER)
    return Orchestrator(workers, SETTINGS, worker_factory=factory, hard_exit=None, **kwargs)


def states(orch: Orchestrator) -> dict[str, str]:
    return {row.name: row.state for row in orch.workers()}


# -- one worker at a time, the others never notice ------------------------------------------


async def test_stop_start_and_restart_one_worker_while_the_others_keep_running(autojump_clock) -> None:
    factory = StubFactory({config(2).key: Script(cleanup=2.0), config(3).key: Script(cleanup=3.0)})
    orch = orchestrator(factory, configs(1, 2, 3))
    w1, w2, w3 = (config(n).key for n in (1, 2, 3))

    async def scenario() -> None:
        for key in (w1, w2, w3):
            await orch.slots[key].state.wait_value("ready")
        t0 = trio.current_time()
        change = await orch.stop_worker("w2")  # by name
        assert change.changed and change.status.state == "stopped"
        assert trio.current_time() - t0 == pytest.approx(2.0)  # returned once it had cleaned up
        assert states(orch) == {"w1": "ready", "w2": "stopped", "w3": "ready"}
        assert not (await orch.stop_worker(w2)).changed  # already stopped
        await trio.sleep(1000)
        assert len(factory.record(w2).starts) == 1  # a stopped worker stays stopped

        change = await orch.start_worker(config(2).worker_id)  # by worker id
        assert change.changed
        await orch.slots[w2].state.wait_value("ready")
        assert not (await orch.start_worker(w2)).changed  # already running

        t1 = trio.current_time()
        assert (await orch.restart_worker(w3)).changed
        await orch.slots[w3].state.wait_value("ready")
        assert factory.record(w3).starts[1] - t1 == pytest.approx(3.0)  # after its cleanup
        assert states(orch) == {"w1": "ready", "w2": "ready", "w3": "ready"}

    assert await run_with(orch, scenario) == 0
    assert len(factory.record(w1).starts) == 1  # never touched
    assert len(factory.record(w2).starts) == 2 and len(factory.record(w3).starts) == 2
    assert all(factory.record(k).most_alive_at_once() == 1 for k in (w1, w2, w3))


async def test_stop_during_backoff_is_immediate_and_final(autojump_clock) -> None:
    crashy = config(1).key
    factory = StubFactory({crashy: Script(fail_with=lambda attempt: RuntimeError(f"crash {attempt}"))})
    orch = orchestrator(factory, configs(1, 2))

    async def scenario() -> None:
        slot = orch.slots[crashy]
        await slot.state.wait_value(lambda _: len(factory.record(crashy).starts) == 3)
        await slot.state.wait_value("backoff")  # 4 s until the next start
        t0 = trio.current_time()
        assert (await orch.stop_worker(crashy)).changed
        assert trio.current_time() == t0  # nothing to clean up: the wait is cancelled
        await trio.sleep(600)
        assert len(factory.record(crashy).starts) == 3
        (row,) = [r for r in orch.workers() if r.key == crashy]
        assert row.state == "stopped" and row.last_error == "RuntimeError: crash 3"

    assert await run_with(orch, scenario) == 0
    assert len(factory.record(config(2).key).starts) == 1


async def test_restart_of_a_parked_worker_starts_it_at_once(autojump_clock) -> None:
    parked = config(1).key
    factory = StubFactory({parked: Script(fail_with=lambda a: WorkerNotFound("gone") if a == 1 else None)})
    orch = orchestrator(factory, configs(1))

    async def scenario() -> None:
        await orch.slots[parked].state.wait_value("parked")
        await trio.sleep(60)
        t0 = trio.current_time()
        await orch.restart_worker(parked)
        await orch.slots[parked].state.wait_value("ready")
        assert factory.record(parked).starts[1] == pytest.approx(t0)  # not 600 s after the park

    assert await run_with(orch, scenario) == 0
    assert factory.record(parked).most_alive_at_once() == 1


# -- one serialised path: no two slots for one worker -----------------------------------------


async def test_a_reload_and_a_restart_at_the_same_moment_leave_one_slot(autojump_clock) -> None:
    key = config(1).key
    factory = StubFactory({key: Script(cleanup=5.0)})
    renamed = attrs.evolve(config(1), name="renamed", convex_url="http://127.0.0.1:8")  # restarts it
    orch = orchestrator(
        factory, configs(1, 2), reload=lambda: Reloaded({renamed.key: renamed, **configs(2)}, SETTINGS)
    )

    async def scenario() -> None:
        await orch.slots[key].state.wait_value("ready")
        t0 = trio.current_time()
        plans = []
        async with trio.open_nursery() as both:
            both.start_soon(lambda: _append(plans, orch.reload()))
            both.start_soon(orch.restart_worker, key)
        assert plans[0].restart == (key,)
        # One after the other: the first waits 5 s for the cleanup, then starts a slot. The
        # second stops that one again, at once if its worker has not begun yet, or after its
        # own 5 s cleanup if it has (which of the two depends on the scheduler's order).
        elapsed = trio.current_time() - t0
        assert elapsed == pytest.approx(5.0) or elapsed == pytest.approx(10.0)
        await orch.slots[key].state.wait_value("ready")
        later_starts = [s - t0 for s in factory.record(key).starts[1:]]
        assert later_starts == pytest.approx([5.0]) or later_starts == pytest.approx([5.0, 10.0])

    assert await run_with(orch, scenario) == 0
    record = factory.record(key)
    assert record.most_alive_at_once() == 1  # never two workers for one key
    assert len(record.starts) == len(record.ends) in (2, 3)  # and none left running unowned
    assert orch.slots[key].config.name == "renamed"
    assert len(factory.record(config(2).key).starts) == 1


async def _append(into: list, awaitable: Awaitable) -> None:
    into.append(await awaitable)


async def test_a_disabled_worker_is_not_run_until_a_reload_enables_it_once(autojump_clock) -> None:
    # Before the controller, the orchestrator ran a disabled entry it was given, and a reload
    # that enabled it started a second slot over the running one (which nobody could stop).
    key = config(2).key
    disabled = {**configs(1), key: attrs.evolve(config(2), enabled=False)}
    orch = orchestrator(factory := StubFactory(), disabled, reload=lambda: Reloaded(configs(1, 2), SETTINGS))

    async def scenario() -> None:
        await orch.slots[config(1).key].state.wait_value("ready")
        assert factory.record(key).starts == []
        assert [row.name for row in orch.workers()] == ["w1"]
        plan = await orch.reload()
        assert plan.start == (key,)
        await orch.slots[key].state.wait_value("ready")

    assert await run_with(orch, scenario) == 0
    assert len(factory.record(key).starts) == 1 and factory.record(key).most_alive_at_once() == 1


async def test_a_stopped_worker_stays_stopped_through_a_reload_until_started(autojump_clock) -> None:
    key = config(1).key
    renamed = attrs.evolve(config(1), name="renamed", convex_url="http://127.0.0.1:8")
    orch = orchestrator(
        factory := StubFactory(),
        configs(1, 2),
        reload=lambda: Reloaded({renamed.key: renamed, **configs(2)}, SETTINGS),
    )

    async def scenario() -> None:
        await orch.slots[key].state.wait_value("ready")
        await orch.stop_worker("w1")
        plan = await orch.reload()
        assert plan.restart == () and plan.still_stopped == (key,)
        await trio.sleep(100)
        assert len(factory.record(key).starts) == 1
        assert states(orch) == {"renamed": "stopped", "w2": "ready"}  # the new entry, still stopped
        orch.request_reload()  # SIGHUP's way, once more
        await orch.reloads_done.wait_value(2)
        assert len(factory.record(key).starts) == 1
        await orch.start_worker("renamed")
        await orch.slots[key].state.wait_value("ready")
        assert orch.slots[key].config.name == "renamed"

    assert await run_with(orch, scenario) == 0
    assert len(factory.record(key).starts) == 2


async def test_commands_that_name_no_worker_or_cannot_reload_fail_in_one_line(autojump_clock) -> None:
    def broken() -> Reloaded:
        raise ConfigError("workers.json: not valid JSON5")

    orch = orchestrator(StubFactory(), configs(1, 2), reload=broken)

    async def scenario() -> None:
        for slot in orch.slots.values():
            await slot.state.wait_value("ready")
        with pytest.raises(UnknownWorker, match=r"no worker named 'w9' \(configured: w1, w2\)"):
            await orch.restart_worker("w9")
        with pytest.raises(ConfigError, match="not valid JSON5"):
            await orch.reload()
        assert states(orch) == {"w1": "ready", "w2": "ready"}

    assert await run_with(orch, scenario) == 0
    dev = orchestrator(StubFactory(), configs(1))  # no reload callable: dev mode

    async def no_reload() -> None:
        with pytest.raises(ReloadUnavailable):
            await dev.reload()

    assert await run_with(dev, no_reload) == 0


async def test_a_command_queued_behind_a_hung_cleanup_is_answered_when_the_process_stops(
    autojump_clock,
) -> None:
    hung = config(1).key
    orch = orchestrator(StubFactory({hung: Script(cleanup=math.inf)}), configs(1, 2))
    outcomes: list[object] = []

    async def ask(call: Awaitable) -> None:
        try:
            outcomes.append(await call)
        except OrchestratorStopping as exc:
            outcomes.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(orch.run)
        await orch.started.wait()
        await orch.slots[hung].state.wait_value("ready")
        nursery.start_soon(ask, orch.stop_worker(hung))  # waits for ever on the cleanup
        await trio.sleep(1)
        nursery.start_soon(ask, orch.restart_worker(config(2).key))  # queued behind it
        await trio.sleep(100)
        assert outcomes == [] and len(orch.workers()) == 2
        orch.request_stop("test")  # not a command: acts at once; the deadline cuts the cleanup
    assert len(outcomes) == 2 and isinstance(outcomes[1], OrchestratorStopping)
    with pytest.raises(OrchestratorStopping):
        await orch.start_worker(hung)  # after the run: refused, never left waiting


# -- what a worker publishes is all the orchestrator reads ------------------------------------


async def test_status_rows_come_from_the_workers_reports(autojump_clock, tmp_path) -> None:
    key = config(1).key
    factory = StubFactory(
        {key: Script(report={"turns_in_flight": 2, "active_sessions": 3, "opencode_pid": 4242})}
    )
    orch = orchestrator(factory, configs(1, 2), status_dir=tmp_path)

    async def scenario() -> None:
        await orch.slots[key].state.wait_value("ready")
        row = orch.workers()[0]
        assert (row.name, row.state, row.turns_in_flight, row.active_sessions, row.opencode_pid) == (
            "w1",
            "ready",
            2,
            3,
            4242,
        )
        worker = factory.record(key).workers[0]
        worker.set_state(worker.report.value.state, turns_in_flight=0)  # a turn ended
        assert orch.workers()[0].turns_in_flight == 0
        await orch.stop_worker(key)
        stopped = orch.workers()[0]
        assert (stopped.state, stopped.turns_in_flight, stopped.opencode_pid) == ("stopped", 0, None)

    assert await run_with(orch, scenario) == 0
