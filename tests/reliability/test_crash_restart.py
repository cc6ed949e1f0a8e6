"""Crash and restart, end to end: `trio-oco dev` and its opencode are SIGKILLed mid-answer.

The backend is the truth: a reply placeholder that is still incomplete is work. So the restarted
worker must answer each pending message exactly once, close the one that waited past
`stale_message_age_s` with the stale note, and leave nothing stuck.
"""

from __future__ import annotations

import signal
import time

import pytest
import trio

from oco.testing import (
    CONVEX_MODES,
    DevProject,
    FakeConvex,
    kill_leftovers,
    processes_in,
    serve_fake_convex,
    serve_fake_llm,
    wait_gone,
)
from oco.worker import STALE_NOTE
from real_opencode import OPENCODE, REAL_OPENCODE

pytestmark = REAL_OPENCODE

COMPLETIONS = ("chat:completeStructuredMessage", "chat:completeMessage")
HOUR_MS = 3600 * 1000.0


def completions_of(fake: FakeConvex, message_id: str) -> int:
    calls = [c for c in fake.calls if c.function in COMPLETIONS]
    return sum(1 for c in calls if c.args.get("messageId") == message_id)


def age_message_pair(fake: FakeConvex, reply_id: str, by_ms: float) -> None:
    """Make a sendMessage pair look sent `by_ms` earlier (the worker was down all that time)."""
    reply = fake.store.first("chatMessages", messageId=reply_id)
    assert reply is not None
    session_rows = fake.store.find("chatMessages", sessionId=reply["sessionId"])
    user = [m for m in session_rows if m["role"] == "user"][-1]
    for doc in (user, reply):
        fake.store.patch(doc, timestamp=doc["timestamp"] - by_ms)


@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_sigkill_mid_answer_then_restart_answers_each_pending_message_once(tmp_path, mode):
    async with serve_fake_convex(prod=mode == "prod") as convex, serve_fake_llm() as llm:
        fake = convex.fake
        project = DevProject.make(tmp_path, convex, llm, OPENCODE)
        worker_id = project.created.worker_id

        async with project.open_dev("--log-level", "DEBUG") as first:
            await fake.wait_for(lambda: (fake.worker(worker_id).connected_at or 0) > 0, timeout=30)
            chats = [fake.start_session(worker_id) for _ in range(2)]
            in_flight = [fake.send_message(c, f"SLOW 10 {tag}") for c, tag in zip(chats, "ab", strict=False)]
            try:
                await fake.wait_for(lambda: all(fake.chunks(r) for r in in_flight), timeout=60)
            except trio.TooSlowError:
                pytest.fail(f"no chunks for both messages:\n{first.summary()}")
            # A crash of the machine: trio-oco and the opencode it started (own process group).
            first.process.send_signal(signal.SIGKILL)
            await wait_gone(kill_leftovers(project.directory))
            await first.wait(timeout=10)
        killed_at_ms = time.time() * 1000
        assert processes_in(project.directory) == []
        assert not any(fake.message(r).completed for r in in_flight)
        assert fake.worker(worker_id).status == "online"  # nobody said goodbye
        first_attempt = {r: len(fake.chunks(r)) for r in in_flight}

        # While the worker is down: one fresh message, and one that waited an hour.
        fresh = fake.send_message(fake.start_session(worker_id), "ECHO sent while down")
        stale = fake.send_message(fake.start_session(worker_id), "ECHO sent an hour ago")
        age_message_pair(fake, stale, HOUR_MS)

        async with project.open_dev("--log-level", "DEBUG") as second:
            replies = {}
            for reply_id in [*in_flight, fresh, stale]:
                replies[reply_id] = await fake.wait_reply(reply_id, timeout=90)
            # One more round trip: the worker has now seen the completed state several times.
            later = fake.send_message(fake.start_session(worker_id), "ECHO one more")
            assert (await fake.wait_reply(later, timeout=60)).content == "one more"
            second.process.send_signal(signal.SIGINT)
            code = await second.wait(timeout=20)

        for reply_id in in_flight:
            content = replies[reply_id].content
            assert content.startswith("tok0 ") and "tok39" in content, content
            # The retry streams again after the first attempt's chunks (which Convex keeps). It
            # knows from the state file that the reply was begun, so its sequence numbers come
            # after every earlier one: no number is used twice, and the order stays readable.
            chunks = fake.chunks(reply_id)
            before = [c.sequence for c in chunks if c.timestamp <= killed_at_ms]
            retry = [c.sequence for c in chunks if c.timestamp > killed_at_ms]
            assert before == list(range(len(before)))
            assert retry and min(retry) > max(before)
            assert retry == sorted(retry) and len(set(retry)) == len(retry)
            assert len(chunks) == first_attempt[reply_id] + len(retry)
        assert replies[fresh].content == "sent while down"
        assert replies[stale].content == STALE_NOTE
        for reply_id in replies:
            assert completions_of(fake, reply_id) == 1, reply_id
        chat_ids = [chat["sessionId"] for chat in fake.store.find("chatSessions")]
        every = [m for chat_id in chat_ids for m in fake.messages(chat_id)]
        assert len(every) == 10 and all(m.completed for m in every), "a message was left incomplete"
        assert code == 0, second.text[-3000:]
        for output in (first.text, second.text):
            assert project.created.secret not in output
            assert "Traceback" not in output
    assert processes_in(project.directory) == [], "a process was left behind in the project directory"
    # Our state and status files of both runs (OpenCode keeps its own beside them): private,
    # and never holding the secret.
    ours = tmp_path / "state" / "opencode-orchestrator"
    written = [ours, *ours.rglob("*")]
    assert any(p.is_file() for p in written), "no state file was written"
    for path in written:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
        if path.is_file():
            assert project.created.secret not in path.read_text(errors="replace"), path
