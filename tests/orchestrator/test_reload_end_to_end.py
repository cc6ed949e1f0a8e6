"""`trio-oco run` as a subprocess, reloaded with SIGHUP: a rename, a new turn timeout and a new
permission policy apply to the running worker without restarting it (issue 15). Fake Convex and
fake LLM on loopback, a real opencode configured to ask before running bash."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import trio

from oco.testing import (
    oco_command,
    open_oco,
    opencode_config,
    opencode_env,
    serve_fake_convex,
    serve_fake_llm,
)
from real_opencode import OPENCODE, REAL_OPENCODE

pytestmark = REAL_OPENCODE

TOOL_PROMPT = "BASH echo ran-$((40 + 2))"  # its output, ran-42, only if the command ran


async def _status(env: dict[str, str]) -> dict:
    result = await trio.run_process(
        oco_command("status", "--json"), env=env, capture_stdout=True, check=False
    )
    return json.loads(result.stdout)


async def test_sighup_renames_the_running_worker_and_applies_the_turn_timeout_without_a_restart(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    async with serve_fake_convex() as convex, serve_fake_llm() as llm:
        fake = convex.fake
        created = fake.create_worker(name="w0")
        entry = {
            "name": "w0",
            "token": created.token,
            "working_directory": str(project),
            "convex_url": convex.url,
        }
        workers_file = tmp_path / "workers.json"
        workers_file.write_text(json.dumps({"workers": [entry], "settings": {"turn_timeout_s": 600}}))
        env = {**opencode_env(tmp_path / "home", llm.base_url, base=os.environ), "OCO_OPENCODE_BIN": OPENCODE}
        asking = opencode_config(llm.base_url)
        asking["permission"]["bash"] = "ask"  # OpenCode asks, and trio-oco answers by its policy
        env["OPENCODE_CONFIG_CONTENT"] = json.dumps(asking)
        args = ("run", "--config", str(workers_file), "--shutdown-timeout", "20")
        async with open_oco(*args, env=env, leftovers_in=[project]) as output:
            process = output.process
            await fake.wait_for(lambda: (fake.worker(created.worker_id).connected_at or 0) > 0, timeout=60)
            chat = fake.start_session(created.worker_id)
            rejected = await fake.wait_reply(fake.send_message(chat, TOOL_PROMPT), timeout=90)
            assert (
                "rejected by the permission policy" in rejected.content and "ran-42" not in rejected.content
            )

            renamed = {**entry, "name": "alpha"}
            workers_file.write_text(
                json.dumps(
                    {"workers": [renamed], "settings": {"turn_timeout_s": 3, "permission_policy": "allow"}}
                )
            )
            process.send_signal(signal.SIGHUP)
            await output.wait_for(
                f"[oco] reloaded {workers_file}: renamed w0 → alpha; applied live: turn_timeout_s, permission_policy",
                timeout=15,
            )

            allowed = await fake.wait_reply(fake.send_message(chat, TOOL_PROMPT), timeout=90)
            assert "tool said: ran-42" in allowed.content  # the next permission asked is allowed
            # The next turn runs under the new timeout (the old one was 600 s).
            reply = await fake.wait_reply(fake.send_message(chat, "SLOW 60"), timeout=90)
            assert "timed out after 3 s" in reply.content

            status = await _status(env)
            (row,) = status["orchestrators"][0]["workers"]  # status --json lists every orchestrator
            assert (row["name"], row["state"], row["restarts"]) == ("alpha", "ready", 0)
            assert "[alpha] " in output.text  # the running worker logs under its new name

            process.send_signal(signal.SIGTERM)
            with trio.fail_after(25):
                exit_code = await process.wait()
        text = output.text
        assert exit_code == 0, text[-3000:]
        assert text.count("starting -> registering") == 1, text[-3000:]  # never restarted
        assert "[alpha] ready -> stopping" in text
        assert created.secret not in text and "Traceback" not in text
