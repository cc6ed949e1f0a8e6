"""The process root: one nursery, one supervised slot per worker, signals, status and reload.

Stop is three-phase: the first SIGINT/SIGTERM cancels the workers' scope and every worker runs
its shielded cleanup under one shared deadline (`shutdown_timeout_s`); a second signal, or the
deadline, cuts cleanups short and kills OpenCode process groups; a watchdog thread makes sure the
process ends even if the loop is blocked. Exit 0 when everything stopped cleanly, 1 otherwise.

When every worker is parked the process keeps running: parked workers are probed again every
`park_retry` seconds and on SIGHUP, and `trio-oco status` exits 1 to show that none is ready.

Who owns what. The root nursery holds the signal watcher, the status writer, the systemd
pings, the Convex connections (`ConvexConnections`: one client and one sync socket per URL,
lent to the workers) and the controller; the workers' nursery inside it holds one slot per
worker. Which workers run changes only in the controller: `start_worker`, `stop_worker`,
`restart_worker` and `reload` (SIGHUP) are commands carried out one at a time, in order
(`_control.py`), so no two of them can ever leave two slots for one worker. A worker stopped
by `stop_worker` stays stopped, through reloads too, until `start_worker` or `restart_worker`.
`workers()` lists every configured worker's status (OTP's `which_children`).
"""

from __future__ import annotations

import contextlib
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

from oco._log_files import open_log_files
from oco._text import external
from oco.config import Settings, WorkerConfig
from oco.errors import OcoError
from oco.worker import LiveSettings, StopControl

from ._connections import ConvexConnections, ConvexLink
from ._control import (
    Action,
    Command,
    CommandQueue,
    OrchestratorStopping,
    ReloadUnavailable,
    WorkerChange,
    resolve_worker,
)
from ._control_socket import serve_control
from ._instance import SOCKET_FILE, Instance
from ._notify import SystemdNotifier, status_line
from ._policy import RestartPolicy
from ._reload import ReloadPlan, plan_reload
from ._status import (
    DEGRADED,
    STATUS_FILE,
    LockHandle,
    StateDirUnusable,
    StatusSnapshot,
    WorkerStatus,
    acquire_lock,
    write_status,
)
from ._supervisor import SlotState, WorkerLike, WorkerSlot

log = logging.getLogger(__name__)

FORCE_EXIT_AFTER_S = 1.0  # a forced stop ends the process within this, whatever the loop does
STATUS_INTERVAL_S = 5.0  # status.json is rewritten at least this often (counters, "updated")

#: Makes one attempt's worker from its config and what the orchestrator lends it: the Convex
#: link of its deployment, the shared stop control and the live settings (`live_settings`).
WorkerFactory = Callable[[WorkerConfig, ConvexLink, StopControl, LiveSettings], WorkerLike]


@attrs.frozen
class Reloaded:
    """What a reload read: the workers (keyed by `config.key`), settings, optionally a new
    factory (the `run` command builds one when `opencode_bin` changed), and the file read
    (`source`, named in the reload's summary)."""

    workers: Mapping[str, WorkerConfig]
    settings: Settings
    worker_factory: WorkerFactory | None = None
    source: str | None = None


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)  # OpenCode runs in its own session: kill all it spawned
    except (ProcessLookupError, PermissionError):
        pass


