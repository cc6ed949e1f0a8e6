"""Fixtures: the fake Convex served on loopback (the in-process one is tests/conftest.py's `fake`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from oco.convex import ConvexClient
from oco.testing import FakeConvex, FakeConvexServer, serve_fake_convex


@pytest.fixture
async def server() -> AsyncIterator[FakeConvexServer]:
    async with serve_fake_convex() as served:
        yield served


@pytest.fixture
async def client(server: FakeConvexServer) -> AsyncIterator[ConvexClient]:
    async with ConvexClient(server.url) as convex:
        yield convex


@pytest.fixture
def mock_fake(fake: FakeConvex) -> FakeConvex:
    """The shared `fake` (timestamps in trio time, ms: call times measure the client's delays)."""
    return fake
