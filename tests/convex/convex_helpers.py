"""Helpers shared by the Convex tests (fixtures live in conftest.py)."""

from __future__ import annotations

import httpx
import trio

from oco.convex import ConvexClient
from oco.convex.api import WorkerBackend
from oco.testing import CreatedWorker, FakeConvex


def secret_of(worker: CreatedWorker) -> str:
    return worker.token.split(":secret_", 1)[1]


def backend_for(client: ConvexClient, worker: CreatedWorker, secret: str | None = None) -> WorkerBackend:
    return WorkerBackend(client, worker.machine_id, worker.worker_id, secret or secret_of(worker))


def trio_ms() -> float:
    return trio.current_time() * 1000


def in_process(fake: FakeConvex, **kwargs: object) -> ConvexClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))
    return ConvexClient("http://fake.convex", http=http, **kwargs)  # type: ignore[arg-type]
