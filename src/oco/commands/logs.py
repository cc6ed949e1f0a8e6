"""`trio-oco logs [NAME] [-f] [-n N]`: the log files the orchestrator writes, like `tail -F`.

With NAME (a worker's name or id, or `oco` for the orchestrator's own lines), the last N
lines of that worker's file; without, every file merged in time order, each line prefixed
with its worker's name (like `docker compose logs`). `-f` keeps printing what is added,
across rotation, until Ctrl+C (exit 0). An unknown NAME is one line naming the known ones
(exit 2). The files are read, never written: this works while the orchestrator runs, and
after it stopped.

Top-level imports are the standard library only: `trio-oco` imports every command's module
to build its parser.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

HELP = "print a worker's log (or all, merged by time); -f follows it like tail -F"

DEFAULT_LINES = 10  # like tail
FOLLOW_POLL_S = 0.2  # how often -f looks for new lines
READ_BLOCK = 64 * 1024
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
_LEVEL = re.compile(r"^(\S+Z )(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", nargs="?", metavar="NAME", help="a worker's name or id, or oco (default: all)"
    )
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl+C ends)")
    parser.add_argument(
        "-n",
        "--lines",
        type=int,
        default=DEFAULT_LINES,
        metavar="N",
        help=f"how many of the last lines to print first (default {DEFAULT_LINES})",
    )


class Source:
    """One log file to print: its label (the worker's name, or `oco`) and path."""

    def __init__(self, label: str, path: Path) -> None:
        self.label = label
        self.path = path


def sources(
    directory: Path, index: dict[str, str], orchestrator_log: str, orchestrator_name: str
) -> list[Source]:
    """Every log file in `directory`, labelled by the index's names (the id when unknown)."""
    try:
        names = sorted(p.name for p in directory.iterdir() if p.name.endswith(".log") and p.is_file())
    except OSError:
        return []
    found = []
    for name in names:
        if name == orchestrator_log:
            found.append(Source(orchestrator_name, directory / name))
        else:
            worker_id = name[: -len(".log")]
            found.append(Source(index.get(worker_id, worker_id), directory / name))
    return found


def _choose(all_sources: list[Source], name: str) -> Source | None:
    for source in all_sources:
        if source.label == name or source.path.name == f"{name}.log":
            return source
    return None


def last_lines(path: Path, count: int) -> list[str]:
    """The last `count` lines of `path` (and of its rotated `.1` when it holds fewer)."""
    if count <= 0:
        return []
    lines = _tail(path, count)
    if len(lines) < count:
        lines = _tail(path.with_name(path.name + ".1"), count - len(lines)) + lines
    return lines


def _tail(path: Path, count: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            return _tail_of(f, f.seek(0, os.SEEK_END), count)[0]
    except OSError:
        return []


def _tail_of(f: BinaryIO, end: int, count: int) -> tuple[list[str], int]:
    """The last `count` complete lines of open file `f` before offset `end`, and the offset
    where they end (before a line still being written, which is left for the follower)."""
    position = end
    data = b""
    while position > 0 and data.count(b"\n") <= count:
        step = min(READ_BLOCK, position)
        position -= step
        f.seek(position)
        data = f.read(step) + data
    complete = data[: data.rfind(b"\n") + 1]
    return complete.decode("utf-8", "replace").splitlines()[-count:], end - (len(data) - len(complete))


def _stamped(lines: Iterable[str], label: str, order: int) -> Iterator[tuple[str, int, int, str, str]]:
    """(timestamp, source order, line order, label, line); a continuation line (a traceback)
    takes the timestamp of the line it continues."""
    stamp = ""
    for n, line in enumerate(lines):
        if _STAMP.match(line):
            stamp = line[:24]
        yield stamp, order, n, label, line


def merged(batches: list[tuple[Source, list[str]]]) -> list[tuple[str, str]]:
    """(label, line) of every batch in time order (stable within a file)."""
    entries = [
        entry
        for order, (source, lines) in enumerate(batches)
        for entry in _stamped(lines, source.label, order)
    ]
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    return [(label, line) for _, _, _, label, line in entries]


class Follower:
    """New complete lines of one file as they are written, across rotation (`tail -F`):
    a new file at the path (rotated: another inode) is read from its start, after the rest
    of the old one; a file that shrank (truncated) is read again from its start."""

    def __init__(self, source: Source, *, from_end: bool = True) -> None:
        self.source = source
        self._file: BinaryIO | None = None
        self._inode: int | None = None
        self._pending = b""
        self._open(from_end=from_end)

    def _open(self, *, from_end: bool) -> None:
        try:
            self._file = open(self.source.path, "rb")  # noqa: SIM115 - kept open while following
        except OSError:
            self._file, self._inode = None, None
            return
        self._inode = os.fstat(self._file.fileno()).st_ino
        if from_end:
            self._file.seek(0, os.SEEK_END)

    def last(self, count: int) -> list[str]:
        """The last `count` lines before where following starts (and of the rotated `.1` when
        this file holds fewer): read from the file being followed, so that no line written
        between this tail and the first `poll` is lost or shown twice."""
        if count <= 0:
            return []
        lines: list[str] = []
        if self._file is not None:
            lines, where = _tail_of(self._file, self._file.tell(), count)
            self._file.seek(where)  # a line still being written is read whole by `poll`
        if len(lines) < count:
            lines = (
                _tail(self.source.path.with_name(self.source.path.name + ".1"), count - len(lines)) + lines
            )
        return lines

    def poll(self) -> list[str]:
        lines = self._read()
        try:
            stat = os.stat(self.source.path)
        except OSError:
            return lines
        if self._file is None or stat.st_ino != self._inode:
            if self._file is not None:
                self._file.close()
            self._pending = b""
            self._open(from_end=False)
            lines += self._read()
        elif stat.st_size < self._file.tell():
            self._file.seek(0)
            self._pending = b""
            lines += self._read()
        return lines

    def _read(self) -> list[str]:
        if self._file is None:
            return []
        data = self._pending + self._file.read()
        *complete, self._pending = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def run(args: argparse.Namespace) -> int:
    from oco._log_files import ORCHESTRATOR_LOG, ORCHESTRATOR_NAME, log_dir, read_index
    from oco.config import state_dir
    from oco.errors import UsageError
    from oco.logs import Style, level_colour, name_colour, paint, stderr_style

    if args.lines < 0:
        raise UsageError("-n must be a number of lines >= 0")
    directory = log_dir(state_dir())
    index = read_index(directory)
    found = sources(directory, index, ORCHESTRATOR_LOG, ORCHESTRATOR_NAME)
    if args.name is not None:
        chosen = _choose(found, args.name)
        if chosen is None:
            known = ", ".join(sorted({s.label for s in found})) or "none yet"
            raise UsageError(f"no log of a worker named {args.name!r} in {directory} (known: {known})")
        found = [chosen]
    elif not found and not args.follow:
        raise UsageError(f"no log files in {directory} yet (`trio-oco run` and `trio-oco dev` write them)")
    colour = stderr_style(sys.stdout) is Style.COLOUR
    width = max((len(s.label) for s in found), default=0)

    def show(label: str, line: str) -> None:
        if colour and (match := _LEVEL.match(line)):
            line = f"{match[1]}{paint(match[2], level_colour(match[2]))}{line[match.end(2) :]}"
        if args.name is not None:
            print(line)
            return
        prefix = f"{label:<{width}} |"
        print(f"{paint(prefix, name_colour(label)) if colour else prefix} {line}")

    # Following: each file is opened before its tail is read, and the tail read from that
    # open file, so a line written in between is shown exactly once.
    followers = {s.path: Follower(s) for s in found} if args.follow else {}

    def tail(source: Source) -> list[str]:
        if source.path in followers:
            return followers[source.path].last(args.lines)
        return last_lines(source.path, args.lines)

    try:
        if args.name is not None:
            for line in tail(found[0]):
                show(found[0].label, line)
        else:
            batches = [(s, tail(s)) for s in found]
            for label, line in merged(batches)[-args.lines :] if args.lines else []:
                show(label, line)
        sys.stdout.flush()
        if args.follow:

            def rescan() -> list[Source]:
                return sources(directory, read_index(directory), ORCHESTRATOR_LOG, ORCHESTRATOR_NAME)

            _follow(followers, args.name is None, show, rescan)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `trio-oco logs | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


def _follow(
    followers: dict[Path, Follower],
    watch_new: bool,
    show: Callable[[str, str], None],
    rescan: Callable[[], list[Source]],
) -> None:
    """Print new lines until interrupted; without NAME, files that appear are followed too."""
    try:
        while True:
            time.sleep(FOLLOW_POLL_S)
            if watch_new:
                for source in rescan():
                    if source.path not in followers and not source.path.name.endswith(".log.1"):
                        followers[source.path] = Follower(source, from_end=False)
                    elif source.path in followers:
                        followers[source.path].source.label = source.label  # renamed
            batches = [(f.source, f.poll()) for f in followers.values()]
            for label, line in merged([b for b in batches if b[1]]):
                show(label, line)
            sys.stdout.flush()
    finally:
        for follower in followers.values():
            follower.close()
