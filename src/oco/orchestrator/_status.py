"""The orchestrator's status file (status.json), its single-instance lock, and the status table.

The running orchestrator writes a `StatusSnapshot` atomically (temp file + rename, 0600, in a
0700 directory) on every state change and every few seconds; `trio-oco status` reads it and
checks the pid. There is no field that could hold a secret: workers are named by their ids.
All times are wall-clock seconds since the epoch (`time.time()`), since a reader in another
process cannot use the orchestrator's monotonic clock.

`orchestrator.lock` next to status.json is held with `fcntl.flock` for the orchestrator's
whole life, so a second orchestrator on the same state directory fails fast with
`AlreadyRunning(pid)`. The kernel drops the lock when the process dies, so a crash never
leaves a stale lock; the descriptor is not inherited by child processes (Python opens files
non-inheritable), so an orphaned OpenCode cannot hold it either.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import attrs
import cattrs

from oco._text import external
from oco.config import WorkerConfig, ensure_private_dir, write_private_file
from oco.errors import OcoError

STATUS_FILE = "status.json"
DEGRADED = "degraded"  # a ready worker whose OpenCode cannot start (last_error says why)
LOCK_FILE = "orchestrator.lock"
SCHEMA_VERSION = 1


@attrs.frozen
class WorkerStatus:
    """One worker's row: identity, state (lifecycle state, or `backoff`/`parked`), counters."""

    name: str
    machine_id: str
    worker_id: str
    directory: str
    state: str
    since: float  # when it entered `state`
    restarts: int = 0
    last_error: str | None = None
    active_sessions: int = 0
    turns_in_flight: int = 0
    opencode_pid: int | None = None
    opencode_server: str = "own"  # "own", or "shared <environment>" (one server, several workers)

    @property
    def key(self) -> str:
        return f"{self.machine_id}:{self.worker_id}"

    @classmethod
    def for_config(cls, config: WorkerConfig, *, state: str, since: float, **counters: Any) -> WorkerStatus:
        """A row for `config`: copies its name, ids and directory (never its token)."""
        return cls(
            name=config.name,
            machine_id=config.machine_id,
            worker_id=config.worker_id,
            directory=str(config.working_directory),
            state=state,
            since=since,
            **counters,
        )


@attrs.frozen
class StatusSnapshot:
    """What `trio-oco status` shows; `version` lets readers refuse a layout they don't know."""

    pid: int
    started_at: float
    updated_at: float
    workers: list[WorkerStatus] = attrs.field(factory=list)
    version: int = SCHEMA_VERSION

    @property
    def all_ready(self) -> bool:
        """Every worker is ready (vacuously true with no workers: nothing is broken)."""
        return all(w.state == "ready" for w in self.workers)


class StatusFileError(OcoError):
    """status.json exists but cannot be read as a snapshot."""


class AlreadyRunning(OcoError):
    """Another orchestrator holds the lock on this state directory (a usage error: exit 2)."""

    exit_code = 2

    def __init__(self, pid: int | None, lock_path: Path) -> None:
        who = f"pid {pid}" if pid is not None else "unknown pid"
        super().__init__(f"another orchestrator is already running ({who}); lock: {lock_path}")
        self.pid = pid
        self.lock_path = lock_path


_converter = cattrs.Converter()


def write_status(path: Path, snapshot: StatusSnapshot) -> None:
    """Replace `path` atomically with `snapshot` as JSON (file 0600, directory 0700)."""
    text = json.dumps(_converter.unstructure(snapshot), indent=2, sort_keys=True) + "\n"
    write_private_file(Path(path), text)


def read_status(path: Path) -> StatusSnapshot | None:
    """The snapshot at `path`, or None when there is none; `StatusFileError` when unreadable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StatusFileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
        version = data.get("version") if isinstance(data, dict) else None
        if version != SCHEMA_VERSION:
            raise StatusFileError(f"{path}: unknown status format (version {version!r})")
        return _converter.structure(data, StatusSnapshot)
    except (ValueError, cattrs.BaseValidationError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "unexpected content"
        raise StatusFileError(f"{path}: not a status file ({reason})") from None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0 probes without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it just belongs to someone else
    return True


def status_exit_code(snapshot: StatusSnapshot | None, *, alive: bool) -> int:
    """`trio-oco status` exit code: 0 all ready, 1 not all ready, 3 no orchestrator running.

    A `degraded` worker (connected, but its OpenCode cannot start) is not ready: exit 1,
    as every answer it gives is that error."""
    if snapshot is None or not alive:
        return 3
    return 0 if snapshot.all_ready else 1


class LockHandle:
    """The held `orchestrator.lock`; `release()` (or leaving the `with` block) lets it go."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Unlock and close; idempotent. The file stays (unlinking a lock file is racy)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no stale pid for the next reader
        except OSError:
            pass  # opened read-only (a read-only state directory): nothing to clear
        finally:
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> LockHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class StateDirUnusable(OcoError):
    """The state directory cannot hold the lock file (read-only, full, not a directory)."""


def acquire_lock(directory: Path) -> LockHandle:
    """Take `directory/orchestrator.lock` or raise `AlreadyRunning` with the holder's pid.

    `StateDirUnusable` when the directory cannot be made or the file opened at all; a lock
    file that exists on a read-only file system is still locked (flock needs no write).
    """
    path = Path(directory) / LOCK_FILE
    try:
        ensure_private_dir(Path(directory))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            raise StateDirUnusable(f"cannot use {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _read_pid(fd)
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise AlreadyRunning(holder, path) from None
        raise OcoError(f"cannot lock {path}: {exc.strerror}") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # a read-only lock file still locks; only the holder's pid is not shown
    return LockHandle(path, fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text)
    except (OSError, ValueError):
        return None  # the holder has not written its pid yet


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


_COLUMNS = ("NAME", "STATE", "SINCE", "RESTARTS", "SESSIONS", "TURNS", "OPENCODE", "DIRECTORY")


def _opencode_cell(w: WorkerStatus) -> str:
    """The server's pid ("-" while none runs), with "*" when the server is shared."""
    pid = str(w.opencode_pid) if w.opencode_pid is not None else "-"
    return pid + ("*" if w.opencode_server != "own" else "")


def format_status_table(snapshot: StatusSnapshot, *, now: float | None = None) -> str:
    """A plain-text table for `trio-oco status`: a header line, one row per worker, errors.

    Every cell goes through `external`: the file is ours, but what it quotes (an error a
    backend sent, a directory name) must not drive the terminal that prints the table.
    """
    now = time.time() if now is None else now
    lines = [
        f"orchestrator pid {snapshot.pid}, up {_age(now - snapshot.started_at)}, "
        f"updated {_age(now - snapshot.updated_at)} ago"
    ]
    if not snapshot.workers:
        lines.append("no workers")
        return "\n".join(lines)
    rows = [_COLUMNS] + [
        (
            external(w.name, 100),
            external(w.state, 40),
            _age(now - w.since),
            str(w.restarts),
            str(w.active_sessions),
            str(w.turns_in_flight),
            _opencode_cell(w),
            external(w.directory),
        )
        for w in snapshot.workers
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
    if any(w.opencode_server != "own" for w in snapshot.workers):
        lines.append("* a shared OpenCode server (one per OpenCode environment)")
    errors = [w for w in snapshot.workers if w.last_error]
    for w in errors:
        first_line = w.last_error.splitlines()[0] if w.last_error else ""
        lines.append(f"{external(w.name, 100)}: last error: {external(first_line)}")
    return "\n".join(lines)
