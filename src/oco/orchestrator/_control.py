"""Control commands for a running orchestrator, and the one serialised path they all take.

Every command that changes which workers run (start, stop or restart one worker, reload the
configuration) is put on one memory channel and carried out by one task, one command at a
time, in the order they came (circus's controller, OTP's supervisor mailbox). So no two
commands ever interleave their awaits: a reload and a restart of the same worker cannot both
start it, and a command sees the effects of every command before it. A command carries a
`Reply`; the caller awaits it for the result or the error (a `ControlError`, one line).

The process stop is deliberately not a command: a stop must act at once, even while a command
waits for a worker that hangs in its cleanup.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any

import attrs
import trio

from oco._text import external
from oco.config import WorkerConfig
from oco.errors import OcoError

from ._status import WorkerStatus


class Action(enum.Enum):
    """What a command asks for; the value is the command's name (a control protocol's verb)."""

    START = "start"
    STOP = "stop"
    RESTART = "restart"
    RELOAD = "reload"


class ControlError(OcoError):
    """A command could not be carried out; the message says why in one line."""


class UnknownWorker(ControlError):
    """No configured worker has that key, worker id or name."""


class OrchestratorStopping(ControlError):
    """The orchestrator is stopping (or stopped) and takes no more commands."""

    def __init__(self) -> None:
        super().__init__("the orchestrator is stopping; no more commands are carried out")


class ReloadUnavailable(ControlError):
    """This mode has no configuration file to reload (dev mode)."""


@attrs.frozen
class WorkerChange:
    """The result of a start, stop or restart: the worker's row afterwards, and whether the
    command changed anything (False: it was already running, or already stopped)."""

    status: WorkerStatus
    changed: bool


class Reply:
    """Where a command's result lands; the caller awaits `result()`."""

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def succeed(self, value: Any) -> None:
        if not self.done:
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        if not self.done:
            self._error = error
            self._done.set()

    async def result(self) -> Any:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


@attrs.define(eq=False)
class Command:
    """One request to the controller; `target` is the worker's key (None for a reload)."""

    action: Action
    target: str | None = None
    reply: Reply = attrs.Factory(Reply)


class CommandQueue:
    """The one channel commands take (unbounded: putting one never blocks, e.g. from a signal)."""

    def __init__(self) -> None:
        self._send, self.receive = trio.open_memory_channel[Command](math.inf)

    def put(self, command: Command) -> Command:
        """Queue `command`; its reply fails at once if the controller has gone."""
        try:
            self._send.send_nowait(command)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            command.reply.fail(OrchestratorStopping())
        return command

    def fail_pending(self) -> None:
        """The controller ends: every command not carried out gets `OrchestratorStopping`."""
        while True:
            try:
                command = self.receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            command.reply.fail(OrchestratorStopping())
        self.receive.close()  # from now on `put` fails the reply at once


def resolve_worker(configs: Mapping[str, WorkerConfig], target: str) -> str:
    """The key of the configured worker `target` names: its key (`machineId:workerId`), its
    worker id, or its name. `UnknownWorker` when none or more than one match."""
    if target in configs:
        return target
    matches = sorted({key for key, config in configs.items() if target in (config.worker_id, config.name)})
    if len(matches) == 1:
        return matches[0]
    shown = external(target, 100)
    if matches:
        raise UnknownWorker(
            f"{shown!r} names {len(matches)} workers; use the key (one of {', '.join(matches)})"
        )
    known = ", ".join(sorted(config.name for config in configs.values())) or "none"
    raise UnknownWorker(f"no worker named {shown!r} (configured: {known})")
