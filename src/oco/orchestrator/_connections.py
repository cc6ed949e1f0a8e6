"""The process's connections to Convex: one client and one sync socket per deployment, lent out.

Workers on the same Convex URL share one `ConvexClient` (one connection pool) and one
sync-protocol websocket carrying all their live queries. `ConvexConnections` owns both: its
`run()` sits in the orchestrator's root nursery, each client and each socket runs in a task of
that nursery, and workers borrow them (`lend(url)`, then `link.subscriptions()` while a
watcher subscribes). A client opens with its URL's first worker slot and closes when the last
one leaves; a socket opens with the first subscribing watcher and closes with the last. At stop
the root nursery closes whatever is left, after every worker has cleaned up. The shared OpenCode
servers (`SharedOpenCode`, one per OpenCode environment) live beside them, in the same task, and
reach the workers through the same link.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import attrs
import trio

from oco.convex import ConvexClient, ConvexSubscriptions

from ._lending import Lender
from ._opencode_servers import SharedOpenCode

CLOSE_GRACE_S = 5.0  # closing a client's pool during a stop is bounded by this

SubscriptionsProvider = Callable[[], AbstractAsyncContextManager[ConvexSubscriptions]]


@attrs.frozen
class ConvexLink:
    """What a worker borrows for its deployment: the shared client, and the shared sync socket
    for as long as it subscribes (`async with link.subscriptions() as subs:`)."""

    client: ConvexClient
    subscriptions: SubscriptionsProvider
    opencode: SharedOpenCode | None = None  # the shared OpenCode servers, for `opencode_server: shared`


class ConvexConnections:
    """Lends one `ConvexClient` and one `ConvexSubscriptions` per Convex URL (trailing `/` aside).

    `open_client(url)` builds a client (tests build one over an in-process transport); the
    client's `http` carries the socket too. `clients` and `sockets` are the two registries.
    """

    def __init__(self, open_client: Callable[[str], ConvexClient] = ConvexClient) -> None:
        self._open_client = open_client
        self.clients: Lender[str, ConvexClient] = Lender("Convex client")
        self.sockets: Lender[str, ConvexSubscriptions] = Lender("sync socket")
        self.opencode = SharedOpenCode()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own every client and socket until cancelled (in the root nursery)."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.clients.run)
            await nursery.start(self.sockets.run)
            await nursery.start(self.opencode.run)
            task_status.started()

    @asynccontextmanager
    async def lend(self, url: str) -> AsyncIterator[ConvexLink]:
        """Borrow the connections to `url` for the `async with` block."""
        key = url.rstrip("/")
        async with self.clients.lend(key, lambda: self._client(key)) as client:
            yield ConvexLink(client, lambda: self._socket(key, client), self.opencode)

    def _socket(self, key: str, client: ConvexClient) -> AbstractAsyncContextManager[ConvexSubscriptions]:
        return self.sockets.lend(key, lambda: ConvexSubscriptions(key, client=client.http))

    @asynccontextmanager
    async def _client(self, url: str) -> AsyncIterator[ConvexClient]:
        client = self._open_client(url)
        try:
            yield client
        finally:
            # The pool closes even when the owner is being cancelled (the process stops).
            with trio.move_on_after(CLOSE_GRACE_S, shield=True):
                await client.aclose()
