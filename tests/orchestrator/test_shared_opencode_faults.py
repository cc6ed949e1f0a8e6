"""`opencode_server: "shared"` when its one server fails: real workers, one real OpenCode.

A wedged shared server (SIGSTOPped: alive, not answering) is found by the shared host's health
check, killed, and replaced by one server for both workers, whose in-flight turns end readably;
no worker restarts. A forced stop kills the shared server's process group once, though every
worker using it reports its pid, and also when it is still stopping after its workers left. The
fake Convex runs in process; the fake LLM and OpenCode are real servers on 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import attrs
import trio

from oco.config import Settings, WorkerConfig, parse_token
from oco.opencode import UNRESPONSIVE_NOTE
from oco.orchestrator import ConvexConnections, Orchestrator, RestartPolicy, worker_factory
from oco.testing import FakeConvex, fake_models, in_process_connections, opencode_env, serve_fake_llm
from real_opencode import REAL_OPENCODE, opencode_bin

pytestmark = REAL_OPENCODE


def _state(pid: int) -> str | None:
    """The process's state letter (`T` stopped, `Z` zombie), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


def _group_alive(group: int) -> bool:
    """Whether anything of the process group lives on (zombies awaiting their reaper do not)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == group and _state(int(entry.name)) not in (None, "Z"):
                    return True
            except OSError:
                continue
    return False


async def _wait_gone(pid: int, timeout: float = 30) -> None:
    with trio.fail_after(timeout):
        while _group_alive(pid):
            await trio.sleep(0.1)  # polling /proc for the death, under a deadline


def _our_child(pid: int) -> bool:
    """Still a child of this test process, not yet reaped: its pid (and group) cannot be reused."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return False
    return int(fields[1]) == os.getpid()


@contextmanager
def _resumed_at_exit(pid: int) -> Iterator[None]:
    """Whatever the test did, a group it stopped is not left stopped (and killed if still ours)."""
    try:
        yield
    finally:
        if _our_child(pid):
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    pass


def _project(root: Path, name: str) -> Path:
    project = root / name
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    return project


@attrs.define
class Running:
    fake: FakeConvex
    orch: Orchestrator
    connections: ConvexConnections
    configs: list[WorkerConfig]
    chats: list[str]

    def pids(self) -> set[int | None]:
        return {self.orch.slots[c.key].opencode_pid for c in self.configs}

    def reported(self) -> list[int | None]:
        return [self.orch.slots[c.key].opencode_pid for c in self.configs]

    def restarts(self) -> list[tuple[int, int, str]]:
        slots = [self.orch.slots[c.key] for c in self.configs]
        return [(s.attempts, s.restarts, s.state.value) for s in slots]


@asynccontextmanager
async def _two_workers(
    tmp_path: Path, codes: list[int], bin: str | None = None, **settings: object
) -> AsyncIterator[Running]:
    """Two workers in two git projects sharing one OpenCode (`bin`, default the real one);
    `codes` gets `run()`'s exit code."""
    projects = [_project(tmp_path, "alpha"), _project(tmp_path, "beta")]
    fake = FakeConvex()
    created = [fake.create_worker(name=p.name) for p in projects]
    configs = [
        WorkerConfig(
            token=parse_token(c.token),
            convex_url="http://fake.convex",
            working_directory=p.resolve(),
            name=p.name,
        )
        for c, p in zip(created, projects, strict=True)
    ]
    config = Settings(opencode_server="shared", **settings)  # type: ignore[arg-type]
    async with serve_fake_llm() as llm, in_process_connections(fake) as connections:
        orch = Orchestrator(
            {c.key: c for c in configs},
            config,
            worker_factory=worker_factory(
                opencode_bin=bin or opencode_bin(),
                state_dir=tmp_path / "state",
                opencode_env=opencode_env(tmp_path / "home", llm.base_url),
                catalog=fake_models(),
            ),
            connections=connections,
            policy=RestartPolicy(jitter=0.0),
            handle_signals=False,
            hard_exit=None,
        )

        async def main() -> None:
            codes.append(await orch.run())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(main)
            await orch.started.wait()
            with trio.fail_after(60):
                for c in configs:
                    await orch.slots[c.key].state.wait_value("ready")
            chats = [fake.start_session(c.worker_id) for c in created]
            try:
                yield Running(fake, orch, connections, configs, chats)
            finally:
                orch.request_stop("test")
    # Stopped with its workers: nothing of the shared server is left.
    assert connections.opencode.hosts.open_count.value == 0


