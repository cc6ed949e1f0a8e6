"""The relay with a real opencode: a completion outlasts an outage, a stop leaves the reply to
the next run, and that run shows a separator and numbers its chunks after the earlier ones.

Issue 13: a Convex outage longer than the 10 s cleanup grace at the end of a turn left the
reply open for good; a reply re-answered after a crash showed its beginning twice while it
streamed (the killed attempt's chunks 0–7, then the re-run's from ≈1.8e15).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import trio

from oco._retry import REPLY_COMPLETION
from oco.convex import ConvexClient
from oco.testing import (
    FakeConvex,
    make_worker,
    opencode_env,
    running_worker,
    serve_fake_convex,
    serve_fake_llm,
)
from oco.worker import StopControl, Worker
from oco.worker._relay import RERUN_SEPARATOR
from real_opencode import OPENCODE, REAL_OPENCODE

COMPLETIONS = ("chat:completeStructuredMessage", "chat:completeMessage")
OUTAGE_S = 12.0  # longer than the 10 s cleanup grace that used to cut the completion
STOP_GRACE_S = 3.0

pytestmark = REAL_OPENCODE


def _completion_calls(fake: FakeConvex, reply_id: str) -> list[float]:
    return [c.at for c in fake.calls if c.function in COMPLETIONS and c.args.get("messageId") == reply_id]


def _completions_out(fake: FakeConvex) -> None:
    for function in COMPLETIONS:
        fake.faults.add(function=function, status=503)


@pytest.mark.real_backoff(REPLY_COMPLETION)
async def test_completion_outlasts_an_outage_and_a_stopped_reply_is_re_answered_after_a_separator(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    state_dir = tmp_path / "state"
    async with serve_fake_convex() as served, serve_fake_llm() as llm:
        fake = served.fake
        created = fake.create_worker()

        def worker(convex: ConvexClient, stop: StopControl) -> Worker:
            return make_worker(
                created,
                convex,
                project,
                stop=stop,
                state_dir=state_dir,
                opencode_bin=OPENCODE,
                opencode_env=opencode_env(tmp_path / "home", llm.base_url, base=os.environ),
            )

        async with ConvexClient(served.url) as convex:
            stop = StopControl()
            async with running_worker(worker(convex, stop)):
                chat = fake.start_session(created.worker_id)

                # 1. Convex is out when the turn ends, for longer than the cleanup grace.
                _completions_out(fake)
                answered = fake.send_message(chat, "ECHO the whole answer")
                await fake.wait_for(lambda: bool(_completion_calls(fake, answered)), timeout=60)
                await trio.sleep(OUTAGE_S)  # the outage itself
                fake.faults.clear()
                reply = await fake.wait_reply(answered, timeout=60)
                assert reply.content == "the whole answer"  # the answer, not an error note

                # 2. Out again, and a stop comes while the completion waits for Convex.
                _completions_out(fake)
                stopped = fake.send_message(chat, "ECHO answered after the restart")
                await fake.wait_for(lambda: bool(_completion_calls(fake, stopped)), timeout=60)
                earlier = fake.chunks(stopped)
                assert earlier and [c.sequence for c in earlier] == list(range(len(earlier)))
                stop_at = trio.current_time()
                stop.request(STOP_GRACE_S)
            stop_ms = fake.store.now()
            assert trio.current_time() - stop_at < STOP_GRACE_S + 10  # OpenCode's own stop included
            assert not fake.message(stopped).completed
            assert all(at <= stop_ms for at in _completion_calls(fake, stopped))
            saved = json.loads(next((state_dir / "workers").glob("*.json")).read_text())
            assert stopped in saved["replies"]  # still begun: the next run answers it
            fake.faults.clear()

            # 3. The next run answers it: a separator first, then numbers after the earlier ones.
            async with running_worker(worker(convex, StopControl()), until=None) as second:
                reply = await fake.wait_reply(stopped, timeout=90)
                # Convex has it; let the worker see its answer before it is cancelled (a
                # cancellation mid-call repeats the idempotent completion, once).
                with trio.fail_after(30):
                    await second.relay.turns.wait_value(0)
    assert reply.content == "answered after the restart"
    rerun = [c for c in fake.chunks(stopped) if c.timestamp > stop_ms]
    assert rerun[0].chunk == RERUN_SEPARATOR
    sequences = [int(c.sequence) for c in rerun]
    assert min(sequences) > max(c.sequence for c in earlier)
    assert sequences == sorted(set(sequences)) and max(sequences) < 1000  # small, never reused
    assert "".join(c.chunk for c in rerun[1:]) == "answered after the restart"
    assert len([at for at in _completion_calls(fake, stopped) if at > stop_ms]) == 1  # answered once
