"""The Convex client's retry policy on a MockClock, with the fake in process: delays, bounds,
idempotency. Real backoff: these pin the delays (`tests/conftest.py`)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio
from convex_helpers import backend_for

from oco._retry import CONVEX_CALL
from oco.convex import (
    ConvexClient,
    ConvexServerError,
    ConvexUnavailable,
    is_idempotent,
)
from oco.convex.api import WorkerBackend
from oco.testing import FakeConvex, in_process_convex

EXACT = attrs.evolve(CONVEX_CALL, attempts=4, wait_initial=0.5, wait_max=8.0, wait_jitter=0.0)
real_backoff = pytest.mark.real_backoff()


def gaps(fake: FakeConvex, function: str) -> list[float]:
    """Seconds between consecutive calls of `function` (the fake's clock is trio time)."""
    times = [c.at for c in fake.calls if c.function == function]
    return [round((b - a) / 1000, 6) for a, b in itertools.pairwise(times)]


@asynccontextmanager
async def chat(fake: FakeConvex) -> AsyncIterator[tuple[WorkerBackend, str, str]]:
    """A backend (retrying with EXACT), a chat session and its reply placeholder."""
    worker = fake.create_worker(online=True)
    session = fake.start_session(worker.worker_id)
    message = fake.send_message(session, "hi")
    async with in_process_convex(fake, retry=EXACT, attempt_timeout=30.0) as client:
        yield backend_for(client, worker), session, message


@real_backoff
async def test_idempotent_mutation_backs_off_exponentially(
    autojump_clock: Any, mock_fake: FakeConvex
) -> None:
    async with chat(mock_fake) as (backend, _, _):
        mock_fake.faults.add(function="workers:heartbeat", status=503, times=3)
        await backend.heartbeat()
    assert mock_fake.counts["workers:heartbeat"] == 4
    assert gaps(mock_fake, "workers:heartbeat") == [0.5, 1.0, 2.0]


@real_backoff
async def test_retries_are_bounded(autojump_clock: Any, mock_fake: FakeConvex) -> None:
    mock_fake.faults.add(status=502)
    start = trio.current_time()
    async with in_process_convex(mock_fake, retry=EXACT) as client:
        with pytest.raises(ConvexServerError):
            await client.query("chat:subscribeToWorkerSessions", {"workerId": "w"})
    assert mock_fake.counts["chat:subscribeToWorkerSessions"] == EXACT.attempts
    assert trio.current_time() - start == pytest.approx(0.5 + 1 + 2)


@real_backoff
async def test_backoff_is_capped_and_jittered(autojump_clock: Any, mock_fake: FakeConvex) -> None:
    policy = attrs.evolve(CONVEX_CALL, attempts=6, wait_initial=1.0, wait_max=3.0, wait_jitter=0.5)
    mock_fake.faults.add(status=500)
    async with in_process_convex(mock_fake, retry=policy) as client:
        with pytest.raises(ConvexServerError):
            await client.query("chat:subscribeToWorkerSessions", {"workerId": "w"})
    observed = gaps(mock_fake, "chat:subscribeToWorkerSessions")
    floors = [1.0, 2.0, 3.0, 3.0, 3.0]
    assert len(observed) == 5
    for got, floor in zip(observed, floors, strict=False):
        assert floor <= got <= min(floor + 0.5, 3.0) + 1e-9


@real_backoff
async def test_non_idempotent_write_is_not_repeated_after_a_timeout(
    autojump_clock: Any, mock_fake: FakeConvex
) -> None:
    async with chat(mock_fake) as (backend, session, message):
        mock_fake.faults.add(function="chat:writeChunk", hang=True)
        with pytest.raises(ConvexUnavailable) as caught:
            await backend.write_chunk(session, message, "x", 0)
    assert caught.value.sent is True
    assert mock_fake.counts["chat:writeChunk"] == 1


@real_backoff
async def test_non_idempotent_write_is_not_repeated_after_a_lost_answer(
    autojump_clock: Any, mock_fake: FakeConvex
) -> None:
    async with chat(mock_fake) as (backend, session, message):
        mock_fake.faults.add(function="chat:writeChunk", status=503, after=True, times=1)
        with pytest.raises(ConvexServerError):
            await backend.write_chunk(session, message, "x", 0)
    assert [c.chunk for c in mock_fake.chunks(message)] == ["x"]  # applied once, not twice


@real_backoff
async def test_idempotent_completion_is_retried_after_a_timeout(
    autojump_clock: Any, mock_fake: FakeConvex
) -> None:
    async with chat(mock_fake) as (backend, session, message):
        mock_fake.faults.add(function="chat:completeMessage", hang=True, times=1)
        start = trio.current_time()
        await backend.complete_message(session, message, "done")
    assert mock_fake.counts["chat:completeMessage"] == 2
    assert trio.current_time() - start == pytest.approx(30.0 + 0.5)
    reply = mock_fake.message(message)
    assert reply is not None and reply.completed and reply.content == "done"


class RefuseFirst(httpx.AsyncBaseTransport):
    """A transport whose first `n` requests fail to connect (the request never leaves)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, n: int) -> None:
        self.inner, self.left = inner, n

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.left:
            self.left -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


@real_backoff
async def test_non_idempotent_write_is_retried_when_it_never_left(
    autojump_clock: Any, mock_fake: FakeConvex
) -> None:
    async with chat(mock_fake) as (backend, session, message):
        # chat:writeChunk takes no secret, so this backend needs none
        transport = RefuseFirst(httpx.ASGITransport(app=mock_fake.app), 2)
        async with ConvexClient(
            "http://fake", http=httpx.AsyncClient(transport=transport), retry=EXACT
        ) as client:
            await WorkerBackend(client, backend.machine_id, backend.worker_id, "unused").write_chunk(
                session, message, "x", 0
            )
    assert [c.chunk for c in mock_fake.chunks(message)] == ["x"]
    assert transport.left == 0


async def test_without_real_backoff_a_call_makes_one_attempt(
    autojump_clock: Any, mock_fake: FakeConvex
) -> None:
    mock_fake.faults.add(status=503)
    async with in_process_convex(mock_fake) as client:
        with pytest.raises(ConvexServerError):
            await client.query("chat:subscribeToWorkerSessions", {"workerId": "w"})
    assert mock_fake.http_requests == 1


def test_idempotency_table_marks_write_chunk_unsafe() -> None:
    assert not is_idempotent("chat:writeChunk")
    assert is_idempotent("chat:completeStructuredMessage")
    assert not is_idempotent("some:unknownMutation")