async def _both_streaming(run: Running, text: str) -> tuple[list[str], int]:
    """Both workers' turns on `text`, once both have streamed: (their replies' ids, the server's pid)."""
    messages = [run.fake.send_message(chat, text) for chat in run.chats]
    await run.fake.wait_for(lambda: all(run.fake.chunks(m) for m in messages), timeout=90)
    (pid,) = run.pids()
    assert pid is not None
    return messages, pid


async def test_a_wedged_shared_server_is_replaced_once_for_both_workers_and_their_turns_end_readably(
    tmp_path,
) -> None:
    # The shared host checks its server with the default health check (every 15 s, 5 s to
    # answer, one retry): up to ~25 s to notice, which the generous deadlines below allow for
    # on a loaded machine. Both turns stream until long after that, unless the server stops.
    codes: list[int] = []
    async with _two_workers(tmp_path, codes) as run:
        fake = run.fake
        slow, pid = await _both_streaming(run, "SLOW 120")
        with _resumed_at_exit(pid):
            os.killpg(pid, signal.SIGSTOP)
            for message in slow:
                reply = await fake.wait_reply(message, timeout=90)
                assert f"Error: {UNRESPONSIVE_NOTE}" in reply.content, reply.content
                assert "tok0" in reply.content, reply.content  # what streamed before it stopped is kept
                assert "internal error" not in reply.content
            await _wait_gone(pid)  # the stopped server was ours: it was killed, group and all

            after = [fake.send_message(chat, f"ECHO answered again {n}") for n, chat in enumerate(run.chats)]
            for n, message in enumerate(after):
                assert (await fake.wait_reply(message, timeout=90)).content == f"answered again {n}"
            # One new server serves both.
            (second,) = run.pids()
            assert second not in (None, pid)
            assert run.connections.opencode.hosts.open_count.value == 1
            # No worker restarted because of it.
            assert run.restarts() == [(1, 0, "ready"), (1, 0, "ready")]
    assert codes == [0]
    await _wait_gone(second)


def _kills(caplog) -> list[str]:
    """What the forced stops logged killing."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("killing OpenCode")]


async def test_a_forced_stop_kills_the_shared_servers_group_once_for_all_its_workers(
    tmp_path, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="oco.orchestrator")
    codes: list[int] = []
    async with _two_workers(tmp_path, codes) as run:
        _, pid = await _both_streaming(run, "SLOW 120")
        assert run.reported() == [pid, pid]  # both workers report the one server
        run.orch.request_stop("test")
        run.orch.request_stop("test")  # the second request forces the stop
        assert _kills(caplog) == [f"killing OpenCode process groups {pid}"]
        await _wait_gone(pid)
    assert codes == [1]  # a forced stop is not a clean one
    assert _kills(caplog) == [f"killing OpenCode process groups {pid}"]


def _deaf_to_sigterm(tmp_path: Path) -> str:
    """The real OpenCode, started with SIGTERM ignored (a server that does not stop when asked)."""
    wrapper = tmp_path / "opencode-ignoring-sigterm"
    wrapper.write_text(f"#!/bin/sh\ntrap '' TERM\nexec {shlex.quote(opencode_bin())} \"$@\"\n")
    wrapper.chmod(0o755)
    return str(wrapper)


async def test_a_forced_stop_kills_a_shared_server_that_is_still_stopping_after_its_workers_left(
    tmp_path, caplog
) -> None:
    # Its workers report no server once they have left, but it stops only after them (its
    # host closes with the last one): the forced stop must still find and kill it.
    caplog.set_level(logging.WARNING, logger="oco.orchestrator")
    codes: list[int] = []
    async with _two_workers(tmp_path, codes, bin=_deaf_to_sigterm(tmp_path)) as run:
        replies = [run.fake.send_message(chat, "ECHO up") for chat in run.chats]
        for message in replies:
            assert (await run.fake.wait_reply(message, timeout=90)).content == "up"
        (pid,) = run.pids()
        assert pid is not None
        with _resumed_at_exit(pid):
            run.orch.request_stop("test")
            # SIGTERMed, it lives on until the host's grace (5 s) ends in a SIGKILL.
            with trio.fail_after(30):
                while run.pids() != {None}:
                    await trio.sleep(0.01)  # polling the workers' reports, under a deadline
            assert _group_alive(pid)
            run.orch.request_stop("test")  # forced
            assert _kills(caplog) == [f"killing OpenCode process groups {pid}"]
            await _wait_gone(pid)
    assert codes == [1]
