"""What end-to-end tests check about child processes: who still works in a directory."""

from __future__ import annotations

import os
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
