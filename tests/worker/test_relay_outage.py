"""Completing a reply outlasts any Convex outage; only a stop cuts it short (issue 13).

A Convex outage of 45 s or more at the end of a turn used to leave the reply open for good:
the completion's retries ran in a 10 s cleanup scope (or gave up after six tries) and the
reply was marked finished anyway. These run on a MockClock against the fake in process; the
turn's OpenCode half is in test_relay_rerun.py (a real opencode).
"""

from __future__ import annotations

import pytest
import trio
from worker_support import pending_reply

from oco._retry import REPLY_COMPLETION, TURN_PREPARATION
from oco.opencode import TurnResult
from oco.testing import FakeConvex, running_worker
from oco.worker import NO_MODEL_NOTE, StopControl
from oco.worker._completion import Outcome, ReplyCompleter, reply_from_turn
from oco.worker._relay import JobKind
from oco.worker._session_map import SessionMap

COMPLETIONS = ("chat:completeStructuredMessage", "chat:completeMessage")


async def outage(
    fake: FakeConvex, seconds: float, function: str | None = None, *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    """Convex answers 503 to every call (of `function`) for `seconds` from now, then is back."""
    fake.faults.add(function=function, status=503)
    task_status.started()
    await trio.sleep(seconds)
    fake.faults.clear()


def completion_times(fake: FakeConvex, reply_id: str) -> list[float]:
    return [c.at / 1000 for c in fake.calls if c.function in COMPLETIONS and c.args["messageId"] == reply_id]


@pytest.mark.real_backoff(REPLY_COMPLETION)
@pytest.mark.parametrize("seconds", [45, 75, 600])
async def test_the_whole_answer_lands_once_convex_is_back_after_an_outage(
    fake, new_worker, autojump_clock, seconds
):
    created = fake.create_worker(online=True)
    worker = new_worker(created)
    chat = fake.start_session(created.worker_id)
    reply_id = fake.send_message(chat, "hello")
    result = TurnResult("the whole answer", "some reasoning", [{"type": "tool", "tool": "bash"}])
    final = reply_from_turn(result, "the whole answer", opencode_session="ses_1")
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(outage, fake, seconds)
        outcome = await ReplyCompleter(worker.backend).complete(pending_reply(fake, chat, reply_id), final)
    assert outcome is Outcome.LANDED
    reply = fake.message(reply_id)
    # The structured answer itself, not an error note: retried with the full content.
    assert reply.completed and reply.content == "the whole answer"
    assert reply.reasoning == "some reasoning" and "bash" in reply.other_parts
    times = completion_times(fake, reply_id)
    assert times[-1] - started >= seconds  # it landed after the outage ...
    assert times[-1] - started <= seconds + 31  # ... within one backoff step (30 s + jitter)
    assert len(times) <= seconds / 10 + 10  # with backoff, not a storm


@pytest.mark.real_backoff(REPLY_COMPLETION)
async def test_a_reply_closed_by_the_relay_survives_a_75_s_outage_of_its_completion(
    fake, new_worker, autojump_clock
):
    created = fake.create_worker()
    async with running_worker(new_worker(created)), trio.open_nursery() as nursery:
        await nursery.start(outage, fake, 75, "chat:completeMessage")
        chat = fake.start_session(created.worker_id)
        sent_at = trio.current_time()
        reply_id = fake.send_message(chat, "no model chosen", model="")
        reply = await fake.wait_reply(reply_id, timeout=300)
    assert reply.content == NO_MODEL_NOTE
    assert completion_times(fake, reply_id)[-1] - sent_at >= 75


@pytest.mark.real_backoff(REPLY_COMPLETION)
async def test_a_stop_during_an_outage_ends_within_its_deadline_and_leaves_the_reply_to_the_restart(
    fake, new_worker, tmp_path, autojump_clock
):
    created = fake.create_worker(online=True)
    stop = StopControl()
    worker = new_worker(created, stop=stop)
    relay, sessions = worker.relay, worker.relay._sessions
    chat = fake.start_session(created.worker_id)
    reply_id = fake.send_message(chat, "hello", model="")
    sessions.begin_reply(reply_id)  # as an answer that streamed would have
    fake.faults.add(status=503)  # Convex is out and stays out
    async with trio.open_nursery() as nursery:
        await nursery.start(relay.run)
        relay.submit(JobKind.NO_MODEL, pending_reply(fake, chat, reply_id))
        await trio.sleep(120)  # two minutes into the outage, the completion still retries
        assert relay.claimed() == {reply_id} and completion_times(fake, reply_id)
        stop_at = trio.current_time()
        stop.request(5.0)
        nursery.cancel_scope.cancel()
    assert trio.current_time() - stop_at <= 5.0
    assert not fake.message(reply_id).completed
    assert relay.claimed() == frozenset()  # not finished: the next serve or run answers it
    saved = SessionMap(next((tmp_path / "state" / "workers").glob("*.json")))
    assert saved.begin_reply(reply_id).rerun  # and the next run knows the reply had begun


@pytest.mark.real_backoff(REPLY_COMPLETION)
async def test_without_a_stop_the_completion_is_not_cut_by_the_cleanup_grace(
    fake, new_worker, autojump_clock
):
    created = fake.create_worker(online=True)
    stop = StopControl()
    worker = new_worker(created, stop=stop)
    chat = fake.start_session(created.worker_id)
    reply_id = fake.send_message(chat, "hello", model="")
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.relay.run)
        await nursery.start(outage, fake, 45)
        worker.relay.submit(JobKind.NO_MODEL, pending_reply(fake, chat, reply_id))
        await fake.wait_reply(reply_id, timeout=120)
        nursery.cancel_scope.cancel()
    assert not stop.cut_short  # no cleanup scope was cut: there was no stop
    assert worker.relay.claimed() == {reply_id}  # finished: never answered again by this process


class _OpenCodeSessions:
    """The three session calls the relay makes of OpenCode before a turn (an OpenCode that
    always answers; what is under test is the waiting for Convex)."""

    def __init__(self) -> None:
        self.created: list[str] = []

    async def get_session(self, session_id: str):
        return {"id": session_id} if session_id in self.created else None

    async def create_session(self, title: str) -> str:
        self.created.append(f"ses_{len(self.created)}")
        return self.created[-1]

    async def rename_session(self, session_id: str, title: str) -> None:
        pass


class _Server:
    def __init__(self) -> None:
        self.client = _OpenCodeSessions()


@pytest.mark.real_backoff(TURN_PREPARATION)
async def test_a_turn_waits_out_a_10_minute_outage_before_it_starts(fake, new_worker, autojump_clock):
    # It gave up after 2 minutes and answered "the chat backend was unreachable; please resend".
    created = fake.create_worker(online=True)
    worker = new_worker(created)
    chat = fake.start_session(created.worker_id)
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(outage, fake, 600)
        opencode_id = await worker.relay._opencode_session_patiently(_Server(), chat)
    assert opencode_id == "ses_0"
    assert trio.current_time() - started >= 600
    assert fake.store.first("chatSessions", sessionId=chat)["opencodeSessionId"] == "ses_0"
