"""The completion does not wait for the last chunk, nor for OpenCode's session to go idle
(issue 16's completion tail), with a real opencode.

The relay used to complete a reply only after the turn was over (OpenCode idle, 40–120 ms
after the answer's message finished) and after the chunk writer had written the remaining
text, one `chat:writeChunk` round trip after another. Now it completes the reply as soon as
`run_turn` says the answer is final, while the last chunk is still being written; the chunks
still add up to the answer, and the next message in the chat is answered normally.
"""

from __future__ import annotations

import json
import os
import subprocess

import trio

from oco.convex import ConvexClient
from oco.testing import make_worker, opencode_env, running_worker, serve_fake_convex, serve_fake_llm
from real_opencode import OPENCODE, REAL_OPENCODE

COMPLETIONS = ("chat:completeStructuredMessage", "chat:completeMessage")
CHUNK_LATENCY_S = 3.0  # every chat:writeChunk takes this long: the round trips are easy to see

pytestmark = REAL_OPENCODE


async def test_the_completion_is_written_while_the_last_chunk_is_still_on_its_way(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    state_dir = tmp_path / "state"
    async with serve_fake_convex() as served, serve_fake_llm() as llm:
        fake = served.fake
        created = fake.create_worker()
        async with ConvexClient(served.url) as convex:
            worker = make_worker(
                created,
                convex,
                project,
                state_dir=state_dir,
                opencode_bin=OPENCODE,
                opencode_env=opencode_env(tmp_path / "home", llm.base_url, base=os.environ),
            )
            async with running_worker(worker):
                chat = fake.start_session(created.worker_id)
                warm = fake.send_message(chat, "ECHO warm")  # OpenCode starts; no latency yet
                await fake.wait_reply(warm, timeout=90)

                fake.faults.add(function="chat:writeChunk", latency=CHUNK_LATENCY_S)
                text = "one two three four five six"
                reply_id = fake.send_message(chat, f"ECHO {text}")
                reply = await fake.wait_reply(reply_id, timeout=60)
                assert reply.content == text
                # The chunk writer is still busy (each write takes 3 s): wait for its last one.
                await fake.wait_for(
                    lambda: "".join(c.chunk for c in fake.chunks(reply_id)) == text, timeout=60
                )
                with trio.fail_after(60):
                    await worker.relay.turns.wait_value(0)

                mine = [c for c in fake.calls if c.args.get("messageId") == reply_id]
                chunk_calls = [c.at for c in mine if c.function == "chat:writeChunk"]
                completions = [c.at for c in mine if c.function in COMPLETIONS]
                assert len(chunk_calls) >= 2, "the text must arrive as more than one chunk for this test"
                assert len(completions) == 1  # completed once
                # Before: every chunk was written (3 s each) before the completion was sent.
                assert completions[0] < max(chunk_calls)
                assert completions[0] - min(chunk_calls) < CHUNK_LATENCY_S * 1000

                # The finished reply left no reservation behind (a chunk written after the
                # completion must not bring it back into the worker's state file).
                saved = json.loads(next((state_dir / "workers").glob("*.json")).read_text())
                assert reply_id not in saved["replies"]

                # The next message of the chat finds OpenCode's session idle and is answered.
                fake.faults.clear()
                after = fake.send_message(chat, "ECHO and the next one")
                assert (await fake.wait_reply(after, timeout=60)).content == "and the next one"
