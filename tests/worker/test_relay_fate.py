"""Why a completion or chunk write failed is decided from state, not error text (issues 12, 13).

A production deployment redacts every plain `Error` to "[Request ID: …] Server Error", so a
message or session deleted mid-turn gives an untyped function error there. The relay asks the
backend's message list whether the reply still exists; only a reply provably gone ends the
retries, and a refusal of one that exists is retried (with smaller forms after a few).
Both deployment kinds, on a MockClock against the fake in process.
"""

from __future__ import annotations

import pytest
import trio
from worker_support import pending_reply

from oco._retry import REPLY_COMPLETION
from oco.convex import ConvexFunctionError
from oco.opencode import TurnResult
from oco.testing import FakeConvex
from oco.worker import PendingReply
from oco.worker._chunks import Chunk
from oco.worker._completion import Outcome, ReplyCompleter, reply_from_turn
from oco.worker._relay import JobKind, ReplyGone, _Turn
from oco.worker._session_map import ReplyStart

MODES = pytest.mark.parametrize("prod", [False, True], ids=["dev", "prod"])


def _setup(prod: bool, fake: FakeConvex, new_worker):
    fake.prod = prod
    created = fake.create_worker(online=True)
    worker = new_worker(created)
    chat = fake.start_session(created.worker_id)
    reply = pending_reply(fake, chat, fake.send_message(chat, "hello"))
    return fake, worker, reply


FINAL = reply_from_turn(TurnResult("the answer", "why", []), "the answer", opencode_session="ses_1")


def _delete_message(fake: FakeConvex, reply_id: str) -> None:
    fake.store.delete(fake.store.first("chatMessages", messageId=reply_id))


def _delete_session(fake: FakeConvex, chat: str) -> None:
    for message in fake.store.find("chatMessages", sessionId=chat):
        fake.store.delete(message)
    fake.store.delete(fake.store.first("chatSessions", sessionId=chat))


def state_checks(fake: FakeConvex) -> int:
    return fake.counts["chat:subscribeToWorkerMessages"]


@MODES
@pytest.mark.parametrize("deleted", ["message", "session"])
async def test_a_completion_for_a_reply_deleted_mid_turn_ends_once_state_shows_it_gone(
    fake, new_worker, autojump_clock, prod, deleted
):
    fake, worker, reply = _setup(prod, fake, new_worker)
    if deleted == "message":
        _delete_message(fake, reply.reply_message_id)
    else:
        _delete_session(fake, reply.session_id)
    with trio.fail_after(5):
        assert await ReplyCompleter(worker.backend).complete(reply, FINAL) is Outcome.GONE
    assert fake.counts["chat:completeStructuredMessage"] == 1  # no retry for a reply nobody reads
    # On prod the error says only "Server Error": the backend's state decided. On dev the
    # typed text ("Message not found") is the fast path.
    assert state_checks(fake) == (1 if prod else 0)


@pytest.mark.real_backoff(REPLY_COMPLETION)
@MODES
async def test_a_refusal_of_a_reply_that_still_exists_is_retried_not_final(
    fake, new_worker, autojump_clock, prod
):
    fake, worker, reply = _setup(prod, fake, new_worker)
    fake.faults.add(function="chat:completeStructuredMessage", status=560, times=2)
    assert await ReplyCompleter(worker.backend).complete(reply, FINAL) is Outcome.LANDED
    stored = fake.message(reply.reply_message_id)
    assert (stored.content, stored.reasoning) == ("the answer", "why")  # the whole answer
    assert fake.counts["chat:completeStructuredMessage"] == 3
    assert state_checks(fake) == 2  # each refusal asked whether the reply still exists


@pytest.mark.real_backoff(REPLY_COMPLETION)
async def test_a_reply_convex_keeps_refusing_gets_a_smaller_completion(fake, new_worker, autojump_clock):
    fake, worker, reply = _setup(True, fake, new_worker)
    fake.faults.add(function="chat:completeStructuredMessage", status=560)  # for ever
    fake.faults.add(function="chat:completeMessage", status=560, times=3)
    assert await ReplyCompleter(worker.backend).complete(reply, FINAL) is Outcome.LANDED
    stored = fake.message(reply.reply_message_id)
    # three refusals of the structured answer, three of its plain content, then the note
    assert stored.content.startswith("Error: the chat backend refused to store this answer")
    assert "ses_1" in stored.content
    assert fake.counts["chat:completeStructuredMessage"] == 3
    assert fake.counts["chat:completeMessage"] == 4


