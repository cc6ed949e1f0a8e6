"""A toy database served by the fake sync endpoint, in process through httpx-ws's ASGI
transport (for MockClock tests of `ConvexSubscriptions`), or over real loopback through hypercorn."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio_util
from httpx_ws.transport import ASGIWebSocketTransport

from oco.convex._sync_client import ConvexSubscriptions
from oco.testing import SyncFaults, serve_asgi, sync_app, sync_endpoint


class ToyDatabase:
    """A dict of tables plus a version bumped after each write, like the fake's."""

    def __init__(self) -> None:
        self.tables: dict[str, Any] = {"count": 0.0}
        self.version = trio_util.AsyncValue(0)
        self.runs: list[str] = []

    def write(self, **changes: Any) -> None:
        self.tables.update(changes)
        self.version.value += 1

    def run_query(self, path: str, args: dict[str, Any]) -> Any:
        self.runs.append(path)
        if path == "toy:fails" and self.tables.get("broken"):
            raise RuntimeError("table is broken")
        return {"count": self.tables["count"], "args": args}


@asynccontextmanager
async def in_process(db: ToyDatabase, faults: SyncFaults | None = None, **kw: Any):
    endpoint = sync_endpoint(db.run_query, db.version, faults=faults)
    transport = ASGIWebSocketTransport(sync_app(endpoint))
    async with httpx.AsyncClient(transport=transport, base_url="http://toy") as client:
        kw.setdefault("jitter", lambda: 0.5)  # exact backoff: the base delay
        async with ConvexSubscriptions("http://toy", client=client, **kw) as subs:
            yield endpoint, subs


@asynccontextmanager
async def on_loopback(db: ToyDatabase, faults: SyncFaults | None = None):
    endpoint = sync_endpoint(db.run_query, db.version, faults=faults)
    async with serve_asgi(sync_app(endpoint)) as url:
        yield endpoint, url
