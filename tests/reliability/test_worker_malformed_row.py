"""A worker fed a snapshot with a malformed row keeps running (MockClock, fake Convex in process).

The row is put straight into the fake's table, as a broken or newer backend might hold it.
"""

from __future__ import annotations

import logging

import pytest
import trio

from oco._retry import POLLING
from oco.testing import FakeConvex, running_worker
from oco.worker import NO_MODEL_NOTE, State


async def test_a_malformed_message_row_is_logged_once_and_the_worker_keeps_answering(
    fake: FakeConvex, new_worker, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    created = fake.create_worker()
    caplog.set_level(logging.WARNING, logger="oco.convex.api")
    async with running_worker(new_worker(created)) as worker:
        chat = fake.start_session(created.worker_id)
        # No `content`, `completed` a string: the contract's validator would never allow it.
        fake.store.insert(
            "chatMessages",
            {"messageId": "broken", "sessionId": chat, "role": "user", "timestamp": 1.0, "completed": "yes"},
        )
        first = fake.send_message(chat, "which model?", model="")
        assert (await fake.wait_reply(first, timeout=30)).content == NO_MODEL_NOTE
        await trio.sleep(120)  # two virtual minutes of polls over the same broken row
        second = fake.send_message(chat, "and now?", model="")
        assert (await fake.wait_reply(second, timeout=30)).content == NO_MODEL_NOTE
        assert worker.state.value is State.READY
    broken = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(broken) == 1, broken
    assert "chat:subscribeToWorkerMessages" in broken[0] and "content" in broken[0]
    assert fake.counts["chat:subscribeToWorkerMessages"] >= 2  # it really was read again


@pytest.mark.real_backoff(POLLING)
async def test_a_malformed_poll_result_is_skipped_and_the_worker_keeps_answering(
    fake: FakeConvex, new_worker, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    created = fake.create_worker()
    caplog.set_level(logging.DEBUG, logger="oco.worker")
    async with running_worker(new_worker(created)) as worker:
        record = fake.store.first("workers", workerId=created.worker_id)
        good_status = record["approvalStatus"]
        fake.store.patch(record, approvalStatus=5)  # a worker record no contract allows
        polls = fake.counts["workers:getByMachineAndWorker"]
        await fake.wait_for(lambda: fake.counts["workers:getByMachineAndWorker"] >= polls + 5, 600)
        assert worker.state.value is State.READY  # it crashed into a restart loop before
        fake.store.patch(record, approvalStatus=good_status)
        chat = fake.start_session(created.worker_id)
        reply = fake.send_message(chat, "still there?", model="")
        assert (await fake.wait_reply(reply, timeout=120)).content == NO_MODEL_NOTE
    warnings = [
        r
        for r in caplog.records
        if "malformed poll result" in r.getMessage() and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
