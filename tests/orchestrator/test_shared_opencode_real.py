"""`opencode_server: "shared"` end to end: real workers in the orchestrator, one real OpenCode.

Two workers in two git projects answer through one `opencode serve`: at the same time, each tool
call in its own project; a SIGKILLed shared server fails both workers' turns readably, one
restart serves them both, and no worker restarts. The fake Convex runs in process; the fake
LLM and OpenCode are real servers on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import trio
from shared_workers import two_workers

from oco._retry import TURN_PREPARATION
from oco.opencode import view
from real_opencode import REAL_OPENCODE, gone

pytestmark = REAL_OPENCODE


async def test_two_workers_answer_at_once_through_one_server_each_in_its_own_project(tmp_path) -> None:
    async with two_workers(tmp_path, opencode_idle_timeout_s=3.0) as run:
        fake = run.fake
        slow = [fake.send_message(chat, "SLOW 4") for chat in run.chats]
        with trio.fail_after(90):
            await fake.wait_for(lambda: all(fake.chunks(m) for m in slow), timeout=90)
        # Both stream at the same moment, through one server.
        assert [run.report(n).turns_in_flight for n in (0, 1)] == [1, 1]
        (pid,) = run.pids()
        assert pid is not None
        assert {run.report(n).opencode_server for n in (0, 1)} == {run.report(0).opencode_server}
        assert run.report(0).opencode_server.startswith("shared ")
        for message in slow:
            reply = await fake.wait_reply(message, timeout=60)
            assert reply.content == "".join(f"tok{i} " for i in range(16)), reply.content

        # Each tool call sees its own project only.
        tools = [fake.send_message(chat, "BASH ls; pwd") for chat in run.chats]
        listings = [(await fake.wait_reply(m, timeout=60)).content for m in tools]
        assert "only_alpha.txt" in listings[0] and "only_beta.txt" not in listings[0], listings[0]
        assert "only_beta.txt" in listings[1] and "only_alpha.txt" not in listings[1], listings[1]
        assert str(run.configs[0].working_directory) in listings[0]
        assert str(run.configs[1].working_directory) in listings[1]
        assert run.pids() == {pid}

        # No turn for opencode_idle_timeout_s: the one server stops, for both workers.
        with trio.fail_after(30):
            while run.pids() != {None} or not gone(pid):
                await trio.sleep(0.2)  # polling the process table under a deadline
        # The next turn of either starts it again.
        again = fake.send_message(run.chats[1], "ECHO back")
        assert (await fake.wait_reply(again, timeout=90)).content == "back"
        (restarted,) = run.pids()
        assert restarted not in (None, pid)
    # The stop stopped the shared server with its workers: nothing of its group is left.
    assert gone(restarted)


@pytest.mark.real_backoff(TURN_PREPARATION)
async def test_a_killed_shared_server_fails_both_turns_readably_and_one_restart_serves_both(tmp_path) -> None:
    async with two_workers(tmp_path) as run:
        fake = run.fake
        slow = [fake.send_message(chat, "SLOW 20") for chat in run.chats]
        with trio.fail_after(90):
            await fake.wait_for(lambda: all(fake.chunks(m) for m in slow), timeout=90)
        (pid,) = run.pids()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        for message in slow:
            reply = await fake.wait_reply(message, timeout=30)
            assert "OpenCode stopped unexpectedly" in reply.content, reply.content
        after = [fake.send_message(chat, f"ECHO again {n}") for n, chat in enumerate(run.chats)]
        for n, message in enumerate(after):
            assert (await fake.wait_reply(message, timeout=90)).content == f"again {n}"
        (second,) = run.pids()
        assert second not in (None, pid)
        # No worker restarted because of it.
        for config in run.configs:
            slot = run.orch.slots[config.key]
            assert (slot.attempts, slot.restarts, slot.state.value) == (1, 0, "ready")
    assert gone(second)


async def test_opening_a_worker_in_the_web_app_has_the_shared_server_load_its_project_only(tmp_path) -> None:
    async with two_workers(tmp_path) as run:
        fake = run.fake
        alpha, beta = (c.working_directory for c in run.configs)
        for project in (alpha, beta):  # a commit gives each project an id of its own in OpenCode
            subprocess.run(["git", "-C", str(project), "add", "."], check=True)
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(project),
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "commit",
                    "-qm",
                    "x",
                ],
                check=True,
            )
        worker = run.orch.slots[run.configs[0].key].worker
        assert worker is not None and run.pids() == {None}

        fake.request_connect(run.configs[0].worker_id)  # alpha is opened in the web app
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()

        async def loaded() -> set[str]:
            async with worker.host.lease() as server:
                listing = await view(server, elsewhere).client.request("GET", "/project")
            return {p.get("worktree") for p in listing}

        with trio.fail_after(60):
            while run.pids() == {None}:
                await trio.sleep(0.2)  # polling the worker's report under a deadline
            while str(alpha) not in (worktrees := await loaded()):
                await trio.sleep(0.2)
        # Only the opened worker's directory is loaded (an instance costs 40-75 MB for the
        # server's life); beta's waits for its first turn or its own connect.
        assert str(beta) not in worktrees
        reply = fake.send_message(run.chats[0], "ECHO warm")
        assert (await fake.wait_reply(reply, timeout=60)).content == "warm"
