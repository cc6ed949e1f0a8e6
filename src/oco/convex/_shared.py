"""One `ConvexClient` (and so one connection pool) per Convex URL inside the process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from oco.convex._client import ConvexClient

_CLOSE_GRACE_S = 5.0


@attrs.define
class _Entry:
    client: ConvexClient
    users: int = 0


_shared: dict[str, _Entry] = {}


@asynccontextmanager
async def shared_convex_client(url: str) -> AsyncIterator[ConvexClient]:
    """A `ConvexClient` for `url` shared by every user in the process; closed with the last one."""
    key = url.rstrip("/")
    entry = _shared.get(key)
    if entry is None:
        entry = _shared[key] = _Entry(ConvexClient(key))
    entry.users += 1
    try:
        yield entry.client
    finally:
        entry.users -= 1
        if entry.users == 0:
            del _shared[key]
            # Close the pool even when the last user leaves because it is being cancelled.
            with trio.move_on_after(_CLOSE_GRACE_S, shield=True):
                await entry.client.aclose()
