"""A function error (HTTP 560) while closing a reply is retried, not taken as final (found by the soak)."""

from __future__ import annotations

import pytest
import trio
from worker_support import make_worker, trio_ms

from oco._retry import REPLY_COMPLETION
from oco.testing import FakeConvex
from oco.worker import State


@pytest.mark.real_backoff(REPLY_COMPLETION)
async def test_a_560_on_complete_message_is_retried_until_the_reply_is_closed(tmp_path):
    # Real time: the failing OpenCode start goes through a thread, during which an autojumping
    # MockClock would race ahead to the deadline.
    fake = FakeConvex(clock=trio_ms)
    created = fake.create_worker()
    worker = make_worker(fake, created, tmp_path)  # its OpenCode cannot start: the reply gets an error
    fake.faults.add(function="chat:completeMessage", status=560, times=1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        await worker.state.wait_value(State.READY)
        chat = fake.start_session(created.worker_id)
        reply_id = fake.send_message(chat, "hello")
        reply = await fake.wait_reply(reply_id, timeout=60)
        nursery.cancel_scope.cancel()
    assert reply.content.startswith("Error: ")
    assert fake.counts["chat:completeMessage"] == 2  # the refused attempt, then the one that landed

