"""The `trio-oco status` table: human times, at most 80 columns, any state the file names.

Pure: a snapshot and "now" in, lines out. Times read like a person says them ("since 14:02,
3m": the local wall-clock time it began, and how long ago); `--json` gives ISO 8601 instead
(`iso_time`). A state this version does not know (a newer orchestrator's, e.g. `degraded`) is
shown as it is, and it counts as "not ready" for the exit code, like every state but `ready`.
Every cell goes through `external`: the file is ours, but what it quotes (an error a backend
sent, a directory name) must not drive the terminal that prints the table.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from oco._text import external

from ._status import StatusSnapshot, WorkerStatus

WIDTH = 80
_COLUMNS = ("NAME", "STATE", "SINCE", "RESTARTS", "TURNS", "SESSIONS", "OPENCODE", "DIRECTORY")
# Caps of the cells that could grow without bound (the rest are short by construction).
_NAME_MAX, _STATE_MAX = 20, 12
_MIN_DIRECTORY = 12  # narrower than this, the directory column is left out


def age(seconds: float) -> str:
    """`3m`, `2h`, `1d`: the largest whole unit (seconds under a minute)."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def human_since(when: float, now: float) -> str:
    """`14:02, 3m` (today, local time), `Dec 01, 2d` (an earlier day)."""
    then, today = time.localtime(when), time.localtime(now)
    same_day = then[:3] == today[:3]
    clock = time.strftime("%H:%M" if same_day else "%b %d", then)
    return f"{clock}, {age(now - when)}"


def iso_time(when: float) -> str:
    """ISO 8601 in UTC with the offset, to the second (`2026-12-02T14:02:05+00:00`)."""
    return datetime.fromtimestamp(when, tz=UTC).isoformat(timespec="seconds")


def worker_json(row: WorkerStatus) -> dict[str, Any]:
    """A worker's status as the control protocol and `status --json` give it: every field of
    the row (new ones too), `since` in ISO 8601, and its `key`."""
    data = attrs.asdict(row)
    data["since"] = iso_time(row.since)
    data["key"] = row.key
    return data


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, the cut marked with `…`."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _clip_left(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[len(text) - width + 1 :]


def worker_lines(workers: Sequence[WorkerStatus], *, now: float, width: int = WIDTH) -> list[str]:
    """The table rows (a header first) and one `NAME: last error: …` line per erring worker,
    none longer than `width`. The directory column takes what is left, cut on the left."""
    if not workers:
        return ["no workers"]
    rows = [
        [
            clip(external(w.name, 200), _NAME_MAX),
            clip(external(w.state, 100), _STATE_MAX),
            human_since(w.since, now),
            str(w.restarts),
            str(w.turns_in_flight),
            str(w.active_sessions),
            (str(w.opencode_pid) if w.opencode_pid is not None else "-")
            + ("*" if w.opencode_server != "own" else ""),
        ]
        for w in workers
    ]
    header = list(_COLUMNS[:-1])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    fixed = sum(widths) + 2 * len(widths)
    room = width - fixed
    with_directory = room >= _MIN_DIRECTORY
    lines = []
    for cells, worker in zip([header, *rows], [None, *workers], strict=True):
        line = "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True))
        if with_directory:
            directory = "DIRECTORY" if worker is None else external(worker.directory, 1000)
            line = f"{line}  {_clip_left(directory, room)}"
        lines.append(clip(line.rstrip(), width))
    for w in workers:
        if w.last_error:
            first_line = w.last_error.splitlines()[0] if w.last_error.strip() else w.last_error
            lines.append(clip(f"{external(w.name, 200)}: last error: {external(first_line)}", width))
    return lines


def orchestrator_lines(snapshot: StatusSnapshot, *, now: float, width: int = WIDTH) -> list[str]:
    """`run /path/workers.json: pid 1234, since 14:02, 3m (updated 2s ago)`, or when that is
    wider than `width` the source on a line of its own (cut on the left, its file name stays)
    and the rest indented under it."""
    tail = f"pid {snapshot.pid}, since {human_since(snapshot.started_at, now)}"
    tail += f" (updated {age(now - snapshot.updated_at)} ago)"
    if not (snapshot.mode and snapshot.source):
        return [clip(f"orchestrator: {tail}", width)]
    what = f"{clip(external(snapshot.mode, 20), 8)} {external(snapshot.source, 1000)}"
    if len(what) + 2 + len(tail) <= width:
        return [f"{what}: {tail}"]
    mode, _, source = what.partition(" ")
    return [f"{mode} {_clip_left(source, width - len(mode) - 1)}", clip(f"  {tail}", width)]


def format_status_table(snapshot: StatusSnapshot, *, now: float | None = None, width: int = WIDTH) -> str:
    """One orchestrator: its line (or two), then its workers' table and last errors."""
    now = time.time() if now is None else now
    return "\n".join(
        [
            *orchestrator_lines(snapshot, now=now, width=width),
            *worker_lines(snapshot.workers, now=now, width=width),
        ]
    )
