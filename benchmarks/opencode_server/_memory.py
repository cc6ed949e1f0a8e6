"""Memory of a whole process tree from /proc: PSS (shared pages counted once) and RSS.

RSS summed over processes counts every shared page once per process (OpenCode's executable
and its libraries, in each server), so the sum overstates many processes; PSS
(`/proc/<pid>/smaps_rollup`, a page shared by n processes counts 1/n in each) adds up to what
the tree really holds. Both are reported; the ratios use PSS.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import trio

from benchmarks.bench._proc import descendants, rss_bytes


@attrs.frozen
class TreeMemory:
    pss: int
    rss: int
    processes: int


def pss_bytes(pid: int) -> int:
    """Pss of one process (0 when it is gone or unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def tree_memory(root: int) -> TreeMemory:
    pids = [root, *descendants(root)]
    return TreeMemory(sum(pss_bytes(p) for p in pids), sum(rss_bytes(p) for p in pids), len(pids))


@attrs.define
class PeakMemory:
    """The largest tree PSS and RSS seen while sampling (`sample` in a task of its own)."""

    root: int
    interval: float = 0.5
    pss: int = 0
    rss: int = 0
    processes: int = 0
    samples: int = 0

    def take(self) -> None:
        now = tree_memory(self.root)
        self.pss, self.rss = max(self.pss, now.pss), max(self.rss, now.rss)
        self.processes = max(self.processes, now.processes)
        self.samples += 1

    async def sample(self) -> None:
        """Sample until cancelled (the caller's nursery owns it)."""
        while True:
            await trio.to_thread.run_sync(self.take)  # /proc reads of a dozen processes
            await trio.sleep(self.interval)


def mib(value: int) -> float:
    return round(value / 2**20, 1)
