"""What end-to-end tests check about child processes: who still works in a directory, and
that what was killed is gone."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import trio


def processes_in(*directories: Path) -> list[int]:
    """Live processes working in one of `directories` or below (OpenCode runs there)."""
    wanted = [Path(d) for d in directories]
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue  # gone meanwhile, or not ours to inspect
            if any(cwd.is_relative_to(d) for d in wanted):
                found.append(int(entry.name))
    return found


def kill_leftovers(*directories: Path) -> list[int]:
    """SIGKILL the process group of everything still working in `directories`.

    For a test's `finally`: when the process under test was killed, the OpenCode servers it
    started live on in their own process groups. Never signals the caller's own group.
    Returns the pids found.
    """
    pids = processes_in(*directories)
    for pid in pids:
        try:
            group = os.getpgid(pid)
            if group == os.getpgrp():
                os.kill(pid, signal.SIGKILL)
            else:
                os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return pids


async def wait_gone(pids: Iterable[int], timeout: float = 10) -> None:
    """Return once each of `pids` has exited (a pidfd turns readable at exit: no polling)."""
    pidfds = []
    try:
        for pid in pids:
            try:
                pidfds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                continue  # gone already
        with trio.fail_after(timeout):
            for fd in pidfds:
                await trio.lowlevel.wait_readable(fd)
    finally:
        for fd in pidfds:
            os.close(fd)


async def output_lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[str]:
    """The lines a child process writes, as they arrive; EOFError (with what came) at its end."""
    buffer = b""
    while True:
        while b"\n" not in buffer:
            data = await stream.receive_some()
            if not data:
                raise EOFError(f"the process closed its output; output so far: {buffer!r}")
            buffer += data
        line, buffer = buffer.split(b"\n", 1)
        yield line.decode()
