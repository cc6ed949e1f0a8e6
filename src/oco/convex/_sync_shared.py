"""One sync-protocol websocket per Convex deployment (and HTTP client) in the process.

Every worker on a URL enters `shared_subscriptions(url, client)` and gets the same
`ConvexSubscriptions`: one socket carries all their live queries. Structured concurrency
allows no task that outlives its user, so the socket task runs inside one user's scope at a
time: each user brings a standby task, the first one runs the socket, and when its user
leaves another user's standby takes the socket over (a reconnect that replays the whole
query set, as every reconnect does). The query set lives in the shared object, so it
survives a hand-over; the last user out closes it. No owner object is needed above workers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import attrs
import httpx
import trio

from oco.convex._client import ConvexClient
from oco.convex._sync_client import ConvexSubscriptions


@attrs.define(eq=False)
class _Entry:
    subs: ConvexSubscriptions
    users: int = 0
    running: bool = False
    handover: trio.Event = attrs.Factory(trio.Event)


_shared: dict[tuple[str, int], _Entry] = {}


def shared_count() -> int:
    """How many shared subscription sets are open in the process (tests check it drops to 0)."""
    return len(_shared)


@asynccontextmanager
async def shared_subscriptions(
    url: str, client: httpx.AsyncClient
) -> AsyncIterator[ConvexSubscriptions]:
    """The process's `ConvexSubscriptions` for `url` over `client`; one websocket for all users.

    `client` is used for the websocket upgrade (tests pass one with
    `httpx_ws.transport.ASGIWebSocketTransport`); it is not closed here.
    """
    key = (url.rstrip("/"), id(client))
    entry = _shared.get(key)
    if entry is None:
        entry = _shared[key] = _Entry(ConvexSubscriptions(url, client=client))
    entry.users += 1
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_standby, entry)
            try:
                yield entry.subs
            finally:
                nursery.cancel_scope.cancel()
    finally:
        entry.users -= 1
        if entry.users == 0:
            del _shared[key]
            entry.subs._close_all()


def shared_subscriptions_for(
    convex: ConvexClient,
) -> AbstractAsyncContextManager[ConvexSubscriptions]:
    """`shared_subscriptions` for a `ConvexClient`'s deployment, over its HTTP client."""
    return shared_subscriptions(convex.url, convex._http)


async def _standby(entry: _Entry) -> None:
    """Run the socket while no other user does; hand it over when this user leaves."""
    while True:
        if not entry.running:
            entry.running = True
            try:
                await entry.subs._maintain_socket()
            finally:
                # This user is leaving (cancelled): let another user's standby reopen it.
                entry.running = False
                entry.subs.connected.value = False
                entry.handover.set()
                entry.handover = trio.Event()
        await entry.handover.wait()
