"""A worker whose OpenCode cannot start is `degraded` (status.json, exit code, STATUS=), and
systemd's STATUS= follows every change instead of freezing at the first count (MockClock,
stub workers, a real AF_UNIX datagram socket standing in for systemd's)."""

from __future__ import annotations

import socket

import trio
import trio.testing
from stubs import SETTINGS, StubFactory, config, configs

from oco.orchestrator import Orchestrator, RestartPolicy, SystemdNotifier, read_status, status_exit_code
from oco.orchestrator._notify import status_line
from oco.orchestrator._status import WorkerStatus
from oco.worker import State

FAILURE = "OpenCode failed to start: opencode did not start: exited with code 1"


def _orchestrator(factory: StubFactory, **kwargs: object) -> Orchestrator:
    return Orchestrator(
        configs(1, 2),
        SETTINGS,
        worker_factory=factory,
        handle_signals=False,
        policy=RestartPolicy(jitter=0.0),
        hard_exit=None,
        **kwargs,
    )


def _datagrams(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def _statuses(messages: list[str]) -> list[str]:
    return [line[len("STATUS=") :] for m in messages for line in m.split("\n") if line.startswith("STATUS=")]


async def test_a_worker_whose_opencode_cannot_start_is_degraded_until_a_start_succeeds(
    autojump_clock, tmp_path
) -> None:
    address = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    receiver.setblocking(False)
    factory = StubFactory()
    orch = _orchestrator(
        factory, status_dir=tmp_path, notifier=SystemdNotifier.from_env({"NOTIFY_SOCKET": address})
    )
    path = tmp_path / "status.json"
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(orch.run)
            await orch.started.wait()
            for n in (1, 2):
                await orch.slots[config(n).key].state.wait_value("ready")
            await trio.testing.wait_all_tasks_blocked()
            assert _statuses(_datagrams(receiver)) == ["2 of 2 ready"]
            snapshot = read_status(path)
            assert snapshot is not None and status_exit_code(snapshot, alive=True) == 0

            beta = factory.record(config(2).key).workers[-1]
            beta.set_state(State.READY, opencode_error=FAILURE)  # its OpenCode failed to start
            await trio.testing.wait_all_tasks_blocked()
            snapshot = read_status(path)
            assert snapshot is not None
            row = next(w for w in snapshot.workers if w.name == "w2")
            assert (row.state, row.last_error) == ("degraded", FAILURE)
            assert status_exit_code(snapshot, alive=True) == 1
            assert _statuses(_datagrams(receiver)) == [f"1 of 2 ready; w2: {FAILURE}"]

            beta.set_state(State.READY, opencode_error=None)  # a later start succeeded
            await trio.testing.wait_all_tasks_blocked()
            snapshot = read_status(path)
            assert snapshot is not None and {w.state for w in snapshot.workers} == {"ready"}
            assert status_exit_code(snapshot, alive=True) == 0
            assert _statuses(_datagrams(receiver)) == ["2 of 2 ready"]
            orch.request_stop("test")
    finally:
        receiver.close()


def _row(name: str, state: str, error: str | None = None) -> WorkerStatus:
    return WorkerStatus(name, "m", name, "/tmp", state, since=0.0, last_error=error)


def test_the_status_line_names_each_worker_that_is_not_ready() -> None:
    rows = [
        _row("alpha", "ready"),
        _row("beta", "degraded", "OpenCode failed to start: no answer within 15 s\nmore"),
        _row("gamma", "parked", "unknown worker"),
        _row("delta", "stopped"),
    ]
    assert status_line(rows) == (
        "1 of 4 ready; beta: OpenCode failed to start: no answer within 15 s; "
        "gamma: parked (unknown worker); delta: stopped"
    )
    assert status_line([]) == "0 of 0 ready"
    long = status_line([_row("beta", "degraded", "x" * 500 + "\x1b[31m")])
    assert len(long) < 140 and "\x1b" not in long
