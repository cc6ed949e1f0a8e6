"""One worker's OpenCode server: started on demand, stopped when idle, replaced when it fails.

OpenCode costs about 700 MB while it runs, so a worker keeps it only while turns need it
(the reference worker never stopped it). Turns borrow the server through `lease()`; the host task
owns the process and is the only one that starts or stops it. A server that crashes, or that
stops answering its health checks (then it is killed), is replaced on the next turn, not
sooner than the `OPENCODE_RESTART` policy allows.

With `opencode_server: "shared"` the same class serves twice. The orchestrator owns one host per
OpenCode environment (`shared=True`: its server runs in a neutral directory and reads every
directory's events), and each worker has a host built with `share=`: its `run()` borrows the
shared host for as long as the worker serves, and its `lease()` leases the shared server and lends
the turn a view bound to the worker's directory. The shared host's own task starts, stops,
health-checks and restarts the process for all of them, so a crash is one restart, never a
worker restart.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path

import attrs
import trio
import trio_util

from oco._retry import OPENCODE_RESTART, Streak
from oco.config import write_private_file
from oco.errors import Unavailable
from oco.opencode import (
    HEALTH_INTERVAL,
    HEALTH_TIMEOUT,
    UNRESPONSIVE_NOTE,
    OpenCodeError,
    OpenCodeServer,
    OpenCodeStartError,
    encode_identity,
    leftover_pid,
    open_opencode_server,
    view,
)

from ._models import config_identity

log = logging.getLogger(__name__)

LEASE_REPLACEMENTS = 2  # servers a lease lets fail their pre-lend check before it gives up
# A stop waits this long for this worker's turns to abort their sessions before it gives its
# share back (an abort at a stop is bounded by 5 s: `ABORT_GRACE` in oco.opencode._turn).
SHARE_RELEASE_GRACE_S = 6.0
PID_FILE_MAX_BYTES = 4096  # an identity record is ~200 bytes


def _sweep_orphan(pid_file: Path) -> None:
    """Kill an OpenCode that a previous run of this worker left behind (it was SIGKILLed).

    OpenCode runs in its own process group, so it outlives a killed parent. The pid file
    records the server's identity (pid, start time, executable, environment marker); only a
    process that matches all of it, and still leads its own group, is ours. Anything else
    (a reused pid, an old bare-pid file) is left alone.
    """
    try:
        with pid_file.open("rb") as recorded:
            text = recorded.read(PID_FILE_MAX_BYTES).decode(errors="replace")
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("cannot read %s (%s); not sweeping", pid_file, describe_os_error(exc))
        return
    pid = leftover_pid(text)
    if pid is not None:
        log.warning("stopping OpenCode (pid %d) left running by a previous run", pid)
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:
        log.debug("%s names no OpenCode of ours; leaving its pid alone", pid_file)
    try:
        pid_file.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove %s (%s)", pid_file, describe_os_error(exc))


def describe_os_error(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


OWN_SERVER = "own"  # `server_label` of a worker running its own server


@attrs.frozen
class OpenCodeShare:
    """A worker's share of the orchestrator's host for its OpenCode environment: `borrow()` lends
    it for an `async with` block; `label` names that server in status ("shared 1a2b3c4d")."""

    label: str
    borrow: Callable[[], AbstractAsyncContextManager[OpenCodeHost]]


@attrs.define
class DirectoryTurns:
    """The turns in flight in one directory on one server, and the lock each passes before it
    is lent the server (a configuration reload holds it: `OpenCodeHost._reload_if_changed`)."""

    count: int = 0
    reload_lock: trio.Lock = attrs.field(factory=trio.Lock)


class OpenCodeUnavailable(Unavailable):
    """OpenCode cannot serve a turn (it did not start, stopped answering or failed a call);
    the message says why in words a chat reply can carry."""


@attrs.frozen
class _HostState:
    attempt: int = 0  # start attempts so far
    server: OpenCodeServer | None = None
    error: str | None = None  # why the latest attempt failed
    start_failure: str | None = None  # why the latest start failed, until a start succeeds


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
        health_interval: float = HEALTH_INTERVAL,
        health_timeout: float = HEALTH_TIMEOUT,
        shared: bool = False,
        share: OpenCodeShare | None = None,
    ) -> None:
        """`secrets` (the worker's token and its secret) are kept out of OpenCode's environment,
        with every worker token and trio-oco variable (`oco.opencode.opencode_environment`).
        A server that misses a health check (every `health_interval` s, within
        `health_timeout` s, and before it is lent after being idle) is killed and replaced.
        `shared`: this host's server serves several directories (see the module docstring);
        `share`: this worker borrows a shared host instead of running a server of its own."""
        self._bin = opencode_bin
        self._pid_file = pid_file
        self._pid_file_warned = False
        self._directory = directory
        self._env = env
        self._secrets = tuple(secrets)
        self._start_timeout = start_timeout
        self._idle_timeout = idle_timeout
        self._health_interval = health_interval
        self._health_timeout = health_timeout
        self._users = trio_util.AsyncValue(0)
        self._state = trio_util.AsyncValue(_HostState())
        self._shared = shared
        self._share = share
        self._borrowed: trio_util.AsyncValue[OpenCodeHost | None] = trio_util.AsyncValue(None)
        # The server and configuration identity this directory was last loaded with in OpenCode.
        self._loaded: tuple[int, str] | None = None
        self._turns_in: dict[str, DirectoryTurns] = {}  # a shared host's, by directory
        self._own_turns = DirectoryTurns()  # an own server's (it serves one directory)

    @property
    def server_label(self) -> str:
        """Which server this worker's turns use: `own`, or the shared server's label."""
        return self._share.label if self._share is not None else OWN_SERVER

    def retime(self, *, start_timeout: float, idle_timeout: float) -> None:
        """New timeouts (a reload): the start timeout counts from the next start, the idle
        timeout from the next time the server becomes idle."""
        self._start_timeout = start_timeout
        self._idle_timeout = idle_timeout
        if self._borrowed.value is not None:  # a shared server: its host has the timeouts that count
            self._borrowed.value.retime(start_timeout=start_timeout, idle_timeout=idle_timeout)

    @property
    def pid(self) -> int | None:
        if self._share is not None:
            borrowed = self._borrowed.value
            return borrowed.pid if borrowed is not None else None
        server = self._state.value.server
        return server.pid if server is not None else None

    @property
    def start_failure(self) -> str | None:
        """Why OpenCode last failed to start (binary missing, exited at once, no answer in
        time), until a later start succeeds: the worker is degraded meanwhile. A worker sharing
        a server reports the shared server's."""
        if self._share is not None:
            borrowed = self._borrowed.value
            return borrowed.start_failure if borrowed is not None else None
        return self._state.value.start_failure

    async def wait_pid_change(self, pid: int | None, start_failure: str | None = None) -> None:
        """Return once `pid` is no longer the running server's (one started, or it went), or
        the start failure is no longer `start_failure`."""
        if self._share is not None:
            while (self.pid, self.start_failure) == (pid, start_failure):
                borrowed = self._borrowed.value
                if borrowed is None:
                    await self._borrowed.wait_transition()
                else:
                    await trio_util.wait_any(
                        self._borrowed.wait_transition,
                        lambda: borrowed.wait_pid_change(pid, start_failure),  # noqa: B023 - awaited in this iteration
                    )
            return
        await self._state.wait_value(
            lambda s: (
                (s.server.pid if s.server is not None else None) != pid or s.start_failure != start_failure
            )
        )

    async def run(self) -> None:
        """The host task: start on demand, stop when idle, back off when starts or the process fail.

        A worker's host with `share=` instead holds its share of the shared host until cancelled."""
        if self._share is not None:
            await self._hold_share(self._share)
            return
        crashes = Streak(OPENCODE_RESTART)
        if self._pid_file is not None:
            _sweep_orphan(self._pid_file)
        while True:
            await self._users.wait_value(lambda n: n > 0)
            attempt = self._state.value.attempt + 1
            self._state.value = _HostState(attempt=attempt, start_failure=self._state.value.start_failure)
            crashed = False
            starting_at = trio.current_time()
            try:
                async with open_opencode_server(
                    self._bin,
                    self._directory,
                    env=self._env,
                    secrets=self._secrets,
                    start_timeout=self._start_timeout,
                    health_interval=self._health_interval,
                    health_timeout=self._health_timeout,
                    # Own servers too: a directory's `/event` stream ends with its instance,
                    # which a configuration reload disposes (`_reload_if_changed`).
                    global_events=True,
                ) as server:
                    log.info(
                        "OpenCode ready in %.1f s (pid %s)", trio.current_time() - starting_at, server.pid
                    )
                    self._state.value = _HostState(attempt=attempt, server=server)  # no start failure now
                    self._record(server)
                    try:
                        crashed = await self._serve(server)
                    finally:
                        self._forget()
                    # Withdraw the server before it stops, so no new turn borrows a dying process.
                    self._state.value = _HostState(attempt=attempt)
                    if server.stopped_answering:
                        log.warning(
                            "OpenCode (pid %s) stopped answering; the next turn starts a new one", server.pid
                        )
                    elif crashed:
                        log.warning("OpenCode stopped unexpectedly (exit code %s)", server.exit_code)
                    else:
                        log.info("OpenCode stopped after %.0f s without turns", self._idle_timeout)
            except OpenCodeStartError as exc:
                log.error("OpenCode failed to start: %s", exc)
                failure = f"OpenCode failed to start: {exc}"
                self._state.value = _HostState(attempt=attempt, error=failure, start_failure=failure)
                crashed = True
            if crashed:
                if self._state.value.error is None:
                    self._state.value = _HostState(
                        attempt=attempt,
                        error="OpenCode stopped unexpectedly",
                        start_failure=self._state.value.start_failure,
                    )
                await trio.sleep(crashes.lost(trio.current_time()))
            else:
                crashes.reset()

    async def _hold_share(self, share: OpenCodeShare) -> None:
        """Borrow the shared host until cancelled; its owner raises `ResourceLost` if it fails."""
        async with share.borrow() as shared:
            self._borrowed.value = shared
            try:
                await trio.sleep_forever()
            finally:
                # A stop cancels this together with the worker's turns, which abort their
                # OpenCode sessions in their cleanup: keep the share until they have (bounded
                # like an abort), or the last worker leaving would stop the server under them.
                with trio.move_on_after(SHARE_RELEASE_GRACE_S, shield=True):
                    await self._users.wait_value(lambda n: n == 0)
                self._borrowed.value = None

    def _record(self, server: OpenCodeServer) -> None:
        """Write the server's identity for a later run's sweep. A failed write costs only that
        sweep, never the server: logged once."""
        if self._pid_file is None or server.identity is None:
            return
        try:
            write_private_file(self._pid_file, encode_identity(server.identity))
        except OSError as exc:
            self._warn_pid_file(f"cannot write {self._pid_file} ({describe_os_error(exc)})")

    def _forget(self) -> None:
        if self._pid_file is None:
            return
        try:
            self._pid_file.unlink(missing_ok=True)
        except OSError as exc:
            self._warn_pid_file(f"cannot remove {self._pid_file} ({describe_os_error(exc)})")

    def _warn_pid_file(self, problem: str) -> None:
        if not self._pid_file_warned:
            self._pid_file_warned = True
            log.warning(
                "%s; an OpenCode left by a crash of this run will not be stopped by the next one", problem
            )

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
        """Borrow a running server for one turn, starting it if needed.

        A server that has been idle is health-checked before it is lent; one that fails is
        replaced and the lease waits for the new one. An `OpenCodeError` from the block (a
        call to OpenCode that failed) leaves as `OpenCodeUnavailable` with a readable reason,
        after checking whether the server still answers. A worker sharing a server gets the
        shared server's view bound to its directory.
        """
        if self._share is not None:
            shared = await self._borrowed.wait_value(lambda h: h is not None)
            assert shared is not None
            self._users.value += 1  # this worker's turns on the shared server (see `_hold_share`)
            try:
                async with shared.lease() as server:
                    with shared.turn_in(self._directory) as here:
                        mine = view(server, self._directory)
                        await self._reload_if_changed(mine, here)
                        yield mine
            finally:
                self._users.value -= 1
            return
        seen_attempt = self._state.value.attempt
        was_idle = self._users.value == 0
        self._users.value += 1
        self._own_turns.count += 1
        try:
            server = await self._usable_server(seen_attempt, was_idle)
            if not self._shared:  # a shared server's directory is neutral; its borrowers reload theirs
                await self._reload_if_changed(server, self._own_turns)
            try:
                yield server
            except OpenCodeError as exc:
                raise await self._unavailable(server, exc) from exc
            except ExceptionGroup as group:
                matched, rest = group.split(OpenCodeError)
                if matched is None or rest is not None:
                    raise
                first = _first_leaf(matched)
                raise await self._unavailable(server, first) from group
        finally:
            self._users.value -= 1
            self._own_turns.count -= 1

    @contextmanager
    def turn_in(self, directory: Path) -> Iterator[DirectoryTurns]:
        """(A shared host) count a turn in `directory` for the block; yields that directory's
        record, which two workers in one directory share."""
        key = os.path.realpath(directory)
        here = self._turns_in.setdefault(key, DirectoryTurns())
        here.count += 1
        try:
            yield here
        finally:
            here.count -= 1
            if here.count == 0:
                del self._turns_in[key]

    async def _reload_if_changed(self, server: OpenCodeServer, here: DirectoryTurns) -> None:
        """Have OpenCode reload this directory if its configuration changed since it was loaded.

        OpenCode reads a directory's configuration (project and global config files, stored
        provider logins) when it first serves it and keeps it for the server's life, so a model
        added since would be unknown to the turn. Disposing the directory's instance
        (`POST /instance/dispose`, sessions kept, other directories untouched) makes the turn
        load it afresh. While another turn runs in the directory (a chat of this worker, or
        another worker there on a shared server) it is left to a later turn rather than delay
        this one or break that one; a failed reload leaves the turn on the old configuration,
        with a warning. `here`: the turns in flight in this directory on this server, this one
        included (any worker's, on a shared server), and the lock each passes before it is lent
        the server."""
        identity = config_identity(self._directory, self._env)  # a few small files
        async with here.reload_lock:
            loaded = self._loaded
            if loaded is None or loaded[0] != server.pid:
                self._loaded = (server.pid, identity)  # a new server loads what is there now
                return
            if loaded[1] == identity or here.count > 1:
                return
            log.info("the project's OpenCode configuration changed; OpenCode reloads it")
            try:
                await server.client.request("POST", "/instance/dispose")
            except OpenCodeError as exc:
                log.warning("could not have OpenCode reload the project's configuration: %s", exc)
            self._loaded = (server.pid, identity)

    async def _usable_server(self, seen_attempt: int, was_idle: bool) -> OpenCodeServer:
        for _ in range(LEASE_REPLACEMENTS + 1):
            state = await self._state.wait_value(
                lambda s: (
                    (s.server is not None and not s.server.lost)
                    or (s.error is not None and s.attempt > seen_attempt)  # noqa: B023 - awaited in this iteration
                )
            )
            if state.server is None:
                raise OpenCodeUnavailable(state.error or "OpenCode is not available")
            server = state.server
            # Idle, nothing would have noticed it stop answering since the last periodic check.
            if not was_idle or await server.check_health():
                return server
            seen_attempt = state.attempt  # it is being replaced: wait for the next one
        raise OpenCodeUnavailable(UNRESPONSIVE_NOTE)

    async def _unavailable(self, server: OpenCodeServer, exc: OpenCodeError) -> OpenCodeUnavailable:
        """What to tell the chat when a call to OpenCode failed during a turn."""
        if not server.lost and exc.status is None:
            await server.check_health()  # unreachable or timed out: is it still there?
        if server.lost:
            log.info("turn ended: %s", server.failure_message())
            return OpenCodeUnavailable(server.failure_message())
        log.warning("OpenCode call failed during a turn: %s", exc)
        return OpenCodeUnavailable(f"OpenCode failed: {exc.summary}")


def _first_leaf(group: BaseExceptionGroup) -> OpenCodeError:
    for exc in group.exceptions:
        leaf = _first_leaf(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(leaf, OpenCodeError):
            return leaf
    raise AssertionError("split() kept a group without an OpenCodeError")
