"""A toy database served by the fake sync endpoint, in process through httpx-ws's ASGI
transport (for MockClock tests of `ConvexSubscriptions`), or over real loopback through hypercorn."""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import trio
import trio_util
from httpx_ws.transport import ASGIWebSocketTransport
from hypercorn.config import Config
from hypercorn.trio import serve

from oco.convex._sync_client import ConvexSubscriptions
from oco.testing._sync_server import SyncFaults, sync_app, sync_endpoint


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
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, sync_app(endpoint), config,
                                            shutdown_trigger=trio.sleep_forever))
        yield endpoint, binds[0]
        nursery.cancel_scope.cancel()
