"""Real workers subscribing to the fake Convex in process (httpx-ws's ASGI transport carries
the HTTP calls and the websocket), for MockClock tests of the subscription watcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from httpx_ws.transport import ASGIWebSocketTransport
from worker_support import MODELS, trio_ms, worker_config

from oco.config import Settings
from oco.convex import ConvexClient
from oco.testing import CreatedWorker, FakeConvex
from oco.worker import ModelCatalog, StopControl, Worker
from oco.worker._subscription_watch import SubscriptionsProvider

WATCH_QUERIES = (
    "workers:getByMachineAndWorker",
    "chat:subscribeToWorkerSessions",
    "chat:subscribeToWorkerMessages",
)


@pytest.fixture
def fake() -> FakeConvex:
    return FakeConvex(clock=trio_ms)


async def _models(directory: Path, env: object) -> list:
    return MODELS


@asynccontextmanager
async def convex_in_process(fake: FakeConvex) -> AsyncIterator[ConvexClient]:
    async with httpx.AsyncClient(transport=ASGIWebSocketTransport(fake.app)) as http:
        yield ConvexClient("http://fake.convex", http=http)


def subscribing_worker(
    convex: ConvexClient, created: CreatedWorker, directory: Path, name: str = "w1",
    subscriptions: SubscriptionsProvider | None = None,
) -> Worker:
    directory.mkdir(exist_ok=True)
    return Worker(
        worker_config(created, directory),
        Settings(convex_transport="subscribe"),
        convex=convex,
        stop=StopControl(),
        opencode_bin="/nonexistent/opencode",
        models=ModelCatalog(_models),
        state_dir=directory / "state",
        now_ms=trio_ms,
        subscriptions=subscriptions,
    )


def watch_calls(fake: FakeConvex) -> int:
    return sum(fake.counts[name] for name in WATCH_QUERIES)


async def ask_without_model(fake: FakeConvex, worker_id: str, timeout: float = 10) -> str:
    chat = fake.start_session(worker_id)
    reply_id = fake.send_message(chat, "which model?", model="")
    return (await fake.wait_reply(reply_id, timeout=timeout)).content
