"""One directory per running orchestrator: its lock, status.json and control socket.

A user may run several orchestrators at once (`trio-oco dev` in a project, `trio-oco run` of a
workers file, a second `run` of another file). Each gets its own *instance directory* under the
state directory, `instances/<mode>-<hash>/` (0700), keyed by what it runs: `run` by the workers
file's resolved path, `dev` by the project's `.env` resolved path. Two orchestrators of the same
source share the directory, so the second one finds the lock held and is refused at once; two
of different sources never meet.

    instances/run-3f2a9c01d4e5/
        orchestrator.lock   flock'ed for the orchestrator's whole life, holds its pid
        instance.json       mode, source, pid (written once the lock is held)
        status.json         the StatusSnapshot (see `_status.py`)
        control.sock        the control socket, 0600 (see `_control_socket.py`)

Stale directories (their lock free, nothing updated for `STALE_AFTER_S`) are removed when an
orchestrator starts: renamed aside first, while their lock is held, so a starting orchestrator
of the same source never sees a half-removed directory. A live one is never touched: its lock
is held. A recently stopped one is kept, so `trio-oco status` can still show its last word.

Standard library only (plus `_status`'s lock): `trio-oco status` and the control commands read
instances without importing trio or the configuration machinery.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._status import (
    LOCK_FILE,
    STATUS_FILE,
    AlreadyRunning,
    LockHandle,
    StateDirUnusable,
    acquire_lock,
    pid_alive,
)

INSTANCES_DIR = "instances"
INSTANCE_FILE = "instance.json"
SOCKET_FILE = "control.sock"
MODES = ("run", "dev")
STALE_AFTER_S = 24 * 3600.0  # a stopped instance's last status is kept this long


def instance_name(mode: str, source: Path) -> str:
    """The instance directory's name for `mode` running `source` (short: socket paths are
    limited to 107 bytes)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    digest = hashlib.sha256(str(Path(source).resolve()).encode()).hexdigest()[:12]
    return f"{mode}-{digest}"


def instances_root(state_dir: Path) -> Path:
    return Path(state_dir) / INSTANCES_DIR


class Instance:
    """A claimed instance directory: the lock is held until `release()`."""

    def __init__(self, directory: Path, mode: str, source: Path, lock: LockHandle) -> None:
        self.directory = directory
        self.state_dir = directory.parent.parent  # <state>/instances/<name>
        self.mode = mode
        self.source = source
        self._lock = lock

    @property
    def socket_path(self) -> Path:
        return self.directory / SOCKET_FILE

    def release(self) -> None:
        """Let the lock go and remove the socket (the directory stays for `status`)."""
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)
        self._lock.release()


def claim_instance(state_dir: Path, mode: str, source: Path) -> Instance:
    """Take the instance directory of `mode` + `source`, or raise `AlreadyRunning` at once.

    Sweeps stale instance directories of other sources first (never a live one).
    """
    source = Path(source).resolve()
    root = instances_root(state_dir)
    directory = root / instance_name(mode, source)
    from oco.config import ensure_private_dir

    with contextlib.suppress(OSError):
        ensure_private_dir(root)  # 0700 (acquire_lock makes the directory, not its parents private)
    sweep_stale(root, keep=directory.name)
    try:
        lock = acquire_lock(directory)  # makes the directory (0700)
    except AlreadyRunning as exc:
        what = f"trio-oco {mode} of {source}"
        raise AlreadyRunning(exc.pid, exc.lock_path, what=what) from None
    info = {"mode": mode, "source": str(source), "pid": os.getpid(), "started_at": time.time()}
    try:
        _write_json(directory / INSTANCE_FILE, info)
    except OSError:
        pass  # status falls back to status.json's own fields
    return Instance(directory, mode, source, lock)


def claim_for_command(state_dir: Path, mode: str, source: Path) -> Instance | None:
    """`claim_instance` for `run` and `dev`: `AlreadyRunning` propagates (exit 2, one line); a
    state directory that cannot be used is a warning, and the workers run without status,
    lock and control socket (they only save context)."""
    try:
        return claim_instance(state_dir, mode, source)
    except StateDirUnusable as exc:
        import logging

        logging.getLogger("oco.orchestrator").warning(
            "%s; running without the single-instance lock, status file and control socket", exc
        )
        return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def sweep_stale(root: Path, *, keep: str, now: float | None = None) -> list[str]:
    """Remove instance directories whose lock is free and that nothing touched for
    `STALE_AFTER_S`; returns their names. Errors are ignored: sweeping is housekeeping."""
    now = time.time() if now is None else now
    removed = []
    for directory in _instance_dirs(root):
        if directory.name == keep or now - _last_touched(directory) < STALE_AFTER_S:
            continue
        with contextlib.suppress(OSError):
            if _remove_if_free(directory):
                removed.append(directory.name)
    return removed


def _last_touched(directory: Path) -> float:
    times = [0.0]
    for name in (LOCK_FILE, STATUS_FILE, INSTANCE_FILE, ""):
        with contextlib.suppress(OSError):
            times.append((directory / name).stat().st_mtime)
    return max(times)


def _remove_if_free(directory: Path) -> bool:
    fd = os.open(directory / LOCK_FILE, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False  # alive: never touched
            raise
        # Renamed while we hold its lock: whoever opens the old path from now on gets a fresh
        # directory, and whoever opened it before sees the lock held and ours is short-lived.
        aside = directory.with_name(f".removing-{directory.name}-{os.getpid()}")
        os.rename(directory, aside)
    finally:
        os.close(fd)
    shutil.rmtree(aside, ignore_errors=True)
    return True


def _instance_dirs(root: Path) -> Iterator[Path]:
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.split("-", 1)[0] in MODES and entry.is_dir():
            yield entry


class FoundInstance:
    """An instance directory as a reader finds it: is it alive, and what does it say."""

    def __init__(self, directory: Path, info: dict[str, Any], status: dict[str, Any] | None, alive: bool):
        self.directory = directory
        self.info = info
        self.status = status  # status.json as JSON (None: not written yet, or unreadable)
        self.alive = alive

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def mode(self) -> str:
        return str(self.info.get("mode") or self.name.split("-", 1)[0])

    @property
    def source(self) -> str:
        return str(self.info.get("source") or "?")

    @property
    def pid(self) -> int | None:
        pid = self.info.get("pid")
        return pid if isinstance(pid, int) else None

    @property
    def socket_path(self) -> Path:
        return self.directory / SOCKET_FILE

    @property
    def updated_at(self) -> float:
        value = (self.status or {}).get("updated_at")
        return float(value) if isinstance(value, int | float) else 0.0


def find_instances(state_dir: Path) -> list[FoundInstance]:
    """Every instance directory of the user, alive or not, `run`s first then `dev`s."""
    found = []
    for directory in _instance_dirs(instances_root(state_dir)):
        info = _read_json(directory / INSTANCE_FILE) or {}
        status = _read_json(directory / STATUS_FILE)
        holder = _lock_pid(directory / LOCK_FILE)
        # The lock file names its holder while held (it is emptied on release): a dead pid, or
        # an empty file, means this instance is not running.
        alive = holder is not None and pid_alive(holder)
        if alive:
            info = {**info, "pid": holder}
        found.append(FoundInstance(directory, info, status, alive))
    found.sort(key=lambda f: (MODES.index(f.mode) if f.mode in MODES else 9, f.source))
    return found


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _lock_pid(path: Path) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None
