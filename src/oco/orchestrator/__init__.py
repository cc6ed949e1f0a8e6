"""The orchestrator: supervision of many workers in one process, stop, status and reload.

Public: `Orchestrator` (run it with `trio.run(orchestrator.run)`; returns the exit code),
`Reloaded` (what a reload callable returns), `WorkerSlot`, `RestartPolicy`, `SystemdNotifier`,
the status file helpers, and `worker_factory` (real workers for `dev` and `run`).
"""

from ._notify import SystemdNotifier
from ._orchestrator import Orchestrator, Reloaded
from ._policy import RestartPolicy
from ._status import (
    LOCK_FILE,
    STATUS_FILE,
    AlreadyRunning,
    StatusSnapshot,
    WorkerStatus,
    acquire_lock,
    format_status_table,
    pid_alive,
    read_status,
    status_exit_code,
)
from ._supervisor import WorkerSlot
from ._wiring import worker_factory

__all__ = [
    "LOCK_FILE",
    "STATUS_FILE",
    "AlreadyRunning",
    "Orchestrator",
    "Reloaded",
    "RestartPolicy",
    "StatusSnapshot",
    "SystemdNotifier",
    "WorkerSlot",
    "WorkerStatus",
    "acquire_lock",
    "format_status_table",
    "pid_alive",
    "read_status",
    "status_exit_code",
    "worker_factory",
]
