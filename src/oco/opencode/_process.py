"""`opencode serve` as a child process owned by an async context manager.

Fixes of the reference worker: the server runs in the working directory,
picks its own port (`--port 0`, read back from its "listening on" line: no check-then-use
race), requires a random per-start password, is killed on a failed start, and is always
stopped (SIGTERM to its process group, SIGKILL after a grace period) and reaped when the
block ends, also by cancellation. Its output is drained into DEBUG logs with a bounded,
escaped tail. While it runs it must answer a health check every `health_interval` seconds;
one that does not is killed (it is stuck: alive, not answering), which ends its turns.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from secrets import token_urlsafe

import trio

from oco._text import external

from ._client import OpenCodeClient
from ._environment import opencode_environment
from ._errors import OpenCodeError, OpenCodeStartError
from ._events import EventHub
from ._identity import INSTANCE_VARIABLE, ProcessIdentity, identify
from ._server import HEALTH_INTERVAL, HEALTH_TIMEOUT, OpenCodeServer
from ._startup import fresh_home, start_ticket

log = logging.getLogger("oco.opencode.process")

# Only a loopback URL is believed: we start it with --hostname 127.0.0.1, and the client
# sends the password wherever this line points.
_LISTENING = re.compile(rb"opencode server listening on (http://127\.0\.0\.1:\d{1,5})(?![\d])")
STOP_GRACE = 5.0
KILL_GRACE = 2.0  # a server that stopped answering gets this long to honour SIGTERM
TAIL_LINES = 50  # lines of output kept for error messages
TAIL_LINE_CHARS = 300  # each one escaped and cut to this length


class _Output:
    """Drains the child's stdout+stderr: DEBUG log lines, a bounded tail, the listening URL."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.url: str | None = None
        self.settled = trio.Event()  # listening line seen, or output closed

    async def drain(self, stream: trio.abc.ReceiveStream) -> None:
        pending = b""
        try:
            while chunk := await stream.receive_some(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._line(line)
                if len(pending) > 65536:  # a runaway line: keep memory bounded
                    self._line(pending)
                    pending = b""
            if pending:
                self._line(pending)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.settled.set()

    def _line(self, raw: bytes) -> None:
        if self.url is None and (match := _LISTENING.search(raw)):
            self.url = match.group(1).decode()
            self.settled.set()
        text = raw.decode(errors="replace").rstrip()
        if text:
            # OpenCode's output is not ours: no escape sequence reaches a terminal or log.
            line = external(text, TAIL_LINE_CHARS)
            self.tail.append(line)
            log.debug("opencode[%d]: %s", self.pid, line)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


async def _stop(process: trio.Process, grace: float) -> None:
    """SIGTERM the group, wait up to `grace`, then SIGKILL; always reap."""
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGTERM)
        _signal_group(process.pid, signal.SIGCONT)  # a stopped process handles SIGTERM only once resumed
        with trio.move_on_after(grace):
            await process.wait()
    # SIGKILL whatever is left of the group (the server itself, or tool processes it spawned).
    _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


@asynccontextmanager
async def open_opencode_server(
    bin: str,
    directory: Path,
    *,
    env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    start_timeout: float = 15.0,
    health_interval: float = HEALTH_INTERVAL,
    health_timeout: float = HEALTH_TIMEOUT,
    global_events: bool = False,
) -> AsyncIterator[OpenCodeServer]:
    """Start `opencode serve` in `directory`; yield it ready (health checked, events flowing).

    Its environment is `env` (default `os.environ`) without trio-oco's own secrets and
    variables (`opencode_environment`; `secrets` adds the configured ones), plus the marker
    of its `identity`. While the block runs, it must answer a health check every
    `health_interval` seconds within `health_timeout`; when it does not, it is killed and
    `crashed` is set (with `stopped_answering`). `global_events`: its hub reads `/global/event`,
    which carries every directory's events and outlives a directory's instance (a reload
    disposes it; a `/event?directory=` stream ends with it). Workers' hosts always ask for it;
    a server shared by several directories (`directory` is then only its working directory)
    needs it, and each worker talks to that one through `oco.opencode.view`.
    """
    password = token_urlsafe(24)
    child_env = opencode_environment(os.environ if env is None else env, secrets)
    # OpenCode reads the password only from its environment, so the agent's tools see it too
    # (they inherit OpenCode's). It guards a loopback server started for this run alone.
    child_env["OPENCODE_SERVER_PASSWORD"] = password
    instance = uuid.uuid4().hex
    child_env[INSTANCE_VARIABLE] = instance  # read back by a later run's stale-pid sweep
    if fresh_home(child_env):
        log.info("starting OpenCode (first start in a fresh home can take ~30 s)")
    else:
        log.info("starting OpenCode")
    ticket = await start_ticket(child_env)  # a fresh home's first start goes alone
    try:
        process = await trio.lowlevel.open_process(
            [bin, "serve", "--hostname", "127.0.0.1", "--port", "0"],
            cwd=str(directory),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so we can stop everything it spawns
        )
    except OSError as exc:
        ticket.release()
        raise OpenCodeStartError(f"cannot run {bin}: {exc.strerror or exc}", []) from exc
    identity = identify(process.pid, instance)  # read now, while the pid surely is this process
    watch = _ExitWatch(process)
    try:
        with _single_errors():
            async with trio.open_nursery() as nursery:
                try:
                    server = await _start(
                        nursery,
                        watch,
                        password,
                        directory,
                        start_timeout,
                        identity,
                        health_timeout,
                        global_events,
                    )
                    ticket.succeeded()  # it answered: its database is migrated
                finally:
                    ticket.release()
                nursery.start_soon(_replace_when_asked, server)
                nursery.start_soon(_keep_checking, server, health_interval)
                try:
                    yield server
                finally:
                    watch.stopping = True
                    nursery.cancel_scope.cancel()
    finally:
        watch.stopping = True
        # Stop and reap even when we are being cancelled: never leave an orphan server.
        with trio.move_on_after(STOP_GRACE + 2, shield=True):
            await _stop(process, STOP_GRACE)
        if process.returncode is None:
            log.error("opencode[%d] could not be reaped", process.pid)


