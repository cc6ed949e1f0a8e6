"""A worker deleted in the web app closes the messages nobody will answer (found by the soak)."""

from __future__ import annotations

import pytest
import trio

from oco._retry import REPLY_COMPLETION
from oco.convex import WorkerNotFound
from oco.worker import REMOVED_NOTE


async def test_a_removed_worker_closes_its_open_messages_and_leaves_answered_ones(
    fake, new_worker, autojump_clock
):
    created = fake.create_worker(online=True)
    chat = fake.start_session(created.worker_id)
    answered = fake.send_message(chat, "already answered")
    fake.call("chat:completeMessage", {"chatSessionId": chat, "messageId": answered, "content": "done"})
    waiting = [fake.send_message(chat, f"never picked up {n}") for n in range(2)]
    fake.remove(created.worker_id)

    worker = new_worker(created)
    with (
        trio.fail_after(30),
        pytest.RaisesGroup(WorkerNotFound, allow_unwrapped=True, flatten_subgroups=True),
    ):
        await worker.run()

    for reply_id in waiting:
        reply = fake.message(reply_id)
        assert reply.completed and reply.content == REMOVED_NOTE
    assert fake.message(answered).content == "done"
    assert fake.counts["chat:completeMessage"] == 2  # the two open ones, once each


@pytest.mark.real_backoff(REPLY_COMPLETION)
@pytest.mark.parametrize("prod", [False, True])
async def test_one_refused_close_does_not_leave_the_other_replies_open(
    fake, new_worker, autojump_clock, prod
):
    fake.prod = prod
    created = fake.create_worker(online=True)
    chat = fake.start_session(created.worker_id)
    waiting = [fake.send_message(chat, f"never picked up {n}") for n in range(3)]
    fake.remove(created.worker_id)
    fake.faults.add(function="chat:completeMessage", status=560, times=1)  # the first close fails once

    worker = new_worker(created)
    with (
        trio.fail_after(30),
        pytest.RaisesGroup(WorkerNotFound, allow_unwrapped=True, flatten_subgroups=True),
    ):
        await worker.run()

    # It gave up on every reply after the first refusal before.
    assert [fake.message(r).content for r in waiting] == [REMOVED_NOTE] * 3
