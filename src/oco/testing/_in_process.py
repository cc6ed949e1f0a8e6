"""The fake Convex in process, for tests on `trio.testing.MockClock`: no socket, virtual time.

`in_process_convex(fake)` is a real `ConvexClient` whose HTTP calls and sync websocket reach
the fake's ASGI app through httpx-ws's ASGI transport; `in_process_connections(fake)` is the
orchestrator's `ConvexConnections` handing out such clients; `trio_ms` is trio's clock in
milliseconds, the clock to give both the fake (`FakeConvex(clock=trio_ms)`) and the worker
(`now_ms=trio_ms`) so that Convex timestamps and the worker's idea of now agree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio
from httpx_ws.transport import ASGIWebSocketTransport

from oco.convex import ConvexClient
from oco.orchestrator import ConvexConnections
from oco.testing._fake_convex import FakeConvex
from oco.testing._serve import ASGIApp

IN_PROCESS_URL = "http://fake.convex"


def trio_ms() -> float:
    """Trio's current time in milliseconds (virtual under a MockClock)."""
    return trio.current_time() * 1000


@asynccontextmanager
async def in_process_convex(
    app: FakeConvex | ASGIApp, url: str = IN_PROCESS_URL, **options: Any
) -> AsyncIterator[ConvexClient]:
    """A `ConvexClient` for `url` that reaches `app` (a `FakeConvex` or any ASGI app) in process.

    `options` go to `ConvexClient` (e.g. `attempt_timeout`). Its HTTP client is closed when the
    block ends. As a `convex_for` for the orchestrator: `partial(in_process_convex, fake)`.
    """
    async with _in_process_http(app) as http, ConvexClient(url, http=http, **options) as client:
        yield client


@asynccontextmanager
async def in_process_connections(
    app: FakeConvex | ASGIApp, **options: Any
) -> AsyncIterator[ConvexConnections]:
    """`ConvexConnections` (for `Orchestrator(connections=...)`) whose clients reach `app` in
    process, whatever their URL; `options` go to each `ConvexClient`."""
    async with _in_process_http(app) as http:
        yield ConvexConnections(lambda url: ConvexClient(url, http=http, **options))


def _in_process_http(app: FakeConvex | ASGIApp) -> httpx.AsyncClient:
    asgi = app.app if isinstance(app, FakeConvex) else app
    return httpx.AsyncClient(transport=ASGIWebSocketTransport(asgi))
