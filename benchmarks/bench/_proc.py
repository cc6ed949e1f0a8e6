"""Process facts from /proc (no psutil): RSS and CPU of a process tree, and its descendants."""

from __future__ import annotations

import os
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces or ')')."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """Every live process below `root` (children, grandchildren, ...), from a /proc snapshot."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_bytes(pid: int) -> int:
    """VmRSS of one process (0 when it is gone or a zombie)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(root: int) -> int:
    """RSS of `root` and all its descendants."""
    return sum(rss_bytes(pid) for pid in [root, *descendants(root)])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (its own, not its children's)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the name: state is field 3 of stat(5), so utime (14) and stime (15) sit at 11, 12.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK
