"""The orchestrator: supervision of many workers in one process, stop, status and reload.

Public: `Orchestrator` (run it with `trio.run(orchestrator.run)`; returns the exit code),
`Reloaded` (what a reload callable returns), `WorkerSlot`, `classify`, `SystemdNotifier`,
the status file helpers, and `worker_factory` (real workers for `dev` and `run`).
"""

from typing import TYPE_CHECKING

from oco._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers read; at run time a name is imported on first use
    from ._notify import SystemdNotifier
    from ._orchestrator import Orchestrator, Reloaded, WorkerFactory
    from ._policy import FailureKind, RestartPolicy
    from ._reload import ReloadPlan, plan_reload
    from ._status import (
        LOCK_FILE,
        STATUS_FILE,
        AlreadyRunning,
        StatusFileError,
        StatusSnapshot,
        WorkerStatus,
        acquire_lock,
        format_status_table,
        pid_alive,
        read_status,
        status_exit_code,
    )
    from ._supervisor import SlotState, WorkerSlot, classify
    from ._wiring import worker_factory

__all__ = [
    "LOCK_FILE",
    "STATUS_FILE",
    "AlreadyRunning",
    "FailureKind",
    "Orchestrator",
    "ReloadPlan",
    "Reloaded",
    "RestartPolicy",
    "SlotState",
    "StatusFileError",
    "StatusSnapshot",
    "SystemdNotifier",
    "WorkerFactory",
    "WorkerSlot",
    "WorkerStatus",
    "acquire_lock",
    "classify",
    "format_status_table",
    "pid_alive",
    "plan_reload",
    "read_status",
    "status_exit_code",
    "worker_factory",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "._notify": "SystemdNotifier",
        "._orchestrator": "Orchestrator Reloaded WorkerFactory",
        "._policy": "FailureKind RestartPolicy",
        "._reload": "ReloadPlan plan_reload",
        "._status": (
            "LOCK_FILE STATUS_FILE AlreadyRunning StatusFileError StatusSnapshot WorkerStatus "
            "acquire_lock format_status_table pid_alive read_status status_exit_code"
        ),
        "._supervisor": "SlotState WorkerSlot classify",
        "._wiring": "worker_factory",
    },
)
