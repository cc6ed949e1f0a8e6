"""Watching Convex through sync-protocol subscriptions, with polling as the fallback.

The reference worker's three live queries (its record, its active sessions, its messages)
ride the process's shared websocket; a snapshot goes out whenever one of them changes, so an
idle worker makes no function call at all (heartbeats aside) and a new message arrives one
round trip after it is written. When the websocket cannot be had (refused upgrade, protocol
error, nothing within `connect_timeout`), the worker polls over HTTP meanwhile while the
socket keeps retrying with backoff, and goes back to subscriptions once it is up again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio
import trio_util

from oco.config import Settings
from oco.convex import ConvexSubscriptions, QueryError, Subscription
from oco.convex.api import WorkerBackend

from ._watch import Snapshot, Watcher

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # how long a worker waits for the websocket before it polls

WORKER_QUERY = "workers:getByMachineAndWorker"
SESSIONS_QUERY = "chat:subscribeToWorkerSessions"
MESSAGES_QUERY = "chat:subscribeToWorkerMessages"

SubscriptionsProvider = Callable[[], AbstractAsyncContextManager[ConvexSubscriptions]]


class SubscriptionWatcher:
    """The watcher seam over subscriptions; `fallback()` builds the polling watcher to use
    while the websocket is down. `mode` says which one feeds the worker right now:
    "connecting", "subscribed" or "polling"."""

    def __init__(
        self,
        backend: WorkerBackend,
        settings: Settings,
        subscriptions: SubscriptionsProvider,
        *,
        fallback: Callable[[], Watcher],
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self._backend = backend
        self._settings = settings
        self._subscriptions = subscriptions
        self._fallback = fallback
        self._connect_timeout = connect_timeout
        self._published: tuple[Any, ...] | None = None
        self._failed: tuple[Any, ...] | None = None
        self.mode = trio_util.AsyncValue("connecting")

    async def run(self, publish: Callable[[Snapshot], None]) -> None:
        backend = self._backend
        own = {"workerId": backend.worker_id}
        async with self._subscriptions() as subs:
            with (
                subs.subscribe(WORKER_QUERY, {"machineId": backend.machine_id, **own}) as worker,
                subs.subscribe(SESSIONS_QUERY, own) as sessions,
                subs.subscribe(MESSAGES_QUERY, own) as messages,
            ):
                queries = (worker, sessions, messages)
                while True:
                    with trio.move_on_after(self._connect_timeout):
                        await subs.connected.wait_value(True)
                    if subs.connected.value:
                        self.mode.value = "subscribed"
                        await self._follow(subs, queries, publish)
                        # Lost: give the reconnect a chance before falling back to polling.
                        self.mode.value = "connecting"
                        continue
                    log.warning(
                        "no Convex subscription within %.0f s; polling until the websocket works",
                        self._connect_timeout,
                    )
                    self.mode.value = "polling"
                    await self._poll_until_connected(subs, publish)
                    log.info("Convex subscription up again; polling stopped")
                    # Polling published newer snapshots than our last one: publish again.
                    self._published = None

    async def _follow(
        self,
        subs: ConvexSubscriptions,
        queries: tuple[Subscription, ...],
        publish: Callable[[Snapshot], None],
    ) -> None:
        """Publish on every change of any query until the socket is lost."""
        async with trio.open_nursery() as nursery:
            for query in queries:
                nursery.start_soon(self._pump, query, queries, publish)
            self._emit(queries, publish)
            await subs.connected.wait_value(False)
            nursery.cancel_scope.cancel()

    async def _pump(
        self,
        query: Subscription,
        queries: tuple[Subscription, ...],
        publish: Callable[[Snapshot], None],
    ) -> None:
        while True:
            try:
                await query.next_result()
            except trio.EndOfChannel:
                return  # the shared set is closing; `connected` drops with it
            self._emit(queries, publish)

    def _emit(self, queries: tuple[Subscription, ...], publish: Callable[[Snapshot], None]) -> None:
        """Publish the three latest results once all exist and any of them is new."""
        results = tuple(query.latest for query in queries)
        if any(result is None for result in results) or results == self._published:
            return
        failed = [f"{q.udf_path}: {r.message}"
                  for q, r in zip(queries, results) if isinstance(r, QueryError)]
        if failed:
            if results != self._failed:
                log.warning("subscribed query failed: %s", "; ".join(failed))
            self._failed = results
            return
        self._published = results
        worker, sessions, messages = (r.value for r in results)  # type: ignore[union-attr]
        publish(
            Snapshot(
                self._backend.parse_worker(worker),
                # Item by item: a malformed row is logged once and left out, not fatal.
                tuple(self._backend.parse_sessions(sessions)),
                tuple(self._backend.parse_messages(messages)),
            )
        )

    async def _poll_until_connected(
        self, subs: ConvexSubscriptions, publish: Callable[[Snapshot], None]
    ) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._fallback().run, publish)
            await subs.connected.wait_value(True)
            nursery.cancel_scope.cancel()
