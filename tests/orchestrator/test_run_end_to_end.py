"""`trio-oco run` as a subprocess: fake Convex and fake LLM on loopback, a real opencode.

Four entries (three valid workers, one malformed token that is reported and skipped); the test
plays the web app: it deletes one worker while the process runs (parked), chats with the other
two, reads `trio-oco status --json`, then stops the process with SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import trio

from oco.testing import oco_command, open_oco, opencode_env, processes_in, serve_fake_convex, serve_fake_llm
from real_opencode import OPENCODE, REAL_OPENCODE

MALFORMED_SECRET = "malformed-token-secret-value"

pytestmark = REAL_OPENCODE


async def _status(env: dict[str, str]) -> tuple[int, dict]:
    result = await trio.run_process(
        oco_command("status", "--json"), env=env, capture_stdout=True, check=False
    )
    return result.returncode, json.loads(result.stdout)


async def test_run_supervises_three_workers_parks_a_deleted_one_and_stops_on_sigterm(tmp_path):
    projects = [tmp_path / f"project{n}" for n in range(3)]
    for project in projects:
        project.mkdir()
        subprocess.run(["git", "init", "-q", str(project)], check=True)
    async with serve_fake_convex() as convex, serve_fake_llm() as llm:
        fake = convex.fake
        created = [fake.create_worker(name=f"w{n}") for n in range(3)]
        secrets = [c.secret for c in created] + [MALFORMED_SECRET]
        entries = [
            {"name": f"w{n}", "token": c.token, "working_directory": str(p), "convex_url": convex.url}
            for n, (c, p) in enumerate(zip(created, projects, strict=False))
        ]
        entries.append(
            {
                "name": "broken",
                "token": f"not-a-token-{MALFORMED_SECRET}",
                "working_directory": str(projects[0]),
                "convex_url": convex.url,
            }
        )
        workers_file = tmp_path / "workers.json"
        workers_file.write_text(json.dumps({"workers": entries}))
        env = {
            **opencode_env(tmp_path / "home", llm.base_url, base=os.environ),
            "OCO_OPENCODE_BIN": OPENCODE,
        }
        args = ("run", "--config", str(workers_file), "--shutdown-timeout", "20")
        async with open_oco(*args, env=env, leftovers_in=projects) as output:
            process = output.process
            await fake.wait_for(
                lambda: all((fake.worker(c.worker_id).connected_at or 0) > 0 for c in created), timeout=60
            )
            assert "workers[3]" in output.text  # the malformed entry was reported and skipped

            fake.remove(created[0].worker_id)
            await output.wait_for("[w0] parked:", timeout=30)

            replies = []
            for n in (1, 2):
                chat = fake.start_session(created[n].worker_id)
                replies.append(fake.send_message(chat, f"ECHO answer from w{n}"))
            for n, reply_id in zip((1, 2), replies, strict=False):
                reply = await fake.wait_reply(reply_id, timeout=90)
                assert reply.content == f"answer from w{n}"

            code, status = await _status(env)
            assert code == 1  # not every worker is ready: w0 is parked
            (orchestrator,) = status["orchestrators"]
            assert status["running"] is True and orchestrator["pid"] == process.pid
            assert orchestrator["mode"] == "run" and orchestrator["source"] == str(workers_file)
            states = {w["name"]: w["state"] for w in orchestrator["workers"]}
            assert states == {"w0": "parked", "w1": "ready", "w2": "ready"}

            # SIGHUP with a broken file: reported, nothing changes.
            workers_file.write_text("{workers: [")
            process.send_signal(signal.SIGHUP)
            await output.wait_for("reload failed", timeout=10)
            # SIGHUP without w2: only w2 stops; w0 (parked) is retried and parks again.
            workers_file.write_text(json.dumps({"workers": entries[:2]}))
            process.send_signal(signal.SIGHUP)
            await fake.wait_for(lambda: fake.worker(created[2].worker_id).status == "offline", timeout=15)
            await output.wait_for("retrying parked worker w0", timeout=10)
            chat = fake.start_session(created[1].worker_id)
            reply = await fake.wait_reply(fake.send_message(chat, "ECHO still here"), timeout=60)
            assert reply.content == "still here"
            assert output.text.count("[w1] starting -> registering") == 1  # w1 was left alone

            process.send_signal(signal.SIGTERM)
            with trio.fail_after(25):
                exit_code = await process.wait()

        text = output.text
        assert exit_code == 0, text[-3000:]
        assert [fake.worker(c.worker_id).status for c in created[1:]] == ["offline", "offline"]
        assert processes_in(*projects[2:]) == []  # w2's opencode went with it at the reload
        for secret in secrets:
            assert secret not in text
        assert "Traceback" not in text
        code, status = await _status(env)
        assert code == 3 and status["running"] is False
    assert processes_in(*projects) == [], "an opencode process was left behind"
