"""One worker's trio shell: register, wait for approval, connect, then heartbeat, watch and relay.

Decisions come from the pure cores (`Lifecycle`, `plan_snapshot`); this module only moves bytes
and time. Transient backend failures are retried here by the `WORKER_REGISTRATION`, `HEARTBEAT`
and `MODEL_PUBLISH` policies (`oco._retry`), on the same client, and reported through the
backend's `OutageReport` (one WARNING naming the deployment, then one every few minutes); the
latest is the worker's `last_error`, which status shows. A rejection (`WorkerRejected`: wrong
secret, worker unknown or deleted), any other backend answer and bugs propagate to the
supervisor, which says it in one line (a traceback only for a bug).
"""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import trio
import trio_util

from oco._retry import (
    HEARTBEAT,
    MODEL_PUBLISH,
    WORKER_REGISTRATION,
    Attempts,
    RetryPolicy,
    duration,
    retrying,
)
from oco.config import Settings, WorkerConfig
from oco.convex import (
    ConvexClient,
    ConvexSubscriptions,
    WorkerDeleted,
    WorkerNotApproved,
)
from oco.convex.api import WorkerBackend
from oco.domain import ModelInfo, Registration
from oco.errors import NotFound, Rejected, describe
from oco.logs import bind_worker, relabel

from ._completion import Outcome, ReplyCompleter, reply_from_note
from ._lifecycle import Event, Lifecycle, State
from ._live_settings import LiveSettings, live, sleep_until_due
from ._models import ModelCatalog
from ._opencode_host import OpenCodeHost, OpenCodeShare, OpenCodeUnavailable
from ._planner import plan_replies
from ._relay import ChatRelay, JobKind
from ._report import WorkerReport
from ._session_map import SessionMap
from ._snapshot import Ending, Snapshot, SnapshotMemory, plan_snapshot
from ._stop import StopControl
from ._subscription_watch import SubscriptionsProvider, SubscriptionWatcher
from ._watch import PollingWatcher, Watcher

log = logging.getLogger(__name__)

OFFLINE_GRACE_S = 10.0
REMOVED_NOTE = (
    "This worker was removed in the web app before it could answer this message. Send it to another worker."
)


class WorkerRevoked(WorkerDeleted):
    """The worker's record disappeared from Convex while it ran (deleted in the web app)."""

    def __init__(self, *, url: str | None = None) -> None:
        super().__init__("", function="workers:getByMachineAndWorker", url=url)


class ApprovalWithdrawn(Exception):
    """Internal: the record is no longer approved; go back to waiting."""


