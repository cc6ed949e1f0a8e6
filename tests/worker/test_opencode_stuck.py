"""A stuck OpenCode (alive, not answering) is killed and replaced, and its turns end readably.

"Stuck" is honest here: the real `opencode serve`'s process group is SIGSTOPped, so its HTTP
server stops answering while the process lives on, which is what a wedged server looks like
from outside. The host tests use short health intervals; the worker test runs the defaults
through the relay, as a user's chat would.
"""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from oco.convex import ConvexClient
from oco.opencode import UNRESPONSIVE_NOTE, TurnResult, run_turn
from oco.testing import (
    FAKE_MODEL,
    make_worker,
    opencode_env,
    running_worker,
    serve_fake_convex,
    serve_fake_llm,
)
from oco.worker._opencode_host import OpenCodeHost
from real_opencode import OPENCODE, REAL_OPENCODE

pytestmark = REAL_OPENCODE


def _gone(pid: int) -> bool:
    """Neither the process nor its group lives on (a zombie awaiting init counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        pass
    else:
        if stat.rpartition(")")[2].split()[0] != "Z":
            return False
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return all(_zombie(p) for p in _group_members(pid))


def _group_members(group: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == group:
                    members.append(int(entry.name))
            except OSError:
                continue
    return members


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


async def _wait_gone(pid: int, timeout: float = 15) -> None:
    with trio.fail_after(timeout):
        while not _gone(pid):
            await trio.sleep(0.1)  # polling /proc for the death, under a deadline


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    return project


@asynccontextmanager
async def _host(tmp_path: Path, **health):
    async with serve_fake_llm() as llm:
        host = OpenCodeHost(
            OPENCODE,
            _project(tmp_path),
            env=opencode_env(tmp_path / "home", llm.base_url),
            start_timeout=60,
            idle_timeout=600,
            **health,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(host.run)
            try:
                yield host
            finally:
                nursery.cancel_scope.cancel()


async def _echo(host: OpenCodeHost, text: str) -> tuple[int, str]:
    async with host.lease() as server:
        session = await server.client.create_session("echo")
        result = await run_turn(server, session, f"ECHO {text}", FAKE_MODEL, timeout=60)
        assert result.error is None, result.error
        return server.pid, result.content


async def _turn_stopped_after_its_first_delta(
    host: OpenCodeHost, timeout: float
) -> tuple[int, bool, TurnResult]:
    """A SLOW turn whose server is SIGSTOPped once it streamed: (its pid, streamed, result)."""
    first_delta = trio.Event()
    with trio.fail_after(60):
        async with host.lease() as server:
            pid = server.pid
            session = await server.client.create_session("stuck")

            async def stop_it() -> None:
                await first_delta.wait()
                os.killpg(pid, signal.SIGSTOP)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_it)
                result = await run_turn(
                    server,
                    session,
                    "SLOW 30",
                    FAKE_MODEL,
                    timeout=timeout,
                    on_text=lambda _: first_delta.set(),
                )
                nursery.cancel_scope.cancel()
    return pid, first_delta.is_set(), result


async def test_a_server_stuck_while_idle_is_replaced_before_it_is_lent(tmp_path):
    # The periodic check is far away: only the check before lending can catch it.
    async with _host(tmp_path, health_interval=600, health_timeout=1) as host:
        async with host.lease() as server:  # it has just answered its start-up check
            first = server.pid
        os.killpg(first, signal.SIGSTOP)
        with trio.fail_after(60):
            second, content = await _echo(host, "two")
        assert content == "two" and second != first
        await _wait_gone(first)  # SIGKILL reached the stopped group


async def test_a_server_stuck_mid_turn_is_killed_and_the_turn_ends_readably(tmp_path):
    # 3 s to answer a health check: with 1 s, a loaded machine (load 9 on 2 cores) failed the
    # check before the turn had streamed anything, and the turn ended with nothing to keep.
    async with _host(tmp_path, health_interval=1, health_timeout=3) as host:
        first, streamed, result = await _turn_stopped_after_its_first_delta(host, timeout=600)
        assert streamed, "the turn should have streamed before the server was stopped"
        assert result.error == UNRESPONSIVE_NOTE
        assert "tok0" in result.content  # what streamed before it stopped is kept
        with trio.fail_after(60):
            second, content = await _echo(host, "after")
        assert content == "after" and second != first
        await _wait_gone(first)


async def test_a_turn_deadline_on_a_stuck_server_replaces_it(tmp_path):
    # No periodic check in the way: the deadline finds it.
    async with _host(tmp_path, health_interval=600, health_timeout=1) as host:
        first, streamed, result = await _turn_stopped_after_its_first_delta(host, timeout=10)
        assert streamed, "the turn should have streamed before its deadline"
        assert result.error == UNRESPONSIVE_NOTE
        with trio.fail_after(60):
            second, content = await _echo(host, "after the deadline")
        assert content == "after the deadline" and second != first


async def test_a_call_that_times_out_on_a_stuck_server_ends_the_lease_readably(tmp_path):
    from oco.worker._opencode_host import OpenCodeUnavailable

    async with _host(tmp_path, health_interval=600, health_timeout=1) as host:
        with trio.fail_after(60):
            with pytest.raises(OpenCodeUnavailable) as info:
                async with host.lease() as server:
                    first = server.pid
                    os.killpg(first, signal.SIGSTOP)
                    await server.client.request("GET", "/session", timeout=1)
        assert str(info.value) == UNRESPONSIVE_NOTE
        with trio.fail_after(60):
            second, _ = await _echo(host, "next")
        assert second != first


async def test_a_chat_on_a_stuck_opencode_gets_a_readable_reply_and_the_next_message_a_new_server(tmp_path):
    project = _project(tmp_path)
    async with serve_fake_convex() as served, serve_fake_llm() as llm:
        fake = served.fake
        created = fake.create_worker()
        async with ConvexClient(served.url) as convex:
            worker = make_worker(
                created,
                convex,
                project,
                state_dir=tmp_path / "state",
                opencode_bin=OPENCODE,
                opencode_env=opencode_env(tmp_path / "home", llm.base_url),
                poll_idle_interval_s=0.5,
                turn_timeout_s=600,
            )
            async with running_worker(worker):
                chat = fake.start_session(created.worker_id)

                # Stuck mid-turn: the default health check (15 s, 5 s timeout) finds it.
                slow = fake.send_message(chat, "SLOW 60")
                await fake.wait_for(lambda: bool(fake.chunks(slow)), timeout=60)
                first = worker.host.pid
                os.killpg(first, signal.SIGSTOP)
                stuck = await fake.wait_reply(slow, timeout=60)
                assert f"Error: {UNRESPONSIVE_NOTE}" in stuck.content
                assert "internal error" not in stuck.content

                after = fake.send_message(chat, "ECHO answered by a new server")
                reply = await fake.wait_reply(after, timeout=90)
                assert reply.content == "answered by a new server"
                second = worker.host.pid
                assert second not in (None, first)

                # Stuck while idle: the check before lending finds it; the message is answered.
                os.killpg(second, signal.SIGSTOP)
                idle = fake.send_message(chat, "ECHO and again")
                assert (await fake.wait_reply(idle, timeout=90)).content == "and again"
                assert worker.host.pid not in (None, first, second)
    await _wait_gone(first)
    await _wait_gone(second)