async def test_a_completion_that_landed_although_its_answer_was_lost_is_not_repeated(
    fake, new_worker, autojump_clock
):
    fake, worker, reply = _setup(True, fake, new_worker)
    # The mutation commits, then the answer is lost as a function error.
    fake.faults.add(function="chat:completeStructuredMessage", status=560, after=True, times=1)
    assert await ReplyCompleter(worker.backend).complete(reply, FINAL) is Outcome.LANDED
    assert fake.counts["chat:completeStructuredMessage"] == 1
    assert fake.message(reply.reply_message_id).content == "the answer"


def _turn(reply: PendingReply) -> _Turn:
    return _Turn(reply, ReplyStart(rerun=False, first_sequence=0))


@MODES
async def test_a_chunk_refused_because_the_reply_was_deleted_stops_the_turn(
    fake, new_worker, autojump_clock, prod
):
    fake, worker, reply = _setup(prod, fake, new_worker)
    turn = _turn(reply)
    await worker.relay._write_chunk(turn, Chunk("Hel", 0))
    _delete_message(fake, reply.reply_message_id)
    with pytest.raises(ReplyGone):
        await worker.relay._write_chunk(turn, Chunk("lo", 1))
    assert state_checks(fake) == (1 if prod else 0)


async def test_a_refused_chunk_of_a_reply_that_exists_costs_only_that_chunk(fake, new_worker, autojump_clock):
    fake, worker, reply = _setup(True, fake, new_worker)
    turn = _turn(reply)
    fake.faults.add(function="chat:writeChunk", status=560, times=3)
    for sequence in range(4):
        await worker.relay._write_chunk(turn, Chunk(f"piece {sequence} ", sequence))
    assert [c.chunk for c in fake.chunks(reply.reply_message_id)] == ["piece 3 "]
    assert state_checks(fake) == 1  # one check, not one per refused chunk


async def test_on_prod_a_deleted_message_gives_only_an_untyped_server_error(fake, new_worker, autojump_clock):
    # What the relay is up against: no text to match on.
    fake, worker, reply = _setup(True, fake, new_worker)
    _delete_message(fake, reply.reply_message_id)
    with pytest.raises(ConvexFunctionError) as raised:
        await worker.backend.complete_message(reply.session_id, reply.reply_message_id, "x")
    assert type(raised.value) is ConvexFunctionError and "Server Error" in raised.value.message


@MODES
async def test_the_relay_stops_closing_a_reply_deleted_before_it_was_closed(
    fake, new_worker, autojump_clock, prod
):
    fake, worker, reply = _setup(prod, fake, new_worker)
    _delete_message(fake, reply.reply_message_id)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.relay.run)
        worker.relay.submit(JobKind.NO_MODEL, reply)
        await trio.sleep(300)
        nursery.cancel_scope.cancel()
    assert fake.counts["chat:completeMessage"] == 1  # one try; the state said it is gone
    assert worker.relay.claimed() == {reply.reply_message_id}  # closed for this process


class _TornDownHost:
    """An OpenCode host whose client a stop already closed under the turn (httpx's error)."""

    def lease(self):
        raise RuntimeError("Cannot send a request, as the client has been closed.")


@pytest.mark.parametrize("stopping", [True, False], ids=["during-a-stop", "no-stop"])
async def test_a_turn_broken_by_the_stops_teardown_is_interrupted_not_an_internal_error(
    fake, new_worker, autojump_clock, stopping
):
    # Seen once in a fresh-clone CI run: SIGINT during a SLOW answer completed the reply with
    # "Error: internal error in the worker (RuntimeError)" instead of the interruption note.
    from oco.worker import INTERRUPTED_NOTE

    fake, worker, reply = _setup(False, fake, new_worker)
    worker.relay._host = _TornDownHost()
    if stopping:
        worker.relay._stop.request(10.0)
    final = await worker.relay._turn_reply(_turn(reply))
    if stopping:
        assert final.content == INTERRUPTED_NOTE
    else:  # outside a stop the same failure is a bug, and says so
        assert final.content == "Error: internal error in the worker (RuntimeError)"
