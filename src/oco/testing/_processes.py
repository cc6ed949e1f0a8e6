"""What end-to-end tests check about child processes: who still works in a directory."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import trio


def processes_in(*directories: Path) -> list[int]:
    """Live processes whose working directory is one of `directories` (OpenCode runs there)."""
    wanted = {Path(d) for d in directories}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) in wanted:
                    found.append(int(entry.name))
            except OSError:
                continue  # gone meanwhile, or not ours to inspect
    return found


async def collect_output(stream: trio.abc.ReceiveStream, sink: bytearray) -> None:
    """Append everything `stream` yields to `sink` until it closes."""
    async for data in stream:
        sink.extend(data)


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
