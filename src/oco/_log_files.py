"""Per-worker log files in the state directory, beside the stderr stream (`trio-oco logs`).

`open_log_files(state_dir)` adds one handler to the root logger for the length of a block
(the orchestrator's run). It routes each record by the worker it belongs to (the
`WorkerTag` that `oco.logs.bind_worker` put in the context): a worker's lines go to
`logs/<worker_id>.log`, the orchestrator's own lines (no worker) to `logs/oco.log`. Each file
is size-bounded by the stdlib's `RotatingFileHandler` (`MAX_BYTES`, `BACKUPS` old files),
mode 0600 in a 0700 directory, secrets redacted like every other line.

Lines are `2026-12-02T00:10:00.123Z INFO message`: milliseconds, so `trio-oco logs` can merge
the files of several workers in order; the worker is the file. `logs/index.json` (0600) maps
each worker id to its current name, so `trio-oco logs NAME` finds the file by name while the
name changes (a reload, or dev mode learning the name from Convex).

A log file is a convenience, never a reason to stop: the first write that fails (a read-only
or full disk) turns the files off for the rest of the run, with one WARNING on stderr.
Stdlib only, like `oco.logs`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from oco._private import ensure_private_dir, write_private_file
from oco.logs import SecretRedactor, WorkerLabelFilter

__all__ = [
    "BACKUPS",
    "INDEX_FILE",
    "LOG_DIR",
    "MAX_BYTES",
    "ORCHESTRATOR_LOG",
    "LogFiles",
    "log_dir",
    "open_log_files",
    "read_index",
]

LOG_DIR = "logs"
ORCHESTRATOR_LOG = "oco.log"
ORCHESTRATOR_NAME = "oco"  # how `trio-oco logs` names oco.log
INDEX_FILE = "index.json"
MAX_BYTES = 5 * 1024 * 1024  # per file; with the backups at most 20 MiB per worker
BACKUPS = 3

log = logging.getLogger("oco.logs")


def log_dir(state_dir: Path) -> Path:
    return Path(state_dir) / LOG_DIR


def file_timestamp(created: float) -> str:
    """`2026-12-02T00:10:00.123Z`: UTC with milliseconds (sorts as text)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created * 1000) % 1000:03d}Z"


class FileFormatter(logging.Formatter):
    """`TIMESTAMP LEVEL message`, exception text on following lines (the file names the worker)."""

    def format(self, record: logging.LogRecord) -> str:
        lines = [f"{file_timestamp(record.created)} {record.levelname} {record.getMessage()}"]
        lines += [text for text in (record.exc_text, record.stack_info) if text]
        return "\n".join(lines)


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """A rotating file created 0600 whose write failures go to `on_failure`, not stderr noise."""

    def __init__(
        self, path: Path, on_failure: Callable[[BaseException | None], None], max_bytes: int, backups: int
    ) -> None:
        self._on_failure = on_failure
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True)

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")

    def handleError(self, record: logging.LogRecord) -> None:
        self._on_failure(sys.exc_info()[1])


class LogFiles(logging.Handler):
    """The root-logger handler that writes each record to its worker's file (see the module)."""

    def __init__(self, directory: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.backups = backups
        self.failed: str | None = None  # why the files were turned off
        self._files: dict[str, _PrivateRotatingFile] = {}
        self._names: dict[str, str] = {}
        self.addFilter(WorkerLabelFilter())
        self.addFilter(SecretRedactor())
        self.setFormatter(FileFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed is not None:
            return
        worker_id: str | None = getattr(record, "worker_id", None)
        key = worker_id if worker_id else ""
        try:
            if not self._files:
                ensure_private_dir(self.directory)
            if worker_id:
                self._note_name(worker_id, getattr(record, "worker", worker_id))
            target = self._files.get(key)
            if target is None:
                name = f"{worker_id}.log" if worker_id else ORCHESTRATOR_LOG
                target = _PrivateRotatingFile(self.directory / name, self._fail, self.max_bytes, self.backups)
                target.setFormatter(self.formatter)
                self._files[key] = target
        except OSError as exc:
            self._fail(exc)
            return
        target.handle(record)

    def _note_name(self, worker_id: str, name: str) -> None:
        """Keep index.json current: worker id -> its name now (written only when it changes)."""
        if self._names.get(worker_id) == name:
            return
        # Under the handler's lock (`handle` holds it around `emit`): one writer at a time.
        names = {**read_index(self.directory), **self._names, worker_id: name}
        write_private_file(
            self.directory / INDEX_FILE, json.dumps({"workers": names}, indent=2) + "\n", durable=False
        )
        self._names = names

    def _fail(self, exc: BaseException | None) -> None:
        if self.failed is not None:
            return
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        self.failed = reason
        for handler in self._files.values():
            with contextlib.suppress(Exception):  # closing a broken file: nothing left to save
                handler.close()
        # This handler is off now, so the warning goes to stderr only.
        log.warning("cannot write the log files in %s (%s); logging to stderr only", self.directory, reason)

    def close(self) -> None:
        for handler in self._files.values():
            with contextlib.suppress(Exception):  # closing at exit: nothing left to save
                handler.close()
        self._files.clear()
        super().close()


def read_index(directory: Path) -> dict[str, str]:
    """index.json's worker id -> name ({} when it is missing or unreadable)."""
    try:
        data = json.loads((Path(directory) / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    workers = data.get("workers") if isinstance(data, dict) else None
    if not isinstance(workers, dict):
        return {}
    return {str(k): str(v) for k, v in workers.items() if isinstance(v, str)}


@contextlib.contextmanager
def open_log_files(state_dir: Path, **options: int) -> Iterator[LogFiles]:
    """Write the log files under `state_dir/logs` for the block (see the module docstring)."""
    handler = LogFiles(log_dir(state_dir), **options)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        handler.close()
