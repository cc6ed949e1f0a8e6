"""The watcher seam: what the worker must notice in Convex, delivered as whole snapshots.

A `Snapshot` (see `_snapshot`) is the worker record, its active sessions and its message
history as last seen. Two transports sit behind the seam: polling (here) and sync-protocol
subscriptions. Either one calls `publish(snapshot)` whenever something may have changed; the
worker keeps only the newest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from oco._retry import POLLING, OutageReport, retrying
from oco.config import Settings
from oco.convex import ConvexProtocolError
from oco.domain import ActiveSession, Backend, ChatMessage

from ._live_settings import LiveSettings, live
from ._snapshot import Snapshot

log = logging.getLogger(__name__)

# A chat counts as live for this long after its last activity: ticks stay fast meanwhile.
LIVE_WINDOW_S = 60.0


class Watcher(Protocol):
    async def run(self, publish: Callable[[Snapshot], None]) -> None:
        """Publish snapshots until cancelled; transient backend failures are retried inside."""


def _poll_failure(exc: Exception) -> str:
    if isinstance(exc, ConvexProtocolError):
        # A result that breaks the contract (a newer or broken backend): this tick is skipped
        # and the last good snapshot stays; a crash would only loop.
        return f"ignoring a malformed poll result ({exc})"
    return f"Convex unreachable while watching ({exc})"


def _activity_key(sessions: tuple[ActiveSession, ...]) -> frozenset[tuple[str, float]]:
    return frozenset((s.session_id, s.last_activity) for s in sessions)


class PollingWatcher:
    """Polls the cheap queries every tick and the heavy history only when they show a change.

    Each tick is one batched request (`workers:getByMachineAndWorker` +
    `chat:subscribeToWorkerSessions`). `chat:subscribeToWorkerMessages` returns the whole
    history, so it runs once at start and then only when the active set or a `lastActivity`
    moved. Ticks are fast while a reply is in flight or a chat was active in the last minute,
    and back off to the idle interval otherwise. A failed or malformed poll is retried by the
    `POLLING` policy, from twice the idle interval. The intervals are read at each tick, so a
    reload's new values apply from the next one.
    """

    def __init__(
        self,
        backend: Backend,
        settings: Settings | LiveSettings,
        *,
        busy: Callable[[], bool],
        now_ms: Callable[[], float],
    ) -> None:
        self._backend = backend
        self._live = live(settings)
        self._busy = busy
        self._now_ms = now_ms
        self._outage = OutageReport()  # an outage is said once, then every few minutes

    async def run(self, publish: Callable[[Snapshot], None]) -> None:
        seen: frozenset[tuple[str, float]] | None = None
        messages: tuple[ChatMessage, ...] = ()
        while True:
            policy = attrs.evolve(POLLING, wait_initial=2 * self._settings.poll_idle_interval_s)
            async for attempt in retrying(policy, log=log, report=self._outage, describe=_poll_failure):
                with attempt:
                    worker, sessions_list = await self._backend.poll_watch()
                    sessions = tuple(sessions_list)
                    key = _activity_key(sessions)
                    if key != seen:
                        messages = tuple(await self._backend.worker_messages())
                        seen = key
            self._outage.recovered(trio.current_time())
            publish(Snapshot(worker, sessions, messages))
            await trio.sleep(self._interval(sessions))

    @property
    def _settings(self) -> Settings:
        return self._live.value

    def _interval(self, sessions: tuple[ActiveSession, ...]) -> float:
        if self._busy():
            return self._settings.poll_active_interval_s
        now = self._now_ms()
        if any(now - s.last_activity < LIVE_WINDOW_S * 1000 for s in sessions):
            return self._settings.poll_active_interval_s
        return self._settings.poll_idle_interval_s
