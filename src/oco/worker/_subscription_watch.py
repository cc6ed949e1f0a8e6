"""Watching Convex through sync-protocol subscriptions, with polling as the fallback.

The reference worker's three live queries (its record, its active sessions, its messages)
ride the process's shared websocket; a snapshot goes out whenever one of them changes, so an
idle worker makes no function call at all (heartbeats aside) and a new message arrives one
round trip after it is written. When the websocket cannot be had (refused upgrade, protocol
error, nothing within `connect_timeout`), the worker polls over HTTP meanwhile while the
socket keeps retrying with backoff, and goes back to subscriptions once it is up again.

A result the server sends may not fit the contract (a string where the message list should
be): it is skipped, logged once, and the last good snapshot stays; the next good result
replaces it. A socket that keeps failing makes the watcher switch between subscriptions
and polling at the socket's backoff pace; those switches are logged at WARNING at most
once per `SWITCH_LOG_WINDOW_S`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio
import trio_util

from oco._text import external
from oco.config import Settings
from oco.convex import ConvexSubscriptions, QueryError, Subscription
from oco.domain import Backend
from oco.errors import ProtocolViolation

from ._snapshot import Snapshot
from ._watch import Watcher

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # how long a worker waits for the websocket before it polls
SWITCH_LOG_WINDOW_S = 300.0  # at most one WARNING per this long for subscription<->polling
BAD_RESULT_LOG_S = 60.0  # at most one WARNING per this long for failed or unusable results

WORKER_QUERY = "workers:getByMachineAndWorker"
SESSIONS_QUERY = "chat:subscribeToWorkerSessions"
MESSAGES_QUERY = "chat:subscribeToWorkerMessages"

SubscriptionsProvider = Callable[[], AbstractAsyncContextManager[ConvexSubscriptions]]


class WatchMode(enum.Enum):
    """Which transport feeds the worker's snapshots right now."""

    CONNECTING = "connecting"  # waiting for the websocket (at most `connect_timeout`)
    SUBSCRIBED = "subscribed"  # live queries over the websocket
    POLLING = "polling"  # the websocket is down: the polling fallback runs


class SubscriptionWatcher:
    """The watcher seam over subscriptions; `fallback()` builds the polling watcher to use
    while the websocket is down. `mode` (a `WatchMode`) says which one feeds the worker
    right now."""

    def __init__(
        self,
        backend: Backend,
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
        self._bad_logged: str | None = None  # the last failed/unusable result logged loudly
        self._bad_logged_at = -BAD_RESULT_LOG_S
        self._switch_warned_at: float | None = None
        self._fallback_loud = False
        self.mode = trio_util.AsyncValue(WatchMode.CONNECTING)

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
                        self.mode.value = WatchMode.SUBSCRIBED
                        await self._follow(subs, queries, publish)
                        # Lost: give the reconnect a chance before falling back to polling.
                        self.mode.value = WatchMode.CONNECTING
                        continue
                    self._fallback_loud = self._switch_is_news()
                    log.log(
                        logging.WARNING if self._fallback_loud else logging.DEBUG,
                        "no Convex subscription within %.0f s; polling until the websocket works",
                        self._connect_timeout,
                    )
                    self.mode.value = WatchMode.POLLING
                    await self._poll_until_connected(subs, publish)
                    log.log(
                        logging.INFO if self._fallback_loud else logging.DEBUG,
                        "Convex subscription up again; polling stopped",
                    )
                    # Polling published newer snapshots than our last one: publish again.
                    self._published = None

    def _switch_is_news(self) -> bool:
        """True at most once per SWITCH_LOG_WINDOW_S: a flapping socket is not news each time."""
        now = trio.current_time()
        if self._switch_warned_at is None or now - self._switch_warned_at >= SWITCH_LOG_WINDOW_S:
            self._switch_warned_at = now
            return True
        return False

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
        if results == self._failed:
            return
        failed = [
            f"{q.udf_path}: {r.message}"
            for q, r in zip(queries, results, strict=False)
            if isinstance(r, QueryError)
        ]
        if failed:
            text = external("; ".join(failed))
            log.log(self._bad_result_level(text), "subscribed query failed: %s", text)
            self._failed = results
            return
        worker, sessions, messages = (r.value for r in results)  # type: ignore[union-attr]
        try:
            snapshot = Snapshot(
                self._backend.parse_worker(worker),
                # Item by item: a malformed row is logged once and left out, not fatal.
                tuple(self._backend.parse_sessions(sessions)),
                tuple(self._backend.parse_messages(messages)),
            )
        except ProtocolViolation as exc:
            # The whole value is unusable (a string for the message list): keep acting on
            # the last good snapshot until the next result, and say so once.
            text = external(exc)
            log.log(
                self._bad_result_level(text),
                "ignoring a subscription result that breaks the contract (%s); keeping the last good one",
                text,
            )
            self._failed = results
            return
        self._published = results
        self._failed = None
        publish(snapshot)

    def _bad_result_level(self, text: str) -> int:
        """WARNING for a new complaint, at most one per BAD_RESULT_LOG_S: a hostile server
        may send a different bad result in every frame."""
        now = trio.current_time()
        if text == self._bad_logged or now - self._bad_logged_at < BAD_RESULT_LOG_S:
            return logging.DEBUG
        self._bad_logged, self._bad_logged_at = text, now
        return logging.WARNING

    async def _poll_until_connected(
        self, subs: ConvexSubscriptions, publish: Callable[[Snapshot], None]
    ) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._fallback().run, publish)
            await subs.connected.wait_value(True)
            nursery.cancel_scope.cancel()
