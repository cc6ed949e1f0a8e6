"""Serve a `FakeConvex` on loopback with hypercorn's trio worker, with outages on demand."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import hypercorn.trio
import trio
from hypercorn.config import Config

from oco.testing._fake_convex import FakeConvex

log = logging.getLogger("oco.testing.fake_convex")

# How long a stop waits for requests in flight (a hanging request is cut after this).
GRACEFUL_TIMEOUT_S = 0.5


class FakeConvexServer:
    """A served fake: `url`, `fake`, and `stop_listening`/`start_listening` for outages."""

    def __init__(self, fake: FakeConvex, host: str, nursery: trio.Nursery) -> None:
        self.fake = fake
        self.host = host
        self.port = 0
        self._nursery = nursery
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self._listening = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<FakeConvexServer {self.url} listening={self._listening}>"

    async def start_listening(self) -> None:
        """Serve again (on the same port after the first start); returns once listening."""
        if self._listening:
            return
        self._stop, self._stopped = trio.Event(), trio.Event()
        binds = await self._nursery.start(self._serve, self.port)
        self.port = urlsplit(binds[0]).port or self.port
        self._listening = True

    async def stop_listening(self) -> None:
        """Close the listening socket and open connections: new connections are refused."""
        if not self._listening:
            return
        self._stop.set()
        await self._stopped.wait()
        self._listening = False

    async def _serve(self, port: int, *, task_status: trio.TaskStatus[list[str]]) -> None:
        config = Config()
        config.bind = [f"{self.host}:{port}"]
        config.graceful_timeout = GRACEFUL_TIMEOUT_S
        config.accesslog = None
        config.errorlog = log
        stopped = self._stopped
        try:
            await hypercorn.trio.serve(
                self.fake.app,
                config,
                shutdown_trigger=self._stop.wait,
                task_status=task_status,
            )
        finally:
            stopped.set()


@asynccontextmanager
async def serve_fake_convex(
    fake: FakeConvex | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    prod: bool | None = None,
) -> AsyncIterator[FakeConvexServer]:
    """Serve `fake` (a new one when None) until the block ends; yields the server handle.

    `prod=True` serves it as a production deployment (errors redacted, no log lines), `False`
    as a dev one; None keeps the mode of the given fake (dev for a new one)."""
    if fake is None:
        fake = FakeConvex(prod=bool(prod))
    elif prod is not None:
        fake.prod = prod
    async with trio.open_nursery() as nursery:
        server = FakeConvexServer(fake, host, nursery)
        server.port = port
        await server.start_listening()
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()
