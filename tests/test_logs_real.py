"""The story of each turn at INFO, with a real OpenCode: `trio-oco run` with two workers as a
subprocess (fake Convex and fake LLM on loopback), read back with `trio-oco logs`.

alpha answers three chats: three INFO outcome lines in its own file, and `logs alpha -f` sees
them as they come. beta's "opencode" fails to start until a flag file exists: degraded, with
`status` exiting 1, then ready again once a start succeeds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import trio

from oco.testing import oco_command, open_oco, opencode_env, processes_in, serve_fake_convex, serve_fake_llm
from real_opencode import OPENCODE, REAL_OPENCODE

pytestmark = REAL_OPENCODE

OUTCOME = re.compile(r"^\S+ INFO chat \S.*: answered in \d+\.\d s with \d+ chunks? and \d+ tool calls?$")


async def _status(env: dict[str, str]) -> tuple[int, dict]:
    done = await trio.run_process(oco_command("status", "--json"), env=env, capture_stdout=True, check=False)
    return done.returncode, json.loads(done.stdout)


async def _logs(env: dict[str, str], *args: str) -> str:
    done = await trio.run_process(oco_command("logs", *args), env=env, capture_stdout=True, check=False)
    assert done.returncode == 0
    return done.stdout.decode()


async def test_each_turn_tells_its_story_and_a_degraded_worker_recovers(tmp_path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    flag = tmp_path / "opencode-works"
    flaky = tmp_path / "flaky-opencode"
    flaky.write_text(
        f'#!/bin/sh\n[ -e "{flag}" ] || {{ echo "no opencode yet" >&2; exit 1; }}\nexec "{OPENCODE}" "$@"\n'
    )
    flaky.chmod(0o755)
    async with serve_fake_convex() as convex, serve_fake_llm() as llm:
        fake = convex.fake
        alpha, beta = fake.create_worker(name="alpha"), fake.create_worker(name="beta")
        entries = [
            {
                "name": "alpha",
                "token": alpha.token,
                "working_directory": str(project),
                "convex_url": convex.url,
            },
            {
                "name": "beta",
                "token": beta.token,
                "working_directory": str(project),
                "convex_url": convex.url,
            },
        ]
        # opencode_bin is process-wide: the flaky script serves both; alpha is asked after the flag.
        path = tmp_path / "workers.json"
        # Each its own OpenCode, so beta can be degraded while alpha answers.
        path.write_text(json.dumps({"workers": entries, "settings": {"opencode_server": "per-worker"}}))
        env = {
            **opencode_env(tmp_path / "home", llm.base_url, base=os.environ),
            "OCO_OPENCODE_BIN": str(flaky),
        }
        async with open_oco("run", "--config", str(path), env=env, leftovers_in=[project]) as running:
            await fake.wait_for(
                lambda: all((fake.worker(c.worker_id).connected_at or 0) > 0 for c in (alpha, beta)), 60
            )
            chat = fake.start_session(beta.worker_id)
            failed = await fake.wait_reply(fake.send_message(chat, "ECHO hi"), timeout=60)
            assert failed.content.startswith("Error: OpenCode failed to start"), failed.content
            code, status = await _status(env)
            rows = {w["name"]: w for w in status["orchestrators"][0]["workers"]}
            assert code == 1 and rows["beta"]["state"] == "degraded", status
            assert "no opencode yet" in rows["beta"]["last_error"]
            assert rows["alpha"]["state"] == "ready"

            flag.write_text("")
            async with open_oco("logs", "alpha", "-f", "-n", "1", env=env) as follow:
                await follow.first_line()
                alpha_chats = [fake.start_session(alpha.worker_id) for _ in range(3)]
                prompts = ["ECHO one", "USE_TOOL", "ECHO three"]
                for alpha_chat, prompt in zip(alpha_chats, prompts, strict=True):
                    reply = await fake.wait_reply(fake.send_message(alpha_chat, prompt), timeout=120)
                    assert not reply.content.startswith("Error"), reply.content
                with trio.fail_after(30):
                    await follow.output.wait_value(lambda data: data.count(b": answered in ") == 3)
                follow.process.send_signal(signal.SIGINT)
                assert await follow.wait(timeout=10) == 0
            transcript = follow.text
            print("---- trio-oco logs alpha -f ----\n" + transcript)
            assert "INFO message picked up in chat" in transcript
            assert "INFO starting OpenCode (first start in a fresh home can take ~30 s)" in transcript
            assert re.search(r"INFO OpenCode ready in \d+\.\d s \(pid \d+\)", transcript)
            assert re.search(r"answered in \d+\.\d s with \d+ chunks? and 1 tool call$", transcript, re.M)
            assert "beta" not in transcript

            second = await fake.wait_reply(fake.send_message(chat, "ECHO back"), timeout=120)
            assert second.content == "back"  # beta's OpenCode started this time
            # The start cleared the failure before the turn ran, so status.json says so by now.
            code, status = await _status(env)
            workers = status["orchestrators"][0]["workers"]  # status --json lists every orchestrator
            assert code == 0 and {w["state"] for w in workers} == {"ready"}, status

            alpha_log = await _logs(env, "alpha", "-n", "200")
            outcomes = [line for line in alpha_log.splitlines() if OUTCOME.match(line)]
            assert len(outcomes) == 3, alpha_log  # was none: answered chats left no INFO line
            assert "beta" not in alpha_log and "answered with an error" not in alpha_log
            merged = await _logs(env, "-n", "400")
            assert re.search(r"^beta +\| \S+ WARNING chat \S+: answered with an error", merged, re.M), merged
            assert re.search(r"^alpha +\| \S+ INFO chat \S+: answered in", merged, re.M)

            running.process.send_signal(signal.SIGTERM)
            assert await running.wait(timeout=30) == 0
    assert processes_in(project) == []
