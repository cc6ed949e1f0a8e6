"""The worker's OpenCode host with a real opencode: lazy start, idle stop, crash recovery."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import trio

from oco._retry import TURN_PREPARATION
from oco.convex import ConvexClient
from oco.testing import make_worker, opencode_env, running_worker, serve_fake_convex, serve_fake_llm
from real_opencode import OPENCODE, REAL_OPENCODE

pytestmark = REAL_OPENCODE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.real_backoff(TURN_PREPARATION)
async def test_opencode_starts_on_demand_recovers_from_a_crash_stops_when_idle_and_warms_on_connect(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
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
                opencode_env=opencode_env(tmp_path / "home", llm.base_url, base=os.environ),
                opencode_idle_timeout_s=3.0,
                poll_idle_interval_s=0.5,
            )
            async with running_worker(worker):
                assert worker.host.pid is None  # lazy: nothing runs before the first turn

                chat = fake.start_session(created.worker_id)
                slow = fake.send_message(chat, "SLOW 20")
                await fake.wait_for(lambda: bool(fake.chunks(slow)), timeout=60)
                first_pid = worker.host.pid
                assert first_pid is not None
                report = worker.report.value  # what the supervisor and status.json see
                assert (report.turns_in_flight, report.active_sessions, report.opencode_pid) == (
                    1,
                    1,
                    first_pid,
                )
                os.killpg(first_pid, signal.SIGKILL)
                crashed = await fake.wait_reply(slow, timeout=30)
                assert "OpenCode stopped unexpectedly" in crashed.content
                assert crashed.content.startswith(fake.chunks(slow)[0].chunk.strip())  # streamed text kept

                after = fake.send_message(chat, "ECHO back again")
                reply = await fake.wait_reply(after, timeout=90)
                assert reply.content == "back again"
                second_pid = worker.host.pid
                assert second_pid not in (None, first_pid)

                with trio.fail_after(30):
                    while worker.host.pid is not None or _alive(second_pid):  # idle timeout
                        await trio.sleep(0.2)
                report = worker.report.value
                assert (report.turns_in_flight, report.active_sessions, report.opencode_pid) == (0, 0, None)

                # Opening the worker in the web app (requestConnect) warms OpenCode up ahead
                # of the chat that is likely to follow.
                fake.request_connect(created.worker_id)
                with trio.fail_after(60):
                    while worker.host.pid is None:
                        await trio.sleep(0.2)

                # Convex failing just before a turn delays the answer instead of failing it.
                fake.faults.add(function="chat:getSessionName", status=503, times=3)
                patient = fake.send_message(chat, "ECHO after the outage")
                assert (await fake.wait_reply(patient, timeout=90)).content == "after the outage"

    state_file = tmp_path / "state" / "workers" / f"{created.machine_id}.{created.worker_id}.json"
    assert state_file.stat().st_mode & 0o777 == 0o600
    assert chat in state_file.read_text()
