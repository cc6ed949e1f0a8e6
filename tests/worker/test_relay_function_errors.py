"""A function error (HTTP 560) while closing a reply is retried, not taken as final (found by the soak)."""

from __future__ import annotations

import pytest

from oco._retry import REPLY_COMPLETION
from oco.testing import running_worker


@pytest.mark.real_backoff(REPLY_COMPLETION)
async def test_a_560_on_complete_message_is_retried_until_the_reply_is_closed(fake, new_worker):
    # Real time: the failing OpenCode start goes through a thread, during which an autojumping
    # MockClock would race ahead to the deadline.
    created = fake.create_worker()
    worker = new_worker(created)  # its OpenCode cannot start: the reply gets an error
    fake.faults.add(function="chat:completeMessage", status=560, times=1)
    async with running_worker(worker):
        chat = fake.start_session(created.worker_id)
        reply_id = fake.send_message(chat, "hello")
        reply = await fake.wait_reply(reply_id, timeout=60)
    assert reply.content.startswith("Error: ")
    assert fake.counts["chat:completeMessage"] == 2  # the refused attempt, then the one that landed
