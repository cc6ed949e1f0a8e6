"""The OpenCode layer against a real `opencode serve` driven by the fake LLM.

One server is shared by the turn checks (start-up costs seconds and ~700 MB), so they are
grouped in one test; the lifecycle checks need their own servers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from oco.opencode import (
    OpenCodeStartError,
    list_models_cli,
    models_from_providers,
    open_opencode_server,
    run_turn,
)
from oco.testing import FAKE_MODEL, opencode_env, serve_fake_llm
from real_opencode import gone, opencode_bin


@asynccontextmanager
async def _opencode(tmp_path: Path, project_name: str = "project"):
    """A fake LLM and an opencode server for `tmp_path/project_name`; HOME is `tmp_path/home`,
    shared by calls with the same `tmp_path` (a fresh HOME makes start-up ~3x slower)."""
    project = tmp_path / project_name
    project.mkdir()
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(project)], check=True)
    async with serve_fake_llm() as llm:
        env = opencode_env(tmp_path / "home", llm.base_url)
        async with open_opencode_server(opencode_bin(), project, env=env) as server:
            yield server, llm


async def _busy(server, session_id: str) -> bool:
    return session_id in await server.client.session_status()


async def _wait_not_busy(server, session_id: str) -> None:
    with trio.fail_after(10):
        while await _busy(server, session_id):
            await trio.sleep(0.1)  # polling OpenCode's state under a deadline


@pytest.mark.opencode
async def test_turns_stream_use_tools_report_errors_abort_and_survive_a_crash(tmp_path):
    async with _opencode(tmp_path) as (server, llm):
        client = server.client

        # Model list comes from the fake provider only; the password is required.
        models = models_from_providers(await client.request("GET", "/config/providers"))
        assert [(m.id, m.name, m.provider) for m in models] == [("fake/fake-model", "Fake Model", "fake")]
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.get(server.base_url + "/global/health")).status_code == 401

        # SLOW 3: deltas arrive as they are produced, long before the turn ends.
        session = await client.create_session("slow")
        arrivals: list[tuple[float, str]] = []
        start = trio.current_time()
        result = await run_turn(
            server,
            session,
            "SLOW 3",
            FAKE_MODEL,
            timeout=30,
            on_text=lambda s: arrivals.append((trio.current_time(), s)),
        )
        end = trio.current_time()
        assert result.error is None
        assert result.content == "".join(f"tok{i} " for i in range(12))
        assert "".join(s for _, s in arrivals) == result.content
        assert end - start >= 2.5
        assert arrivals[0][0] < end - 1.5, "the first delta should arrive well before the end"
        assert not any(
            r.path.endswith("completions") and "title generator" in str(r.body) for r in llm.requests
        )

        # USE_TOOL: the bash call ran, its part is kept, and the answer quotes the output.
        session = await client.create_session("tool")
        result = await run_turn(server, session, "USE_TOOL", FAKE_MODEL, timeout=30)
        tools = [p for p in result.other_parts if p["type"] == "tool"]
        assert result.error is None and result.content == "tool said: hello-from-tool"
        assert tools[0]["tool"] == "bash" and tools[0]["state"]["status"] == "completed"
        assert "hello-from-tool" in tools[0]["state"]["output"]

        # FAIL400: a readable sentence, not an empty answer.
        session = await client.create_session("fail400")
        result = await run_turn(server, session, "FAIL400", FAKE_MODEL, timeout=30)
        assert result.error is not None
        assert result.error.startswith("The model provider rejected the request (HTTP 400): ")
        assert "FAIL400" in result.error

        # FAIL500: OpenCode retries for ever; the deadline ends the turn and aborts it.
        session = await client.create_session("fail500")
        result = await run_turn(server, session, "FAIL500", FAKE_MODEL, timeout=2)
        assert result.error == "timed out after 2 s"
        await _wait_not_busy(server, session)

        # Cancelled mid-turn: OpenCode's session is aborted, not left working for nobody.
        session = await client.create_session("cancel")
        first_delta = trio.Event()
        async with trio.open_nursery() as nursery:

            async def turn() -> None:
                await run_turn(
                    server, session, "SLOW 30", FAKE_MODEL, timeout=60, on_text=lambda _: first_delta.set()
                )
                raise AssertionError("the turn should have been cancelled")

            nursery.start_soon(turn)
            with trio.fail_after(15):
                await first_delta.wait()
            nursery.cancel_scope.cancel()
        await _wait_not_busy(server, session)
        last = (await client.messages(session))[-1]["info"]
        assert last["role"] == "assistant" and last["error"]["name"] == "MessageAbortedError"

        # A permission question is answered by policy (default reject), never left hanging.
        created = await client.request(
            "POST",
            "/session",
            json={"title": "ask", "permission": [{"permission": "bash", "pattern": "*", "action": "ask"}]},
        )
        result = await run_turn(server, created["id"], "USE_TOOL", FAKE_MODEL, timeout=30)
        assert [(d.permission, d.reply) for d in result.permissions] == [("bash", "reject")]
        tools = [p for p in result.other_parts if p["type"] == "tool"]
        assert tools and tools[0]["state"]["status"] == "error"

        # Last, as it ends the server: SIGKILL during a turn is noticed at once and the turn
        # ends with a readable error.
        pid = server.pid
        session = await client.create_session("doomed")
        first_delta = trio.Event()
        crashed_result = None

        async def doomed_turn() -> None:
            nonlocal crashed_result
            crashed_result = await run_turn(
                server, session, "SLOW 30", FAKE_MODEL, timeout=60, on_text=lambda _: first_delta.set()
            )

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(doomed_turn)
                await first_delta.wait()
                os.kill(pid, signal.SIGKILL)
                await server.crashed.wait()
        assert server.exit_code == -signal.SIGKILL
        assert crashed_result is not None
        assert crashed_result.error == "OpenCode stopped unexpectedly (exit code -9)"
        assert "tok0" in crashed_result.content
    assert gone(pid)


@pytest.mark.opencode
async def test_server_never_outlives_its_block(tmp_path):
    # Normal exit.
    async with _opencode(tmp_path, "a") as (server, _):
        pid = server.pid
        assert (await server.client.health())["healthy"] is True
    assert gone(pid)

    # Cancellation while inside the block.
    with trio.CancelScope() as scope:
        async with _opencode(tmp_path, "b") as (server, _):
            pid = server.pid
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught and gone(pid)


@pytest.mark.opencode
async def test_models_from_the_cli_use_the_project_directory(tmp_path):
    async with serve_fake_llm() as llm:
        env = opencode_env(tmp_path / "home", llm.base_url)
        models = await list_models_cli(opencode_bin(), tmp_path, env, timeout=30)
    assert [(m.id, m.name) for m in models] == [("fake/fake-model", "Fake Model")]


async def test_a_server_that_exits_at_start_reports_its_output(tmp_path):
    script = tmp_path / "fake-opencode"
    script.write_text("#!/bin/sh\necho 'boom: no config'\nexit 3\n")
    script.chmod(0o700)
    with pytest.raises(OpenCodeStartError) as info:
        async with open_opencode_server(str(script), tmp_path):
            raise AssertionError("should not start")
    assert "exited with code 3" in str(info.value) and "boom: no config" in str(info.value)


async def test_a_silent_server_times_out_and_is_killed(tmp_path):
    pid_file = tmp_path / "pid"
    script = tmp_path / "fake-opencode"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\necho starting\nexec sleep 60\n")
    script.chmod(0o700)
    with pytest.raises(OpenCodeStartError) as info:
        async with open_opencode_server(str(script), tmp_path, start_timeout=1):
            raise AssertionError("should not start")
    assert "no answer within 1 s" in str(info.value) and "starting" in str(info.value)
    assert gone(int(pid_file.read_text()))


async def test_a_turn_reconciles_from_the_newest_messages_not_the_whole_history(tmp_path):
    # OpenCode's `limit` counts from the newest message (what the reconcile's window relies
    # on): after three turns, the last two messages are the third turn's question and answer.
    async with _opencode(tmp_path) as (server, _llm):
        client = server.client
        session = await client.create_session("history")
        for word in ("one", "two", "three"):
            result = await run_turn(server, session, f"ECHO {word}", FAKE_MODEL, timeout=60)
            assert result.error is None and result.content == word
        every = await client.messages(session)
        newest = await client.messages(session, last=2)
        assert len(every) == 6
        assert [m["info"]["id"] for m in newest] == [m["info"]["id"] for m in every[-2:]]
        assert [m["info"]["role"] for m in newest] == ["user", "assistant"]
