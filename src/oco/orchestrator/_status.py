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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from oco.errors import OcoError

if TYPE_CHECKING:
    from oco.config import WorkerConfig

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
    # New fields come with a default: a reader of this schema version ignores what it does not know.

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
    mode: str | None = None  # "run" or "dev" (None: written by an embedding without an instance)
    source: str | None = None  # the workers file (run) or the .env file (dev) it runs

    @property
    def all_ready(self) -> bool:
        """Every worker is ready (vacuously true with no workers: nothing is broken)."""
        return all(w.state == "ready" for w in self.workers)


class StatusFileError(OcoError):
    """status.json exists but cannot be read as a snapshot."""


class AlreadyRunning(OcoError):
    """Another orchestrator holds the lock on this state directory (a usage error: exit 2)."""

    exit_code = 2

    def __init__(self, pid: int | None, lock_path: Path, what: str = "another orchestrator") -> None:
        who = f"pid {pid}" if pid is not None else "unknown pid"
        super().__init__(f"{what} is already running ({who}); lock: {lock_path}")
        self.pid = pid
        self.lock_path = lock_path


def write_status(path: Path, snapshot: StatusSnapshot) -> None:
    """Replace `path` atomically with `snapshot` as JSON (file 0600, directory 0700)."""
    from oco.config import write_private_file

    text = json.dumps(attrs.asdict(snapshot), indent=2, sort_keys=True) + "\n"
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
        return snapshot_from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "unexpected content"
        raise StatusFileError(f"{path}: not a status file ({reason})") from None


def snapshot_from_json(data: dict[str, Any]) -> StatusSnapshot:
    """A snapshot from status.json's JSON; fields this version does not know are ignored (a
    newer writer may add some), a missing or mistyped required one is `ValueError`/`TypeError`."""
    if not isinstance(data, dict) or not isinstance(data.get("workers", []), list):
        raise ValueError("not an object with a list of workers")
    known = {f.name for f in attrs.fields(WorkerStatus)}
    workers = [
        WorkerStatus(**{k: v for k, v in row.items() if k in known}) for row in data.get("workers", [])
    ]
    for row in workers:
        if not isinstance(row.name, str) or not isinstance(row.state, str):
            raise TypeError("a worker without a name or state")
        float(row.since)
    fields = {f.name for f in attrs.fields(StatusSnapshot)} - {"workers"}
    snapshot = StatusSnapshot(workers=workers, **{k: v for k, v in data.items() if k in fields})
    int(snapshot.pid), float(snapshot.started_at), float(snapshot.updated_at)
    return snapshot


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
    from oco.config import ensure_private_dir

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


def format_status_table(snapshot: StatusSnapshot, *, now: float | None = None, width: int = 80) -> str:
    """The status table of one orchestrator (see `_status_table.py`, where it lives)."""
    from ._status_table import format_status_table as table

    return table(snapshot, now=now, width=width)
