"""The process root: one nursery, one supervised slot per worker, signals, and the stop sequence.

Stop is three-phase: the first SIGINT/SIGTERM cancels the workers' scope and every worker runs
its shielded cleanup under one shared deadline (`shutdown_timeout_s`); a second signal, or the
deadline, cuts cleanups short and kills OpenCode process groups; a watchdog thread makes sure the
process ends even if the loop is blocked. Exit 0 when everything stopped cleanly, 1 otherwise.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import trio

from oco.config import Settings, WorkerConfig
from oco.convex import ConvexClient, shared_convex_client
from oco.worker import StopControl, Worker

from ._policy import RestartPolicy
from ._supervisor import ConvexFor, WorkerSlot

log = logging.getLogger(__name__)

FORCE_EXIT_AFTER_S = 1.0  # a forced stop ends the process within this, whatever the loop does


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Orchestrator:
    """Runs a set of workers until stopped; `run()` returns the process exit code."""

    def __init__(
        self,
        workers: Mapping[str, WorkerConfig],
        settings: Settings,
        *,
        worker_factory: Callable[[WorkerConfig, ConvexClient, StopControl], Worker],
        convex_for: ConvexFor = shared_convex_client,
        policy: RestartPolicy | None = None,
        shutdown_timeout: float | None = None,
        handle_signals: bool = True,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.stop = StopControl()
        self.shutdown_timeout = settings.shutdown_timeout_s if shutdown_timeout is None else shutdown_timeout
        self._factory = worker_factory
        self._convex_for = convex_for
        self._policy = policy or RestartPolicy()
        self._handle_signals = handle_signals
        self._on_change = on_change
        self.slots: dict[str, WorkerSlot] = {}
        self._scopes: dict[str, trio.CancelScope] = {}
        self._pending = dict(workers)
        self._nursery: trio.Nursery | None = None
        self._root: trio.Nursery
        self._workers_scope = trio.CancelScope()
        self.started = trio.Event()
        self.stopping = False
        self._watchdog: threading.Timer | None = None

    # -- running --------------------------------------------------------------------------

    async def run(self) -> int:
        async with trio.open_nursery() as root:
            self._root = root
            if self._handle_signals:
                await root.start(self._watch_signals)
            with self._workers_scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    for config in self._pending.values():
                        self._start_slot(config)
                    self._pending.clear()
                    self.started.set()
                    await trio.sleep_forever()
            root.cancel_scope.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
        clean = not (self.stop.forced or self.stop.cut_short)
        log.info("stopped %s", "cleanly" if clean else "(forced)")
        return 0 if clean else 1

    def _start_slot(self, config: WorkerConfig) -> None:
        assert self._nursery is not None
        slot = WorkerSlot(
            config,
            lambda convex: self._factory(config, convex, self.stop),
            self._convex_for,
            self._policy,
        )
        self.slots[config.key] = slot
        scope = trio.CancelScope()
        self._scopes[config.key] = scope

        async def supervised() -> None:
            with scope:
                await slot.run()

        self._nursery.start_soon(supervised, name=f"worker {config.name}")

    async def stop_slot(self, key: str) -> None:
        """Stop one worker (reload removed or changed it) and wait until its cleanup is done."""
        slot = self.slots.pop(key, None)
        scope = self._scopes.pop(key, None)
        if scope is not None:
            scope.cancel(reason="reload")
        if slot is not None and slot.worker is not None:
            await slot.worker.state.wait_value(lambda s: s.value in ("stopped", "failed"))

    # -- stopping -------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Graceful stop: every worker cleans up concurrently under one deadline."""
        if self.stopping:
            self.force(f"{reason} again")
            return
        self.stopping = True
        log.info("stopping (%s); waiting up to %.0f s for workers to clean up", reason, self.shutdown_timeout)
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
        log.warning("forcing the stop (%s)", reason)
        self.stopping = True
        self.stop.force()
        self._workers_scope.cancel(reason=f"forced: {reason}")
        for slot in self.slots.values():
            if slot.worker is not None:
                _kill_group(slot.worker.host.pid)
        self._arm_watchdog(FORCE_EXIT_AFTER_S)

    def _arm_watchdog(self, seconds: float) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()

        def expire() -> None:
            sys.stderr.write("trio-oco: the stop did not finish in time; exiting now\n")
            faulthandler.dump_traceback(all_threads=True)
            for slot in list(self.slots.values()):
                if slot.worker is not None:
                    _kill_group(slot.worker.host.pid)
            os._exit(1)

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
                    log.info("SIGHUP received")
                    self.on_sighup()
                else:
                    self.request_stop(name)

    def on_sighup(self) -> None:
        """Reload hook; the `run` command installs one that re-reads workers.json."""
        log.info("reload is not available in this mode")