class Orchestrator:
    """Runs a set of workers until stopped; `run()` returns the process exit code.

    `workers`: keyed by `config.key`; disabled entries are not run (a reload may enable them).
    `connections`: lends each worker its deployment's client and socket (tests pass one over
    an in-process transport). `status_dir`: where status.json, the single-instance lock and
    the control socket live (None: none of them). `instance`: an instance directory the
    command already claimed (its lock held; see `_instance.py`): used instead of `status_dir`,
    released when `run()` ends. `reload`: re-reads the configuration on SIGHUP or `reload()` (None:
    reload unavailable, e.g. dev mode). `live_settings` holds the settings every worker reads at
    each use; a reload sets it (see `_reload.py` for what applies live and what restarts).
    `pinned_settings`: settings fixed on the command line, which a reload keeps
    (`shutdown_timeout` pins `shutdown_timeout_s`).
    `hard_exit`: what the watchdog thread calls when a stop overruns (None disables the
    thread; tests do that so it can never end the test process).
    `on_rejected(config, reason)`: asked before a worker the backend rejects is parked; True
    ends that worker's slot instead (dev mode, which has no reload, stops and says why).
    """

    def __init__(
        self,
        workers: Mapping[str, WorkerConfig],
        settings: Settings,
        *,
        worker_factory: WorkerFactory,
        connections: ConvexConnections | None = None,
        policy: RestartPolicy | None = None,
        shutdown_timeout: float | None = None,
        handle_signals: bool = True,
        status_dir: Path | None = None,
        instance: Instance | None = None,
        reload: Callable[[], Reloaded] | None = None,
        notifier: SystemdNotifier | None = None,
        hard_exit: Callable[[int], Any] | None = os._exit,
        status_interval: float = STATUS_INTERVAL_S,
        on_rejected: Callable[[WorkerConfig, str], bool] | None = None,
        pinned_settings: frozenset[str] = frozenset(),
    ) -> None:
        self.live_settings: LiveSettings = trio_util.AsyncValue(settings)
        self._pinned = pinned_settings | ({"shutdown_timeout_s"} if shutdown_timeout is not None else set())
        self.stop = StopControl()
        self.shutdown_timeout = settings.shutdown_timeout_s if shutdown_timeout is None else shutdown_timeout
        self._factory = worker_factory
        self._connections = connections or ConvexConnections()
        self._policy = policy or RestartPolicy()
        self._handle_signals = handle_signals
        self._instance = instance
        if instance is not None:
            status_dir = instance.directory
        self._status_path = Path(status_dir) / STATUS_FILE if status_dir is not None else None
        self._status_write_failed = False
        self._read_config = reload
        self._notifier = notifier or SystemdNotifier(None)
        self._hard_exit = hard_exit
        self._status_interval = status_interval
        self._on_rejected = on_rejected
        # The configured workers (enabled ones, in file order) and the keys a command stopped.
        self._configs = {config.key: config for config in workers.values() if config.enabled}
        self._held: set[str] = set()
        # One slot per worker that runs or ran; replaced only once its task has ended. Changed
        # only before the controller starts and by the controller.
        self.slots: dict[str, WorkerSlot[ConvexLink]] = {}
        self._commands = CommandQueue()
        self._queued_reload: Command | None = None  # a reload not begun absorbs new requests
        self._nursery: trio.Nursery | None = None
        self._root: trio.Nursery
        self._workers_scope = trio.CancelScope()
        self._changes = trio_util.AsyncValue(0)
        self.reloads_done = trio_util.AsyncValue(0)
        self.started = trio.Event()
        self.stopping = False
        self._started_at = time.time()
        self._watchdog: threading.Timer | None = None

    @property
    def settings(self) -> Settings:
        """The settings in force (the file's, as of the last reload)."""
        return self.live_settings.value

    # -- running --------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until stopped; raises `AlreadyRunning` (exit 2) when the state dir is taken."""
        lock: Instance | LockHandle | None = self._instance  # a claimed instance holds its lock
        if self._status_path is not None and lock is None:
            try:
                lock = acquire_lock(self._status_path.parent)
            except StateDirUnusable as exc:
                # The state directory only saves context: the workers run without it.
                log.warning("%s; running without the single-instance lock and status file", exc)
        try:
            with contextlib.ExitStack() as files:
                if self._status_path is not None:  # per-worker log files beside status.json
                    # ... or, for a claimed instance, in the user's state directory: `trio-oco logs`
                    # reads every orchestrator's workers there.
                    logs_root = self._instance.state_dir if self._instance else self._status_path.parent
                    files.enter_context(open_log_files(logs_root))
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
            await root.start(self._connections.run)
            if self._status_path is not None:
                root.start_soon(self._status_writer)
                await root.start(serve_control, self, self._status_path.parent / SOCKET_FILE)
            if self._notifier.enabled:
                root.start_soon(self._notify_ready)
                if self._notifier.watchdog_interval:
                    root.start_soon(self._watchdog_pings, self._notifier.watchdog_interval)
            with self._workers_scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    # The controller starts after this loop: nothing else changes the slots.
                    for config in self._configs.values() if not self.stopping else ():
                        self._launch(config)
                    root.start_soon(self._control)
                    self.started.set()
                    await trio.sleep_forever()
            root.cancel_scope.cancel()
        self._write_status()  # the final word: every row says "stopped"
        clean = not (self.stop.forced or self.stop.cut_short)
        log.info("stopped %s", "cleanly" if clean else "(forced)")
        return 0 if clean else 1

    def _changed(self) -> None:
        self._changes.value += 1

    def _launch(self, config: WorkerConfig) -> WorkerSlot[ConvexLink]:
        """Start a slot for `config`, in the workers' nursery; its key's previous slot has ended."""
        if self.stopping or self._nursery is None:
            raise OrchestratorStopping()
        previous = self.slots.get(config.key)
        if previous is not None and not previous.done.is_set():
            # The controller halts a slot before it launches its successor: never reached.
            raise RuntimeError(f"worker {config.name} already has a running slot")
        slot = WorkerSlot(
            config,
            lambda link: self._factory(config, link, self.stop, self.live_settings),
            self._connections.lend,
            self._policy,
            on_change=self._changed,
            on_rejected=self._on_rejected,
        )
        self.slots[config.key] = slot
        self._nursery.start_soon(slot.run, name=f"worker {config.name}")
        self._changed()
        return slot

    async def _halt(self, key: str, reason: str) -> bool:
        """Stop the slot of `key` and wait until its worker has cleaned up; False if none ran."""
        slot = self.slots.get(key)
        if slot is None or slot.done.is_set():
            return False
        slot.cancel(reason)
        await slot.done.wait()
        self._changed()
        return True

    # -- the per-worker API (OTP's start_child, terminate_child, restart_child) -----------

    async def start_worker(self, worker: str) -> WorkerChange:
        """Start a configured worker that is stopped (by `stop_worker`, or ended by itself).

        `worker` is its key, worker id or name (`UnknownWorker` otherwise). Already running
        (even parked or backing off): nothing changes (`changed` is False).
        """
        return await self._ask(Action.START, worker)

    async def stop_worker(self, worker: str) -> WorkerChange:
        """Stop a worker and wait until it has cleaned up (set offline); it stays stopped,
        also through reloads, until `start_worker` or `restart_worker`."""
        return await self._ask(Action.STOP, worker)

    async def restart_worker(self, worker: str) -> WorkerChange:
        """Stop the worker (if it runs, parked and backing off included) and start it afresh."""
        return await self._ask(Action.RESTART, worker)

    def workers(self) -> list[WorkerStatus]:
        """Every configured worker's status now, in configuration order (`which_children`)."""
        return self.snapshot().workers

    def has_worker(self, worker: str) -> bool:
        """Whether `worker` names exactly one configured worker (key, worker id or name)."""
        try:
            resolve_worker(self._configs, worker)
        except OcoError:
            return False
        return True

    def identity(self) -> dict[str, Any]:
        """Who this orchestrator is (the control protocol's `ping`)."""
        instance = self._instance
        return {
            "pid": os.getpid(),
            "mode": instance.mode if instance is not None else None,
            "source": str(instance.source) if instance is not None else None,
            "started_at": self._started_at,
            "stopping": self.stopping,
        }

    async def _ask(self, action: Action, worker: str) -> WorkerChange:
        change: WorkerChange = await self._commands.put(Command(action, worker)).reply.result()
        return change

    # -- the controller ---------------------------------------------------------------------

    async def _control(self) -> None:
        """Carries out the queued commands one at a time, in order, until the process stops."""
        try:
            async for command in self._commands.receive:
                await self._execute(command)
        finally:
            self._commands.fail_pending()

    async def _execute(self, command: Command) -> None:
        if command is self._queued_reload:
            self._queued_reload = None
        try:
            if self.stopping:
                raise OrchestratorStopping()
            command.reply.succeed(await self._carry_out(command))
        except OcoError as exc:
            command.reply.fail(exc)
        except Exception as exc:  # a bug in one command must not take the workers down
            log.error(
                "the %s command failed (a bug in trio-oco): %s",
                command.action.value,
                exc,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            command.reply.fail(exc)
        finally:
            command.reply.fail(OrchestratorStopping())  # only if cancelled midway (a stop)
            if command.action is Action.RELOAD:
                self.reloads_done.value += 1

    async def _carry_out(self, command: Command) -> WorkerChange | ReloadPlan:
        if command.action is Action.RELOAD:
            return await self._reload_now()
        assert command.target is not None
        key = resolve_worker(self._configs, command.target)
        name = self._configs[key].name
        if command.action is Action.START:
            self._held.discard(key)
            slot = self.slots.get(key)
            if slot is not None and not slot.done.is_set():
                return WorkerChange(self._row(key), changed=False)
            log.info("starting worker %s", name)
            self._launch(self._configs[key])
        elif command.action is Action.STOP:
            self._held.add(key)
            if not await self._halt(key, "stop_worker"):
                return WorkerChange(self._row(key), changed=False)
            log.info("stopped worker %s; it stays stopped until started", name)
        else:
            self._held.discard(key)
            log.info("restarting worker %s", name)
            await self._halt(key, "restart_worker")
            self._launch(self._configs[key])
        return WorkerChange(self._row(key), changed=True)

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
        # A shared server is every one of its workers' pid, and its host's: its group is killed
        # once. Its host's, because at a stop it closes after its last worker has left.
        reported = {pid for slot in list(self.slots.values()) if (pid := slot.opencode_pid) is not None}
        pids = sorted(reported | self._connections.opencode.pids())
        if pids:
            log.warning("killing OpenCode process groups %s", ", ".join(map(str, pids)))
        for pid in pids:
            _kill_group(pid)

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
        """Ask for a reload (SIGHUP) without waiting for it; see `reload`."""
        self._queue_reload()

    async def reload(self) -> ReloadPlan:
        """Re-read the configuration and apply what changed; returns the plan it followed.

        A command like the others; a reload queued and not yet begun absorbs later requests.
        A file that does not load raises its `OcoError` and changes nothing.
        """
        plan: ReloadPlan = await self._queue_reload().reply.result()
        return plan

    def _queue_reload(self) -> Command:
        if self._queued_reload is None:
            self._queued_reload = self._commands.put(Command(Action.RELOAD))
        return self._queued_reload

    async def _reload_now(self) -> ReloadPlan:
        if self._read_config is None:
            log.warning("reload is not available in this mode; restart the process instead")
            raise ReloadUnavailable("reload is not available in this mode; restart the process instead")
        try:
            new = self._read_config()
        except OcoError as exc:
            log.error("reload failed; the running workers stay as they are: %s", exc)
            raise
        running = {key: slot for key, slot in self.slots.items() if not slot.done.is_set()}
        plan = plan_reload(
            self._configs,
            new.workers,
            old_settings=self.settings,
            new_settings=new.settings,
            held=self._held,
            parked=[key for key, slot in running.items() if slot.state.value is SlotState.PARKED],
            pinned=self._pinned,
            source=new.source,
        )
        log.info("%s", plan.summary())
        self._apply_settings(new.settings, plan)
        if new.worker_factory is not None:
            self._factory = new.worker_factory
        for renamed in plan.renamed:  # at once, not after the restarts' cleanups
            slot = running.get(renamed.key)
            if slot is not None and renamed.key in plan.unchanged:
                slot.relabel(new.workers[renamed.key])
        async with trio.open_nursery() as stopping:
            for key in plan.stop + plan.restart:
                stopping.start_soon(self._halt, key, "reload")
        self._configs = {config.key: config for config in new.workers.values() if config.enabled}
        for key in plan.stop:
            self.slots.pop(key, None)
            self._held.discard(key)  # forgotten with its entry
        self._changed()
        if self.stopping:
            return plan
        for key in plan.restart + plan.start:
            self._launch(self._configs[key])
        for key in plan.retried:
            slot = self.slots[key]
            log.info("reload: retrying parked worker %s now", slot.config.name)
            slot.retry_now.set()
        return plan

    def _apply_settings(self, settings: Settings, plan: ReloadPlan) -> None:
        """The reloaded settings in force; pinned ones keep the command line's value. Workers
        read the live ones at their next use; the orchestrator applies its own here."""
        pinned = {name: getattr(self.settings, name) for name in self._pinned}
        self.live_settings.value = attrs.evolve(settings, **pinned)
        if "shutdown_timeout_s" in plan.settings_live:
            self.shutdown_timeout = settings.shutdown_timeout_s
        if "log_level" in plan.settings_live:
            logging.getLogger().setLevel(settings.log_level.upper())

    # -- status and systemd ---------------------------------------------------------------

    def snapshot(self) -> StatusSnapshot:
        """The current status, with trio times converted to wall-clock seconds."""
        wall_now = time.time()
        # Configured workers in file order, then any slot whose entry a reload is removing.
        keys = [*self._configs, *(key for key in self.slots if key not in self._configs)]
        rows = [self._row(key, wall_now) for key in keys]
        instance = self._instance
        return StatusSnapshot(
            pid=os.getpid(),
            started_at=self._started_at,
            updated_at=wall_now,
            workers=rows,
            mode=instance.mode if instance is not None else None,
            source=str(instance.source) if instance is not None else None,
        )

    def _row(self, key: str, wall_now: float | None = None) -> WorkerStatus:
        """One worker's status row: its slot's state and its running worker's report."""
        wall_now = time.time() if wall_now is None else wall_now
        slot = self.slots.get(key)
        if slot is None:  # configured, never started (stopped before it began)
            return WorkerStatus.for_config(
                self._configs[key], state=SlotState.STOPPED, since=self._started_at
            )
        # An ended slot shows the configured entry (a reload may have changed it meanwhile).
        config = self._configs.get(key, slot.config) if slot.done.is_set() else slot.config
        report = slot.live_report
        degraded = report is not None and report.degraded
        return WorkerStatus.for_config(
            config,
            state=DEGRADED if degraded else slot.state.value,
            since=wall_now - (trio.current_time() - slot.since),
            restarts=slot.restarts,
            last_error=external(report.opencode_error, 500) if degraded and report else slot.last_error,
            active_sessions=report.active_sessions if report is not None else 0,
            turns_in_flight=report.turns_in_flight if report is not None else 0,
            opencode_pid=report.opencode_pid if report is not None else None,
            opencode_server=report.opencode_server if report is not None else "own",
        )

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
                await self._changes.wait_value(lambda v: v != seen)  # noqa: B023 - the predicate is awaited in this iteration

    async def _notify_ready(self) -> None:
        """READY=1 once every worker made its first attempt, then STATUS= kept current."""
        await self.started.wait()
        for slot in list(self.slots.values()):
            await trio_util.wait_any(slot.first_attempt_done.wait, slot.done.wait)
        rows = self.workers()
        sent = status_line(rows)
        self._notifier.notify(f"READY=1\nSTATUS={sent}")
        ready = sum(1 for row in rows if row.state == SlotState.READY)
        log.info("all workers made their first start attempt (%d of %d ready)", ready, len(rows))
        while True:
            seen = self._changes.value
            await self._changes.wait_value(lambda v: v != seen)  # noqa: B023 - the predicate is awaited in this iteration
            if self.stopping:
                return  # STOPPING=1 said it; systemd shows "deactivating"
            line = status_line(self.workers())
            if line != sent:
                self._notifier.notify(f"STATUS={line}")
                sent = line

    async def _watchdog_pings(self, interval: float) -> None:
        while True:
            self._notifier.notify("WATCHDOG=1")
            await trio.sleep(interval)
