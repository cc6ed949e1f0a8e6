"""Builds a real Worker against the fake Convex in process, for MockClock tests."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from oco.config import Settings, WorkerConfig, parse_token
from oco.convex import ConvexClient
from oco.domain import ModelInfo
from oco.testing import CreatedWorker, FakeConvex
from oco.worker import ModelCatalog, StopControl, Worker

MODELS = [ModelInfo(id="fake/fake-model", name="Fake Model", provider="fake")]


def trio_ms() -> float:
    return trio.current_time() * 1000


def in_process_client(fake: FakeConvex) -> ConvexClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))
    return ConvexClient("http://fake.convex", http=http)


def worker_config(created: CreatedWorker, directory: Path, token: str | None = None) -> WorkerConfig:
    return WorkerConfig(
        token=parse_token(token or created.token),
        convex_url="http://127.0.0.1:1",
        working_directory=directory,
        name="w1",
    )


async def _static_models(directory: Path, env: object) -> list[ModelInfo]:
    return MODELS


def make_worker(
    fake: FakeConvex,
    created: CreatedWorker,
    tmp_path: Path,
    *,
    settings: Settings | None = None,
    stop: StopControl | None = None,
    token: str | None = None,
) -> Worker:
    return Worker(
        worker_config(created, tmp_path, token),
        # These tests pin polling (plain ASGITransport has no websockets);
        # subscriptions have their own tests in test_subscription_watch.py.
        settings or Settings(convex_transport="poll"),
        convex=in_process_client(fake),
        stop=stop or StopControl(),
        opencode_bin="/nonexistent/opencode",
        models=ModelCatalog(_static_models),
        state_dir=tmp_path / "state",
        now_ms=trio_ms,
    )
