"""Helpers shared by the Convex tests (fixtures live in conftest.py)."""

from __future__ import annotations

from oco.convex import ConvexClient
from oco.convex.api import WorkerBackend
from oco.testing import CreatedWorker


def backend_for(client: ConvexClient, worker: CreatedWorker, secret: str | None = None) -> WorkerBackend:
    return WorkerBackend(client, worker.machine_id, worker.worker_id, secret or worker.secret)
