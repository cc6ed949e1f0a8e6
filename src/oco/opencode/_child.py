"""A short-lived OpenCode command (`opencode models`) run in its own process group, bounded.

`trio.run_process` kills only the child it started: a hung `opencode models` left the
processes it spawned running after trio-oco stopped, and its output was read whole. Here the
command leads its own process group, the whole group is SIGKILLed when the call ends (done,
deadline, cancellation or too much output), and output beyond `max_output` is an error.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import trio

from oco._text import ERROR_BODY_MAX_BYTES

MAX_OUTPUT_BYTES = 4 * 1024 * 1024
REAP_GRACE = 5.0  # after SIGKILL, how long reaping may take
DRAIN_GRACE = 1.0  # after it ended, how long its buffered output may take to read


@attrs.frozen
class Finished:
    returncode: int
    stdout: bytes
    stderr_tail: bytes  # the last `ERROR_BODY_MAX_BYTES` of stderr


class OutputTooLarge(Exception):
    """The command printed more than its bound; it was killed."""


async def run_bounded(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    max_output: int = MAX_OUTPUT_BYTES,
    nice: int = 0,
) -> Finished:
    """Run `command` to its end within `timeout` (else `trio.TooSlowError`); its group never
    outlives the call. Raises `OutputTooLarge` past `max_output` bytes of stdout, `OSError`
    when it cannot be started. `nice` > 0 runs it below our own CPU priority (background work
    that must not slow a turn down)."""
    process = await trio.lowlevel.open_process(
        list(command),
        cwd=str(cwd),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group: everything it spawns can be killed with it
    )
    if nice > 0:
        _lower_priority(process.pid, nice)
    stdout = bytearray()
    stderr: collections.deque[bytes] = collections.deque()
    too_large = False
    try:
        with trio.fail_after(timeout):
            async with trio.open_nursery() as nursery:
                stdout_read, stderr_read = trio.Event(), trio.Event()

                async def read_stdout() -> None:
                    nonlocal too_large
                    assert process.stdout is not None
                    async for chunk in process.stdout:
                        stdout.extend(chunk)
                        if len(stdout) > max_output:
                            too_large = True
                            nursery.cancel_scope.cancel()  # the finally below kills the group
                            return
                    stdout_read.set()

                nursery.start_soon(read_stdout)
                nursery.start_soon(_read_tail, process.stderr, stderr, stderr_read)
                await process.wait()
                # It has ended: what it left behind in its group goes too, which closes the pipes.
                _kill_group(process.pid)
                # Drain what is buffered; a process that left the group could hold a pipe open.
                with trio.move_on_after(DRAIN_GRACE):
                    await stdout_read.wait()
                    await stderr_read.wait()
                nursery.cancel_scope.cancel()
    finally:
        _kill_group(process.pid)
        # Reaping a SIGKILLed process is quick; shielded so a cancelled call still reaps it.
        with trio.move_on_after(REAP_GRACE, shield=True):
            await process.wait()
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    await pipe.aclose()
    if too_large:
        raise OutputTooLarge()
    assert process.returncode is not None  # the process was waited for above
    return Finished(process.returncode, bytes(stdout), b"".join(stderr))


async def _read_tail(
    stream: trio.abc.ReceiveStream | None, tail: collections.deque[bytes], done: trio.Event
) -> None:
    """Keep the last `ERROR_BODY_MAX_BYTES` (or a little more) of `stream` in `tail`."""
    size = 0
    if stream is not None:
        async for chunk in stream:
            tail.append(bytes(chunk))
            size += len(chunk)
            while size - len(tail[0]) >= ERROR_BODY_MAX_BYTES:
                size -= len(tail.popleft())
    done.set()


def _lower_priority(group: int, nice: int) -> None:
    """`nice` steps below our own priority for every thread of the group `group` leads (Linux
    applies a group's priority to each thread it has; threads and children it makes later
    inherit it), at most 19. A group already gone has nothing to lower."""
    try:
        os.setpriority(os.PRIO_PGRP, group, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
    except OSError:
        pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