def _rejection(exc: BaseException | None) -> Rejected | None:
    """The `Rejected` inside `exc` (which may be a nursery's exception group), if any."""
    if isinstance(exc, Rejected):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _rejection(inner)
            if found is not None:
                return found
    return None


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class Worker:
    """Runs one configured worker until cancelled (stop) or until it fails.

    `report` is what it publishes about itself (state, last error, sessions, turns, OpenCode's
    pid), kept current as those change. `subscriptions` lends the sync socket its watcher
    subscribes over (the orchestrator's, shared by the workers on one deployment); without
    it the watcher opens a socket of its own. `settings` may be the orchestrator's
    `LiveSettings`: then a reload's live settings apply at their next use (`_live_settings`).
    """

    def __init__(
        self,
        config: WorkerConfig,
        settings: Settings | LiveSettings,
        *,
        convex: ConvexClient,
        stop: StopControl,
        opencode_bin: str,
        models: ModelCatalog,
        state_dir: Path,
        opencode_env: Mapping[str, str] | None = None,
        now_ms: Callable[[], float] = lambda: time.time() * 1000,
        watcher_factory: Callable[[Worker], Watcher] | None = None,
        subscriptions: SubscriptionsProvider | None = None,
        opencode_share: OpenCodeShare | None = None,
    ) -> None:
        self.config = config
        self.live_settings = live(settings)
        initial = self.live_settings.value
        self.backend = WorkerBackend(convex, config.machine_id, config.worker_id, config.secret)
        self.lifecycle = Lifecycle()
        self.state = trio_util.AsyncValue(State.STARTING)
        self.report = trio_util.AsyncValue(WorkerReport())
        self._last_error: str | None = None
        self._subscriptions = subscriptions
        self._stop = stop
        self._models = models
        self._opencode_env = opencode_env
        self._now_ms = now_ms
        self.host = OpenCodeHost(
            opencode_bin,
            config.working_directory,
            env=opencode_env,
            start_timeout=initial.opencode_start_timeout_s,
            idle_timeout=initial.opencode_idle_timeout_s,
            pid_file=state_dir / "workers" / f"{config.machine_id}.{config.worker_id}.opencode.pid",
            # Kept out of OpenCode's environment (its tools inherit it), also as a bare value.
            secrets=(config.token.reveal(), config.secret),
            share=opencode_share,  # `opencode_server: shared`: the orchestrator's server instead
        )
        self._watcher_factory = watcher_factory or _default_watcher
        self.relay = ChatRelay(
            backend=self.backend,
            host=self.host,
            sessions=SessionMap(state_dir / "workers" / f"{config.machine_id}.{config.worker_id}.json"),
            settings=self.live_settings,
            stop=stop,
        )
        self._snapshot = trio_util.AsyncValue[tuple[int, Snapshot | None]]((0, None))
        self._orphans_reported: frozenset[str] = frozenset()
        self._models_wanted = trio_util.AsyncValue(0)

    @property
    def settings(self) -> Settings:
        """The settings now (a reload may change the live ones between two reads)."""
        return self.live_settings.value

    async def _follow_settings(self) -> None:
        """Hands the settings that hold state to OpenCode's host as a reload changes them."""
        async for settings in self.live_settings.eventual_values():
            self.host.retime(
                start_timeout=settings.opencode_start_timeout_s, idle_timeout=settings.opencode_idle_timeout_s
            )

    # -- what it publishes ----------------------------------------------------------------

    @property
    def last_error(self) -> str | None:
        """The newest failure worth showing: what it last retried, or how the attempt ended."""
        return self._last_error

    @last_error.setter
    def last_error(self, text: str | None) -> None:
        self._last_error = text
        self._refresh_report()

    def _refresh_report(self) -> None:
        self.report.value = WorkerReport(
            state=self.lifecycle.state,
            last_error=self._last_error,
            active_sessions=self.relay.active_sessions(),
            turns_in_flight=self.relay.turns.value,
            opencode_pid=self.host.pid,
            opencode_server=self.host.server_label,
            opencode_error=self.host.start_failure,
        )

    async def _report_changes(self) -> None:
        """Keeps `report` current while the relay and OpenCode run: they change on their own."""
        relay, host = self.relay, self.host
        while True:
            self._refresh_report()
            turns, sessions, pid, failure = (
                relay.turns.value,
                relay.sessions.value,
                host.pid,
                host.start_failure,
            )
            await trio_util.wait_any(
                lambda: relay.turns.wait_value(lambda n: n != turns),  # noqa: B023 - the predicate is awaited in this iteration
                lambda: relay.sessions.wait_value(lambda n: n != sessions),  # noqa: B023 - the predicate is awaited in this iteration
                lambda: host.wait_pid_change(pid, failure),  # noqa: B023 - the predicate is awaited in this iteration
            )

    # -- lifecycle ------------------------------------------------------------------------

    def _apply(self, event: Event, cause: object = None) -> None:
        before = self.lifecycle.state
        after = self.lifecycle.apply(event, cause=cause, at=trio.current_time())
        if after is not before:
            self.state.value = after
            self._refresh_report()
            log.info("%s -> %s", before.value, after.value)

    async def run(self) -> None:
        """The worker's whole life; returns when cancelled and cleaned up, raises on failure."""
        with bind_worker(self.config.name, self.config.worker_id):
            self._apply(Event.START)
            try:
                await self._attempt()
            except Exception as exc:
                # The supervisor logs the failure (one line); here only what it cannot do.
                rejection = _rejection(exc)
                self.last_error = describe(rejection or _first_leaf(exc))
                if isinstance(rejection, NotFound):  # deleted (WorkerRevoked is one too)
                    await self._close_open_messages()
                self._apply(Event.FAIL, cause=exc)
                raise
            finally:
                await self._leave()

    async def _close_open_messages(self) -> None:
        """The worker was deleted and is parked: nobody will answer its open messages, so close them.

        Turns in flight already closed theirs with the interrupted note (the serving nursery
        has exited); this catches the replies that were queued or not yet picked up.
        """
        # Bounded like the offline call, and by the stop deadline if a stop comes meanwhile;
        # what is left open is closed at the next probe of the parked worker.
        with self._stop.cleanup_scope(OFFLINE_GRACE_S):
            try:
                messages = await self.backend.worker_messages()
            except Exception as exc:  # noqa: BLE001 - best effort while removed: log one line, do not crash the stop
                log.warning("could not close the open messages of the removed worker: %s", describe(exc))
                return
            plan = plan_replies(
                messages,
                in_flight=frozenset(),
                now_ms=self._now_ms(),
                stale_age_ms=0,
                online_since_ms=None,
            )
            completer = ReplyCompleter(self.backend)
            for reply in (*plan.start, *plan.no_model):
                # One reply that cannot be closed must not leave the others open.
                try:
                    outcome = await completer.complete(reply, reply_from_note("", REMOVED_NOTE))
                except Exception as exc:  # noqa: BLE001 - one reply that cannot be closed must not leave the others open
                    log.warning(
                        "could not close reply %s of the removed worker: %s",
                        reply.reply_message_id,
                        describe(exc),
                    )
                    continue
                if outcome is Outcome.LANDED:
                    log.info("closed reply %s: the worker was removed", reply.reply_message_id)

    async def _leave(self) -> None:
        if not self.lifecycle.terminal:
            self._apply(Event.STOP)
        cause = self.lifecycle.cause
        # A rejected worker cannot be marked offline (the call would be refused too).
        owed = (
            self.lifecycle.registered
            and _rejection(cause if isinstance(cause, BaseException) else None) is None
        )
        if owed:
            # Runs during cancellation too: the web app must see the worker offline.
            with self._stop.cleanup_scope(OFFLINE_GRACE_S):
                try:
                    inactivated = await self.backend.set_offline()
                    log.info("offline in Convex (%d session(s) inactivated)", inactivated)
                except Exception as exc:  # noqa: BLE001 - best effort while stopping: log one line, do not crash the stop
                    log.warning("could not mark the worker offline: %s", describe(exc))
        if self.lifecycle.state is State.STOPPING:
            self._apply(Event.STOPPED)

    async def _attempt(self) -> None:
        registration = await self._register()
        if registration.name and self.config.name == self.config.worker_id:
            # No name of its own (dev mode's .env names none): the web app's name labels its lines.
            relabel(registration.name)
        if registration.approved:
            self._apply(Event.REGISTERED_APPROVED)
        else:
            self._apply(Event.REGISTERED_PENDING)
        while True:
            if self.lifecycle.state is State.WAITING_APPROVAL:
                log.info("waiting for approval in the web app")
                await self._wait_for_approval()
                self._apply(Event.APPROVED)
            try:
                await self._serve()
            except* ApprovalWithdrawn:
                log.warning("approval withdrawn in the web app")
                self._apply(Event.APPROVAL_WITHDRAWN)

    # -- registration ---------------------------------------------------------------------

    def _retrying(self, policy: RetryPolicy) -> Attempts:
        """A backend call retried by `policy`; each failure is said through the backend's
        outage report (WARNING at first and then every few minutes, DEBUG in between) and is
        the worker's `last_error`, which status shows."""
        return retrying(policy, describe=self._noted, log=log, report=self.backend.outage)

    def _noted(self, exc: Exception) -> str:
        self.last_error = describe(exc)
        return self.last_error

    def _reachable(self) -> None:
        lasted = self.backend.outage.recovered(trio.current_time())
        if lasted is not None:
            log.info(
                "Convex deployment %s answers again (after %s)", self.backend.client.url, duration(lasted)
            )

    async def _register(self) -> Registration:
        async for attempt in self._retrying(WORKER_REGISTRATION):
            with attempt:
                registration = await self.backend.register(
                    str(self.config.working_directory), getpass.getuser()
                )
        self._reachable()
        return registration

    async def _wait_for_approval(self) -> None:
        while True:
            asked_at = trio.current_time()
            await sleep_until_due(self.live_settings, lambda s: asked_at + s.approval_poll_interval_s)  # noqa: B023 - awaited in this iteration
            if (await self._register()).approved:
                return

    # -- ready ----------------------------------------------------------------------------

    async def _serve(self) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.relay.run)
            nursery.start_soon(self._follow_settings)
            nursery.start_soon(self.host.run)
            nursery.start_soon(self._report_changes)
            await self._mark_connected()
            self._apply(Event.CONNECTED)
            nursery.start_soon(self._publish_models)
            self._models_wanted.value += 1
            nursery.start_soon(self._heartbeat)
            watcher = self._watcher_factory(self)
            nursery.start_soon(watcher.run, self._publish)
            await self._follow(watcher, nursery)

    async def _mark_connected(self) -> None:
        try:
            async for attempt in self._retrying(WORKER_REGISTRATION):
                with attempt:
                    await self.backend.mark_connected()
        except WorkerNotApproved:
            raise ApprovalWithdrawn() from None
        self._reachable()
        self.relay.forget_reported()

    async def _publish_models(self) -> None:
        """Publishes the model list whenever asked, one listing at a time, latest request wins."""
        done = 0
        while True:
            wanted = await self._models_wanted.wait_value(lambda n: n > done)  # noqa: B023 - the predicate is awaited in this iteration
            try:
                models = await self._models.models(
                    self.config.working_directory, self._opencode_env, refresh=done > 0
                )
                # An outage only delays the list (the web app shows no model until it lands);
                # a newer request (a connect in the web app) starts over with a fresh listing.
                with trio.CancelScope() as superseded:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._cancel_when_asked_again, wanted, superseded)
                        await self._update_models_patiently(models)
                        nursery.cancel_scope.cancel()
                if not superseded.cancelled_caught:
                    log.info("published %d model(s)", len(models))
            except Rejected:
                raise
            except Exception as exc:  # noqa: BLE001 - publishing models is advisory; the worker runs on without it
                log.warning("could not publish models: %s", describe(exc))
            done = wanted

    async def _cancel_when_asked_again(self, wanted: int, scope: trio.CancelScope) -> None:
        await self._models_wanted.wait_value(lambda n: n > wanted)
        scope.cancel()

    async def _update_models_patiently(self, models: list[ModelInfo]) -> None:
        # DEBUG only: the heartbeat says an outage, and the list lands once it is over.
        async for attempt in retrying(
            MODEL_PUBLISH, log=log, describe=lambda exc: f"publishing the models failed ({describe(exc)})"
        ):
            with attempt:
                await self.backend.update_models(models)

    async def _warm_up(self) -> None:
        # A shared server may already run; what this worker's first turn would still wait for
        # is OpenCode loading its directory, so that is done now too.
        try:
            async with self.host.lease() as server:
                await server.client.prepare()
        except OpenCodeUnavailable as exc:
            log.warning("could not start OpenCode ahead of a chat: %s", exc)

    async def _heartbeat(self) -> None:
        # The first beat at once, each next one interval after the last; a reload's new interval
        # counts at once (`sleep_until_due`).
        last_beat: float | None = None
        start = trio.current_time()
        while True:
            since = last_beat
            await sleep_until_due(
                self.live_settings,
                lambda s: start if since is None else since + s.heartbeat_interval_s,  # noqa: B023 - awaited in this iteration
            )
            # A failed beat is never retried later than the next.
            policy = HEARTBEAT.capped(self.settings.heartbeat_interval_s)
            try:
                async for attempt in self._retrying(policy):
                    with attempt:
                        await self.backend.heartbeat()
            except WorkerNotApproved:
                raise ApprovalWithdrawn() from None
            self._reachable()
            last_beat = trio.current_time()

    def _publish(self, snapshot: Snapshot) -> None:
        seq, _ = self._snapshot.value
        self._snapshot.value = (seq + 1, snapshot)

    async def _follow(self, watcher: Watcher, nursery: trio.Nursery) -> None:
        """Acts on each snapshot as `plan_snapshot` decides: revocation, a withdrawn approval,
        connect requests, and replies to start or close."""
        handled = 0
        memory = SnapshotMemory(self._now_ms(), reported_orphans=self._orphans_reported)
        while True:
            handled, snapshot = await self._snapshot.wait_value(lambda v: v[0] > handled)  # noqa: B023 - the predicate is awaited in this iteration
            assert snapshot is not None
            actions = plan_snapshot(
                snapshot,
                memory,
                in_flight=self.relay.claimed(),
                now_ms=self._now_ms(),
                stale_age_ms=self.settings.stale_message_age_s * 1000,
            )
            memory = actions.memory
            if actions.ending is Ending.REVOKED:
                raise WorkerRevoked(url=self.backend.client.url)
            if actions.ending is Ending.APPROVAL_WITHDRAWN:
                raise ApprovalWithdrawn()
            if actions.connect:
                log.info("connect requested in the web app")
                await self._mark_connected()
                self._models_wanted.value += 1
                # Someone just opened this worker in the web app: a message is likely to follow,
                # so start OpenCode now rather than on it (the idle timeout still applies).
                nursery.start_soon(self._warm_up)
            self.relay.observe(snapshot.messages)
            decisions = actions.replies
            for reply in decisions.close_stale:
                log.info(
                    "closing a message sent %.0f min ago while offline",
                    (self._now_ms() - reply.timestamp) / 60000,
                )
                self.relay.submit(JobKind.CLOSE_STALE, reply)
            for reply in decisions.no_model:
                self.relay.submit(JobKind.NO_MODEL, reply)
            for reply in decisions.start:
                self.relay.submit(JobKind.ANSWER, reply)
            for orphan in decisions.orphans:
                log.warning("user message %s has no assistant placeholder; skipped", orphan.id)
            self._orphans_reported = memory.reported_orphans


def _default_watcher(worker: Worker) -> Watcher:
    """Subscriptions over the sync socket the worker was lent (`convex_transport: subscribe`,
    with polling while it is down), or plain polling (`convex_transport: poll`)."""

    def polling() -> Watcher:
        return PollingWatcher(
            worker.backend, worker.live_settings, busy=lambda: worker.relay.busy, now_ms=worker._now_ms
        )

    if worker.settings.convex_transport == "poll":
        return polling()
    client = worker.backend.client
    lent = worker._subscriptions
    subscriptions = lent if lent is not None else lambda: ConvexSubscriptions(client.url, client=client.http)
    return SubscriptionWatcher(worker.backend, worker.settings, subscriptions, fallback=polling)
