"""The process root: one nursery, one supervised slot per worker, signals, status and reload.

Stop is three-phase: the first SIGINT/SIGTERM cancels the workers' scope and every worker runs
its shielded cleanup under one shared deadline (`shutdown_timeout_s`); a second signal, or the
deadline, cuts cleanups short and kills OpenCode process groups; a watchdog thread makes sure the
process ends even if the loop is blocked. Exit 0 when everything stopped cleanly, 1 otherwise.

When every worker is parked the process keeps running: parked workers are probed again every
`park_retry` seconds and on SIGHUP, and `trio-oco status` exits 1 to show that none is ready.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import trio
import trio_util

from oco.config import Settings, WorkerConfig
from oco.convex import ConvexClient, shared_convex_client
from oco.errors import OcoError
from oco.worker import StopControl

from ._notify import SystemdNotifier
from ._policy import RestartPolicy
from ._reload import plan_reload
from ._status import (
    STATUS_FILE,
    StateDirUnusable,
    StatusSnapshot,
    WorkerStatus,
    acquire_lock,
    write_status,
)
from ._supervisor import STATES_WITHOUT_LIVE_WORKER, ConvexFor, SlotState, WorkerLike, WorkerSlot

log = logging.getLogger(__name__)

FORCE_EXIT_AFTER_S = 1.0  # a forced stop ends the process within this, whatever the loop does
STATUS_INTERVAL_S = 5.0  # status.json is rewritten at least this often (counters, "updated")

WorkerFactory = Callable[[WorkerConfig, ConvexClient, StopControl], WorkerLike]


@attrs.frozen
class Reloaded:
    """What a reload read: the workers (keyed by `config.key`), settings, and optionally a new
    factory (the `run` command builds one when settings such as `opencode_bin` changed)."""

    workers: Mapping[str, WorkerConfig]
    settings: Settings
    worker_factory: WorkerFactory | None = None


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)  # OpenCode runs in its own session: kill all it spawned
    except (ProcessLookupError, PermissionError):
        pass


class Orchestrator:
    """Runs a set of workers until stopped; `run()` returns the process exit code.

    `status_dir`: where status.json and the single-instance lock live (None: neither).
    `reload`: re-reads the configuration on SIGHUP (None: reload unavailable, e.g. dev mode).
    `hard_exit`: what the watchdog thread calls when a stop overruns (None disables the
    thread; tests do that so it can never end the test process).
    """

    def __init__(
        self,
        workers: Mapping[str, WorkerConfig],
        settings: Settings,
        *,
        worker_factory: WorkerFactory,
        convex_for: ConvexFor = shared_convex_client,
        policy: RestartPolicy | None = None,
        shutdown_timeout: float | None = None,
        handle_signals: bool = True,
        status_dir: Path | None = None,
        reload: Callable[[], Reloaded] | None = None,
        notifier: SystemdNotifier | None = None,
        hard_exit: Callable[[int], Any] | None = os._exit,
        status_interval: float = STATUS_INTERVAL_S,
    ) -> None:
        self.settings = settings
        self.stop = StopControl()
        self._timeout_override = shutdown_timeout
        self.shutdown_timeout = settings.shutdown_timeout_s if shutdown_timeout is None else shutdown_timeout
        self._factory = worker_factory
        self._convex_for = convex_for
        self._policy = policy or RestartPolicy()
        self._handle_signals = handle_signals
        self._status_path = Path(status_dir) / STATUS_FILE if status_dir is not None else None
        self._status_write_failed = False
        self._reload = reload
        self._notifier = notifier or SystemdNotifier(None)
        self._hard_exit = hard_exit
        self._status_interval = status_interval
        self.slots: dict[str, WorkerSlot] = {}
        self._scopes: dict[str, trio.CancelScope] = {}
        self._pending = dict(workers)
        self._nursery: trio.Nursery | None = None
        self._root: trio.Nursery
        self._workers_scope = trio.CancelScope()
        self._changes = trio_util.AsyncValue(0)
        self._reload_requests = trio_util.AsyncValue(0)
        self.reloads_done = trio_util.AsyncValue(0)
        self.started = trio.Event()
        self.stopping = False
        self._started_at = time.time()
        self._watchdog: threading.Timer | None = None

    # -- running --------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until stopped; raises `AlreadyRunning` (exit 2) when the state dir is taken."""
        lock = None
        if self._status_path is not None:
            try:
                lock = acquire_lock(self._status_path.parent)
            except StateDirUnusable as exc:
                # The state directory only saves context: the workers run without it.
                log.warning("%s; running without the single-instance lock and status file", exc)
        try:
            return await self._run()
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._notifier.close()
            if lock is not None:
                lock.release()

    async def _run(self) -> int:
        self._started_at = time.time()
        async with trio.open_nursery() as root:
            self._root = root
            if self._handle_signals:
                await root.start(self._watch_signals)
            root.start_soon(self._reloader)
            if self._status_path is not None:
                root.start_soon(self._status_writer)
            if self._notifier.enabled:
                root.start_soon(self._notify_ready)
                if self._notifier.watchdog_interval:
                    root.start_soon(self._watchdog_pings, self._notifier.watchdog_interval)
            with self._workers_scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    for config in self._pending.values():
                        self._start_slot(config)
                    self._pending.clear()
                    self.started.set()
                    await trio.sleep_forever()
            root.cancel_scope.cancel()
        self._write_status()  # the final word: every row says "stopped"
        clean = not (self.stop.forced or self.stop.cut_short)
        log.info("stopped %s", "cleanly" if clean else "(forced)")
        return 0 if clean else 1

    def _changed(self) -> None:
        self._changes.value += 1

    def _start_slot(self, config: WorkerConfig) -> None:
        assert self._nursery is not None
        slot = WorkerSlot(
            config,
            lambda convex: self._factory(config, convex, self.stop),
            self._convex_for,
            self._policy,
            on_change=self._changed,
        )
        self.slots[config.key] = slot
        scope = trio.CancelScope()
        self._scopes[config.key] = scope

        async def supervised() -> None:
            with scope:
                await slot.run()

        self._nursery.start_soon(supervised, name=f"worker {config.name}")
        self._changed()

    async def stop_slot(self, key: str) -> None:
        """Stop one worker (reload removed or changed it) and wait until its cleanup is done."""
        slot = self.slots.pop(key, None)
        scope = self._scopes.pop(key, None)
        if scope is not None:
            scope.cancel(reason="reload")
        if slot is not None:
            await slot.done.wait()
        self._changed()

    # -- stopping -------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Graceful stop: every worker cleans up concurrently under one deadline."""
        if self.stopping:
            self.force(f"{reason} again")
            return
        self.stopping = True
        log.info("stopping (%s); waiting up to %.0f s for workers to clean up", reason, self.shutdown_timeout)
        self._notifier.notify("STOPPING=1")
        self.stop.cut_short = False  # a reload's stop that timed out earlier is not this stop's
        self.stop.request(self.shutdown_timeout)
        self._workers_scope.cancel(reason=f"stop: {reason}")
        self._root.start_soon(self._force_at_deadline)
        # The loop itself might be stuck: end the process shortly after the deadline regardless.
        self._arm_watchdog(self.shutdown_timeout + 2 * FORCE_EXIT_AFTER_S)

    async def _force_at_deadline(self) -> None:
        await trio.sleep_until(self.stop.deadline)
        if not self.stop.forced:
            self.force("the shutdown timeout passed")

    def force(self, reason: str) -> None:
        """Forced stop: cut cleanups short, kill OpenCode process groups, exit within a second."""
        if self.stop.forced:
            log.warning("already forcing the stop (%s)", reason)
            return  # never re-arm: a repeat must not postpone the forced exit
        log.warning("forcing the stop (%s)", reason)
        self.stopping = True
        self.stop.force()
        self._workers_scope.cancel(reason=f"forced: {reason}")
        self._kill_opencode()
        self._arm_watchdog(FORCE_EXIT_AFTER_S)

    def _kill_opencode(self) -> None:
        for slot in list(self.slots.values()):
            if slot.worker is not None:
                _kill_group(slot.worker.host.pid)

    def _arm_watchdog(self, seconds: float) -> None:
        if self._hard_exit is None:
            return
        if self._watchdog is not None:
            self._watchdog.cancel()
        hard_exit = self._hard_exit

        def expire() -> None:
            sys.stderr.write("trio-oco: the stop did not finish in time; exiting now\n")
            faulthandler.dump_traceback(all_threads=True)
            self._kill_opencode()
            hard_exit(1)

        self._watchdog = threading.Timer(seconds, expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    async def _watch_signals(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # Held for the whole run: a signal is never re-delivered to the default handler.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP:
                    log.info("SIGHUP received: reloading the configuration")
                    self.request_reload()
                else:
                    self.request_stop(name)

    # -- reload ---------------------------------------------------------------------------

    def request_reload(self) -> None:
        """Ask for a reload; reloads run one at a time, in order, in their own task."""
        self._reload_requests.value += 1

    async def _reloader(self) -> None:
        done = 0
        while True:
            done = await self._reload_requests.wait_value(lambda n: n > done)
            if not self.stopping:
                await self._reload_once()
            self.reloads_done.value += 1

    async def _reload_once(self) -> None:
        if self._reload is None:
            log.warning("reload is not available in this mode; restart the process instead")
            return
        try:
            new = self._reload()
        except OcoError as exc:
            log.error("reload failed; the running workers stay as they are: %s", exc)
            return
        current = {key: slot.config for key, slot in self.slots.items()}
        plan = plan_reload(current, new.workers, old_settings=self.settings, new_settings=new.settings)
        log.info(
            "reload: %d to start, %d to stop, %d to restart, %d unchanged%s",
            len(plan.start), len(plan.stop), len(plan.restart), len(plan.unchanged),
            f" (settings changed: {', '.join(plan.settings_changed)})" if plan.settings_changed else "",
        )
        self.settings = new.settings
        if self._timeout_override is None:
            self.shutdown_timeout = new.settings.shutdown_timeout_s
        if "log_level" in plan.settings_changed:
            logging.getLogger().setLevel(new.settings.log_level.upper())
        if new.worker_factory is not None:
            self._factory = new.worker_factory
        async with trio.open_nursery() as stopping:
            for key in plan.stop + plan.restart:
                stopping.start_soon(self.stop_slot, key)
        if self.stopping:
            return
        for key in plan.restart + plan.start:
            self._start_slot(new.workers[key])
        for key in plan.unchanged:
            slot = self.slots[key]
            if slot.state.value is SlotState.PARKED:
                log.info("reload: retrying parked worker %s now", slot.config.name)
                slot.retry_now.set()

    # -- status and systemd ---------------------------------------------------------------

    def snapshot(self) -> StatusSnapshot:
        """The current status, with trio times converted to wall-clock seconds."""
        now, wall_now = trio.current_time(), time.time()
        rows = []
        for slot in self.slots.values():
            worker = slot.worker
            live = worker is not None and slot.state.value not in STATES_WITHOUT_LIVE_WORKER
            rows.append(
                WorkerStatus.for_config(
                    slot.config,
                    state=slot.state.value.value,
                    since=wall_now - (now - slot.since),
                    restarts=slot.restarts,
                    last_error=slot.last_error,
                    active_sessions=worker.relay.active_sessions() if live else 0,
                    turns_in_flight=worker.relay.turns.value if live else 0,
                    opencode_pid=worker.host.pid if live else None,
                )
            )
        return StatusSnapshot(pid=os.getpid(), started_at=self._started_at, updated_at=wall_now, workers=rows)

    def _write_status(self) -> None:
        if self._status_path is None:
            return
        try:
            write_status(self._status_path, self.snapshot())
        except OSError as exc:  # a full disk must not take the workers down
            # Once at WARNING, then DEBUG until a write succeeds again (it is retried every 5 s).
            level = logging.DEBUG if self._status_write_failed else logging.WARNING
            self._status_write_failed = True
            log.log(level, "could not write %s: %s", self._status_path, exc.strerror or exc)
        else:
            self._status_write_failed = False

    async def _status_writer(self) -> None:
        while True:
            seen = self._changes.value
            self._write_status()
            with trio.move_on_after(self._status_interval):
                await self._changes.wait_value(lambda v: v != seen)

    async def _notify_ready(self) -> None:
        await self.started.wait()
        for slot in list(self.slots.values()):
            await trio_util.wait_any(slot.first_attempt_done.wait, slot.done.wait)
        ready = sum(1 for s in self.slots.values() if s.state.value is SlotState.READY)
        self._notifier.notify(f"READY=1\nSTATUS={ready} of {len(self.slots)} worker(s) ready")
        log.info("all workers made their first start attempt (%d of %d ready)", ready, len(self.slots))

    async def _watchdog_pings(self, interval: float) -> None:
        while True:
            self._notifier.notify("WATCHDOG=1")
            await trio.sleep(interval)
