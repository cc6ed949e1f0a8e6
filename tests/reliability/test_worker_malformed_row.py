"""A worker fed a snapshot with a malformed row keeps running (MockClock, fake Convex in process).

The row is put straight into the fake's table, as a broken or newer backend might hold it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import trio

from oco._retry import POLLING
from oco.config import Settings, WorkerConfig, parse_token
from oco.convex import ConvexClient
from oco.domain import ModelInfo
from oco.testing import FakeConvex
from oco.worker import NO_MODEL_NOTE, ModelCatalog, State, StopControl, Worker


def trio_ms() -> float:
    return trio.current_time() * 1000


async def _models(directory: Path, env: object) -> list[ModelInfo]:
    return [ModelInfo(id="fake/fake-model", name="Fake Model", provider="fake")]


async def test_a_malformed_message_row_is_logged_once_and_the_worker_keeps_answering(
    tmp_path: Path, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeConvex(clock=trio_ms)
    created = fake.create_worker()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))
    worker = Worker(
        WorkerConfig(parse_token(created.token), "http://127.0.0.1:1", tmp_path, "w1"),
        Settings(convex_transport="poll"),  # plain ASGITransport has no websockets
        convex=ConvexClient("http://fake.convex", http=http),
        stop=StopControl(),
        opencode_bin="/nonexistent/opencode",
        models=ModelCatalog(_models),
        state_dir=tmp_path / "state",
        now_ms=trio_ms,
    )
    caplog.set_level(logging.WARNING, logger="oco.convex.api")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        with trio.fail_after(30):
            await worker.state.wait_value(State.READY)
        chat = fake.start_session(created.worker_id)
        # No `content`, `completed` a string: the contract's validator would never allow it.
        fake.store.insert(
            "chatMessages",
            {"messageId": "broken", "sessionId": chat, "role": "user", "timestamp": 1.0,
             "completed": "yes"},
        )
        first = fake.send_message(chat, "which model?", model="")
        assert (await fake.wait_reply(first, timeout=30)).content == NO_MODEL_NOTE
        await trio.sleep(120)  # two virtual minutes of polls over the same broken row
        second = fake.send_message(chat, "and now?", model="")
        assert (await fake.wait_reply(second, timeout=30)).content == NO_MODEL_NOTE
        assert worker.state.value is State.READY
        nursery.cancel_scope.cancel()
    broken = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(broken) == 1, broken
    assert "chat:subscribeToWorkerMessages" in broken[0] and "content" in broken[0]
    assert fake.counts["chat:subscribeToWorkerMessages"] >= 2  # it really was read again


@pytest.mark.real_backoff(POLLING)
async def test_a_malformed_poll_result_is_skipped_and_the_worker_keeps_answering(
    tmp_path: Path, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeConvex(clock=trio_ms)
    created = fake.create_worker()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))
    worker = Worker(
        WorkerConfig(parse_token(created.token), "http://127.0.0.1:1", tmp_path, "w1"),
        Settings(convex_transport="poll"),
        convex=ConvexClient("http://fake.convex", http=http),
        stop=StopControl(),
        opencode_bin="/nonexistent/opencode",
        models=ModelCatalog(_models),
        state_dir=tmp_path / "state",
        now_ms=trio_ms,
    )
    caplog.set_level(logging.DEBUG, logger="oco.worker")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        with trio.fail_after(30):
            await worker.state.wait_value(State.READY)
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
        nursery.cancel_scope.cancel()
    warnings = [r for r in caplog.records
                if "malformed poll result" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
