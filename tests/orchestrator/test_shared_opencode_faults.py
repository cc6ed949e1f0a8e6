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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio
from shared_workers import Running, group_alive, two_workers, wait_gone

from oco.opencode import UNRESPONSIVE_NOTE
from real_opencode import REAL_OPENCODE, opencode_bin

pytestmark = REAL_OPENCODE


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
    async with two_workers(tmp_path, codes) as run:
        fake = run.fake
        slow, pid = await _both_streaming(run, "SLOW 120")
        with _resumed_at_exit(pid):
            os.killpg(pid, signal.SIGSTOP)
            for message in slow:
                reply = await fake.wait_reply(message, timeout=90)
                assert f"Error: {UNRESPONSIVE_NOTE}" in reply.content, reply.content
                assert "tok0" in reply.content, reply.content  # what streamed before it stopped is kept
                assert "internal error" not in reply.content
            await wait_gone(pid)  # the stopped server was ours: it was killed, group and all

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
    await wait_gone(second)


def _kills(caplog) -> list[str]:
    """What the forced stops logged killing."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("killing OpenCode")]


async def test_a_forced_stop_kills_the_shared_servers_group_once_for_all_its_workers(
    tmp_path, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="oco.orchestrator")
    codes: list[int] = []
    async with two_workers(tmp_path, codes) as run:
        _, pid = await _both_streaming(run, "SLOW 120")
        assert run.reported() == [pid, pid]  # both workers report the one server
        run.orch.request_stop("test")
        run.orch.request_stop("test")  # the second request forces the stop
        assert _kills(caplog) == [f"killing OpenCode process groups {pid}"]
        await wait_gone(pid)
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
    async with two_workers(tmp_path, codes, bin=_deaf_to_sigterm(tmp_path)) as run:
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
            assert group_alive(pid)
            run.orch.request_stop("test")  # forced
            assert _kills(caplog) == [f"killing OpenCode process groups {pid}"]
            await wait_gone(pid)
    assert codes == [1]
