"""One worker's OpenCode server: started on the first turn, stopped when idle, restarted after a crash.

OpenCode costs about 700 MB while it runs, so a worker keeps it only while turns need it
(reference §9.3-28 never stopped it). Turns borrow the server through `lease()`; the host task
owns the process and is the only one that starts or stops it.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio
import trio_util

from oco.config import write_private_file
from oco.errors import OcoError
from oco.opencode import OpenCodeServer, OpenCodeStartError, open_opencode_server

log = logging.getLogger(__name__)

CRASH_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


def _sweep_orphan(pid_file: Path, directory: Path) -> None:
    """Kill an OpenCode that a previous run of this worker left behind (it was SIGKILLed).

    OpenCode runs in its own process group, so it outlives a killed parent. The pid is only
    trusted while it still names an `opencode serve` in this worker's directory.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        same_directory = Path(os.readlink(f"/proc/{pid}/cwd")) == directory.resolve()
        serving = b"serve" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        same_directory = serving = False
    if same_directory and serving:
        log.warning("stopping OpenCode (pid %d) left running by a previous run", pid)
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    pid_file.unlink(missing_ok=True)


class OpenCodeUnavailable(OcoError):
    """OpenCode could not be started for a turn; the message says why in user terms."""


@attrs.frozen
class _HostState:
    attempt: int = 0  # start attempts so far
    server: OpenCodeServer | None = None
    error: str | None = None  # why the latest attempt failed


class OpenCodeHost:
    """Owns the `opencode serve` process of one working directory."""

    def __init__(
        self,
        opencode_bin: str,
        directory: Path,
        *,
        env: Mapping[str, str] | None,
        start_timeout: float,
        idle_timeout: float,
        pid_file: Path | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        """`secrets` (the worker's token and its secret) are kept out of OpenCode's environment,
        with every worker token and trio-oco variable (`oco.opencode.opencode_environment`)."""
        self._bin = opencode_bin
        self._pid_file = pid_file
        self._directory = directory
        self._env = env
        self._secrets = tuple(secrets)
        self._start_timeout = start_timeout
        self._idle_timeout = idle_timeout
        self._users = trio_util.AsyncValue(0)
        self._state = trio_util.AsyncValue(_HostState())

    @property
    def pid(self) -> int | None:
        server = self._state.value.server
        return server.pid if server is not None else None

    async def run(self) -> None:
        """The host task: start on demand, stop when idle, back off when starts or the process fail."""
        failures = 0
        if self._pid_file is not None:
            _sweep_orphan(self._pid_file, self._directory)
        while True:
            await self._users.wait_value(lambda n: n > 0)
            attempt = self._state.value.attempt + 1
            self._state.value = _HostState(attempt=attempt)
            crashed = False
            try:
                async with open_opencode_server(
                    self._bin,
                    self._directory,
                    env=self._env,
                    secrets=self._secrets,
                    start_timeout=self._start_timeout,
                ) as server:
                    log.info("OpenCode started (pid %s)", server.pid)
                    self._state.value = _HostState(attempt=attempt, server=server)
                    if self._pid_file is not None:
                        write_private_file(self._pid_file, f"{server.pid}\n")
                    try:
                        crashed = await self._serve(server)
                    finally:
                        if self._pid_file is not None:
                            self._pid_file.unlink(missing_ok=True)
                    # Withdraw the server before it stops, so no new turn borrows a dying process.
                    self._state.value = _HostState(attempt=attempt)
                    if crashed:
                        log.warning(
                            "OpenCode stopped unexpectedly (exit code %s)", server.exit_code
                        )
                    else:
                        log.info("OpenCode stopped after %.0f s without turns", self._idle_timeout)
            except OpenCodeStartError as exc:
                log.error("OpenCode failed to start: %s", exc)
                self._state.value = _HostState(attempt=attempt, error=f"OpenCode failed to start: {exc}")
                crashed = True
            if crashed:
                if self._state.value.error is None:
                    self._state.value = _HostState(
                        attempt=attempt, error="OpenCode stopped unexpectedly"
                    )
                failures += 1
                await trio.sleep(CRASH_BACKOFF[min(failures, len(CRASH_BACKOFF)) - 1])
            else:
                failures = 0

    async def _serve(self, server: OpenCodeServer) -> bool:
        """Keep the server while it is used; True when it crashed, False when it went idle."""
        while True:
            await trio_util.wait_any(
                server.crashed.wait,
                lambda: self._users.wait_value(lambda n: n == 0),
            )
            if server.crashed.is_set():
                return True
            with trio.move_on_after(self._idle_timeout) as idle:
                await trio_util.wait_any(
                    server.crashed.wait,
                    lambda: self._users.wait_value(lambda n: n > 0),
                )
            if server.crashed.is_set():
                return True
            if idle.cancelled_caught:
                return False

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[OpenCodeServer]:
        """Borrow the running server for one turn, starting it if needed."""
        seen_attempt = self._state.value.attempt
        self._users.value += 1
        try:
            state = await self._state.wait_value(
                lambda s: s.server is not None or (s.error is not None and s.attempt > seen_attempt)
            )
            if state.server is None:
                raise OpenCodeUnavailable(state.error or "OpenCode is not available")
            yield state.server
        finally:
            self._users.value -= 1
