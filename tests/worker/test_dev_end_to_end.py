"""`trio-oco dev` as a subprocess, end to end: fake Convex and fake LLM on loopback, a real opencode.

The test plays the web app: it starts a session, sends messages, and watches the chunks and the
completed replies arrive in the fake backend's tables.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from oco.testing import CONVEX_MODES, collect_output, kill_leftovers, processes_in, serve_fake_convex
from oco.testing._fake_llm import serve_fake_llm
from oco.testing._opencode_env import opencode_env
from oco.worker import INTERRUPTED_NOTE

REPO = Path(__file__).resolve().parents[2]
OPENCODE = os.environ.get("OCO_OPENCODE_BIN") or str(REPO / "node_modules" / ".bin" / "opencode")

pytestmark = [pytest.mark.opencode, pytest.mark.slow]


@pytest.mark.skipif(not Path(OPENCODE).exists() and not shutil.which("opencode"), reason="opencode not installed")
@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_dev_answers_streams_reuses_the_session_and_stops_gracefully(tmp_path, mode):
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    async with serve_fake_convex(prod=mode == "prod") as convex, serve_fake_llm() as llm:
        fake = convex.fake
        created = fake.create_worker(name="dev-worker")
        secret = created.token.split(":secret_", 1)[1]
        (project / ".env").write_text(f"# my project\nWORKER_TOKEN={created.token}\nCONVEX_URL={convex.url}\nOTHER=kept\n")
        env = {
            **opencode_env(tmp_path / "home", llm.base_url, base=os.environ),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "OCO_OPENCODE_BIN": OPENCODE,
        }
        env.pop("WORKER_TOKEN", None)
        env.pop("CONVEX_URL", None)
        output = bytearray()
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "oco", "--log-level", "DEBUG", "dev"],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(collect_output, process.stdout, output)
                await fake.wait_for(lambda: (fake.worker(created.worker_id).connected_at or 0) > 0, timeout=30)

                chat = fake.start_session(created.worker_id)
                sent = time.monotonic()
                first_reply = fake.send_message(chat, "ECHO hello from the web app")
                await fake.wait_for(lambda: bool(fake.chunks(first_reply)), timeout=60)
                first_chunk_s = time.monotonic() - sent
                reply = await fake.wait_reply(first_reply, timeout=60)
                completion_s = time.monotonic() - sent
                assert reply.content == "hello from the web app"
                chunks = fake.chunks(first_reply)
                assert [c.sequence for c in chunks] == list(range(len(chunks)))
                assert "".join(c.chunk for c in chunks) == "hello from the web app"

                sent = time.monotonic()
                second_reply = fake.send_message(chat, "ECHO second message")
                await fake.wait_for(lambda: bool(fake.chunks(second_reply)), timeout=60)
                warm_first_chunk_s = time.monotonic() - sent
                assert (await fake.wait_reply(second_reply, timeout=60)).content == "second message"
                warm_completion_s = time.monotonic() - sent
                sessions = {r.headers.get("x-session-id") for r in llm.requests if "ECHO" in str(r.body)}
                assert len(sessions) == 1  # the second message reused the OpenCode session

                slow_reply = fake.send_message(chat, "SLOW 20")
                await fake.wait_for(lambda: bool(fake.chunks(slow_reply)), timeout=60)
                process.send_signal(signal.SIGINT)
                with trio.fail_after(15):
                    code = await process.wait()
                nursery.cancel_scope.cancel()
        finally:
            if process.returncode is None:  # the test failed: leave nothing running
                process.kill()
                await process.wait()
                kill_leftovers(project)

        text = output.decode(errors="replace")
        assert code == 0, text[-3000:]
        interrupted = fake.message(slow_reply)
        assert interrupted.completed and interrupted.content.endswith(INTERRUPTED_NOTE)
        assert fake.worker(created.worker_id).status == "offline"
        assert secret not in text
        assert "Traceback" not in text
    assert processes_in(project) == [], "a process was left behind in the project directory"
    print(
        f"\ncold (OpenCode starts): sendMessage -> first chunk {first_chunk_s:.2f} s, "
        f"-> completed {completion_s:.2f} s; warm: {warm_first_chunk_s:.2f} s, {warm_completion_s:.2f} s"
    )