class _ExitWatch:
    """Notices the process ending; unless we were stopping it, that is a crash."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output = _Output(process.pid)
        self.stopping = False
        self.server: OpenCodeServer | None = None
        self.hub_scope = trio.CancelScope()

    async def run(self) -> None:
        await self.process.wait()
        self.output.settled.set()
        self.hub_scope.cancel()  # nothing left to read events from
        if self.stopping:
            return
        if self.server is not None and self.server.stopped_answering:
            log.info("opencode[%d] stopped (exit code %s)", self.process.pid, self.process.returncode)
        else:
            log.warning(
                "opencode[%d] exited unexpectedly (exit code %s)", self.process.pid, self.process.returncode
            )
        if self.server is not None:
            self.server.crashed.set()
            self.server.events.close()  # in-flight turns end now, with a crash error


async def _replace_when_asked(server: OpenCodeServer) -> None:
    """Kill the server once it is reported unresponsive; the exit watch then ends its turns."""
    await server.wait_reported()
    await _stop(server.process, KILL_GRACE)


async def _keep_checking(server: OpenCodeServer, interval: float) -> None:
    """A health check every `interval` seconds while the server runs, leased or idle."""
    while not server.lost:
        await trio.sleep(interval)
        await server.check_health()


async def _start(
    nursery: trio.Nursery,
    watch: _ExitWatch,
    password: str,
    directory: Path,
    timeout: float,
    identity: ProcessIdentity | None,
    health_timeout: float,
    global_events: bool,
) -> OpenCodeServer:
    """Start the output drain and exit watch, wait until the server answers, open its events."""
    process, output = watch.process, watch.output
    assert process.stdout is not None
    nursery.start_soon(output.drain, process.stdout)
    nursery.start_soon(watch.run)
    try:
        with trio.fail_after(timeout):
            base_url = await _wait_started(process, output, password, directory)
            client = OpenCodeClient(base_url, password, directory)
            nursery.start_soon(_close_client_at_exit, client)
            hub = EventHub(client, global_stream=global_events)
            watch.server = OpenCodeServer(
                process, base_url, client, hub, output.tail, identity=identity, health_timeout=health_timeout
            )

            async def run_hub(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                with watch.hub_scope:
                    await hub.run(task_status=task_status)
                if hub.connections == 0:  # the process died before its event stream opened
                    raise OpenCodeStartError(f"exited with code {process.returncode}", list(output.tail))

            await nursery.start(run_hub)
    except trio.TooSlowError:
        raise OpenCodeStartError(f"no answer within {timeout:g} s", list(output.tail)) from None
    log.debug("opencode[%d] serving %s at %s", process.pid, directory, base_url)  # the host says "ready"
    return watch.server


@contextmanager
def _single_errors() -> Iterator[None]:
    """Re-raise a lone error out of a nursery's exception group, so callers see `OpenCodeStartError`
    (or their own block's exception) as such rather than wrapped."""
    try:
        yield
    except ExceptionGroup as group:
        if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
            lone = group.exceptions[0]
            raise lone from lone.__cause__
        raise


async def _close_client_at_exit(client: OpenCodeClient) -> None:
    try:
        await trio.sleep_forever()
    finally:
        # Closing idle httpx connections is quick; shielded so cancellation still releases them.
        with trio.move_on_after(1, shield=True):
            await client.aclose()


async def _wait_started(process: trio.Process, output: _Output, password: str, directory: Path) -> str:
    """The base URL once the server said it listens and answers its health check."""
    await output.settled.wait()
    if output.url is None:
        await process.wait()
        raise OpenCodeStartError(f"exited with code {process.returncode}", list(output.tail))
    client = OpenCodeClient(output.url, password, directory)
    try:
        while True:
            try:
                health = await client.health()
            except OpenCodeError as exc:
                if process.returncode is not None:
                    raise OpenCodeStartError(
                        f"exited with code {process.returncode}", list(output.tail)
                    ) from exc
                if exc.status is not None:
                    raise OpenCodeStartError(
                        f"health check failed: {exc.summary}", list(output.tail)
                    ) from exc
                await trio.sleep(0.05)  # the line can come before the socket accepts
                continue
            if isinstance(health, dict) and health.get("healthy"):
                return output.url
            raise OpenCodeStartError(f"unhealthy: {external(repr(health), 200)}", list(output.tail))
    finally:
        with trio.move_on_after(1, shield=True):  # release the probe's connections
            await client.aclose()
