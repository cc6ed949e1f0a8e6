"""The running orchestrator's status.json, its single-instance lock, systemd notify and the
watchdog thread (MockClock, stub workers; the watchdog test runs in real time)."""

from __future__ import annotations

import math
import socket
import stat
import threading
import time

import pytest
import trio
import trio.testing
from stubs import SECRET, SETTINGS, Script, StubFactory, StubWorker, config, configs

from oco.convex import WorkerNotFound
from oco.orchestrator import AlreadyRunning, Orchestrator, RestartPolicy, SystemdNotifier, read_status
from oco.worker import State


def orchestrator(factory: StubFactory, *numbers: int, **kwargs: object) -> Orchestrator:
    kwargs.setdefault("hard_exit", None)
    return Orchestrator(
        configs(*numbers),
        SETTINGS,
        worker_factory=factory,
        handle_signals=False,
        policy=RestartPolicy(jitter=0.0),
        **kwargs,
    )


async def test_status_file_follows_state_changes_and_ends_stopped(autojump_clock, tmp_path) -> None:
    parked = config(2).key
    factory = StubFactory({parked: Script(fail_with=lambda a: WorkerNotFound("worker not found"))})
    orch = orchestrator(factory, 1, 2, status_dir=tmp_path)
    path = tmp_path / "status.json"
    wall_before = time.time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(orch.run)
        await orch.started.wait()
        await orch.slots[parked].state.wait_value("parked")
        await orch.slots[config(1).key].state.wait_value("ready")
        await trio.testing.wait_all_tasks_blocked()
        snapshot = read_status(path)
        assert snapshot is not None
        assert {w.key: w.state for w in snapshot.workers} == {config(1).key: "ready", parked: "parked"}
        row = next(w for w in snapshot.workers if w.key == parked)
        assert row.last_error and "unknown worker" in row.last_error
        assert wall_before - 1 <= row.since <= time.time() + 1  # wall clock, not trio time
        assert snapshot.pid > 0 and snapshot.all_ready is False
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert SECRET not in path.read_text()
        # Rewritten every few seconds even without changes ("updated" moves on).
        updated_before = snapshot.updated_at
        await trio.sleep(6.0)
        later = read_status(path)
        assert later is not None and later.updated_at >= updated_before
        orch.request_stop("test")

    final = read_status(path)
    assert final is not None and {w.state for w in final.workers} == {"stopped"}


async def test_a_second_orchestrator_on_the_same_state_dir_is_refused(autojump_clock, tmp_path) -> None:
    first = orchestrator(StubFactory(), 1, status_dir=tmp_path)
    second = orchestrator(StubFactory(), 1, status_dir=tmp_path)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(first.run)
        await first.started.wait()
        with pytest.raises(AlreadyRunning) as caught:
            await second.run()
        assert caught.value.exit_code == 2
        assert "already running" in str(caught.value)
        first.request_stop("test")
    # Released at exit: a new orchestrator may start.
    third = orchestrator(StubFactory(), 1, status_dir=tmp_path)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(third.run)
        await third.started.wait()
        third.request_stop("test")


def _datagrams(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


async def test_systemd_ready_watchdog_and_stopping(autojump_clock, tmp_path) -> None:
    address = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    receiver.setblocking(False)
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "10000000"}  # ping every 5 s
    slow = config(2).key
    # Worker 2's first attempt is rejected (parked): READY=1 waits for first attempts, not readiness.
    factory = StubFactory({slow: Script(fail_with=lambda a: WorkerNotFound("nope") if a == 1 else None)})
    orch = orchestrator(factory, 1, 2, notifier=SystemdNotifier.from_env(env))
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(orch.run)
            await orch.started.wait()
            await orch.slots[slow].state.wait_value("parked")
            await trio.testing.wait_all_tasks_blocked()
            early = _datagrams(receiver)
            assert early[0] == "WATCHDOG=1"
            assert any(
                m.startswith("READY=1\nSTATUS=1 of 2 ready; w2: parked (unknown worker") for m in early
            )
            await trio.sleep(12.0)
            orch.request_stop("test")
        later = _datagrams(receiver)
        assert later.count("WATCHDOG=1") == 2  # t = 5 s and 10 s
        assert later[-1] == "STOPPING=1"
    finally:
        receiver.close()


def test_no_notify_socket_means_no_notifier() -> None:
    assert not SystemdNotifier.from_env({}).enabled
    assert SystemdNotifier.from_env({"NOTIFY_SOCKET": "@abstract"}).address == "\0abstract"
    other_pid = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert SystemdNotifier.from_env(other_pid).watchdog_interval is None
    assert (
        SystemdNotifier.from_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "junk"}).watchdog_interval is None
    )


class _BlockingCleanup(StubFactory):
    """A worker whose cleanup blocks the whole trio loop (a sync call), like a stuck library."""

    def __call__(self, cfg, convex, stop, settings=None) -> StubWorker:
        worker = super().__call__(cfg, convex, stop, settings)

        async def run() -> None:
            worker.set_state(State.READY)
            try:
                await trio.sleep_forever()
            finally:
                time.sleep(1.5)  # blocks the loop: only a thread can end the process now

        worker.run = run
        return worker


async def test_the_watchdog_thread_exits_when_the_loop_is_blocked() -> None:
    exits: list[tuple[int, float]] = []
    fired = threading.Event()

    def hard_exit(code: int) -> None:
        exits.append((code, time.monotonic()))
        fired.set()

    orch = orchestrator(_BlockingCleanup({config(1).key: Script(cleanup=math.inf)}), 1, hard_exit=hard_exit)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(orch.run)
        await orch.started.wait()
        await orch.slots[config(1).key].state.wait_value("ready")
        orch.request_stop("SIGINT")
        forced_at = time.monotonic()
        orch.request_stop("SIGINT")  # force: the watchdog gets 1 s
    assert fired.wait(timeout=5)
    assert exits[0][0] == 1
    assert 0.9 <= exits[0][1] - forced_at <= 1.4


async def test_an_unusable_state_directory_costs_the_status_file_not_the_workers(
    autojump_clock, tmp_path, caplog
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    orch = orchestrator(StubFactory(), 1, status_dir=blocker / "state")
    caplog.set_level("DEBUG", logger="oco.orchestrator")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(orch.run)  # raised NotADirectoryError out of run() before
        await orch.started.wait()
        await orch.slots[config(1).key].state.wait_value("ready")
        await trio.sleep(30)  # six status rewrites, each failing
        orch.request_stop("test")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= 30]
    assert any("running without the single-instance lock" in w and "not-a-directory" in w for w in warnings)
    assert len([w for w in warnings if w.startswith("could not write")]) == 1, warnings
