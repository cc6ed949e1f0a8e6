"""The orchestrator: supervision of many workers in one process, stop, status and reload.

Public: `Orchestrator` (run it with `trio.run(orchestrator.run)`; returns the exit code; its
per-worker API is `start_worker`, `stop_worker`, `restart_worker`, `reload` and `workers`),
`Reloaded` (what a reload callable returns), `ReloadPlan` (what a reload did: `summary()`),
`ConvexConnections` (the Convex clients and sockets it lends to workers) and `ConvexLink`
(what one worker borrows), `WorkerSlot`,
`WorkerLike`, `classify`, `SystemdNotifier`, the control errors, the status file helpers, and
`worker_factory` (real workers for `dev` and `run`).
"""

from typing import TYPE_CHECKING

from oco._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers read; at run time a name is imported on first use
    from ._connections import ConvexConnections, ConvexLink
    from ._control import ControlError, OrchestratorStopping, ReloadUnavailable, UnknownWorker
    from ._lending import Lender, ResourceLost
    from ._notify import SystemdNotifier
    from ._orchestrator import Orchestrator, Reloaded
    from ._policy import FailureKind, RestartPolicy
    from ._reload import ReloadPlan
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
    from ._supervisor import SlotState, WorkerLike, WorkerSlot, classify
    from ._wiring import worker_factory

__all__ = [
    "LOCK_FILE",
    "STATUS_FILE",
    "AlreadyRunning",
    "ControlError",
    "ConvexConnections",
    "ConvexLink",
    "FailureKind",
    "Lender",
    "Orchestrator",
    "OrchestratorStopping",
    "ReloadPlan",
    "ReloadUnavailable",
    "Reloaded",
    "ResourceLost",
    "RestartPolicy",
    "SlotState",
    "StatusSnapshot",
    "SystemdNotifier",
    "UnknownWorker",
    "WorkerLike",
    "WorkerSlot",
    "WorkerStatus",
    "acquire_lock",
    "classify",
    "format_status_table",
    "pid_alive",
    "read_status",
    "status_exit_code",
    "worker_factory",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "._connections": "ConvexConnections ConvexLink",
        "._control": "ControlError OrchestratorStopping ReloadUnavailable UnknownWorker",
        "._lending": "Lender ResourceLost",
        "._notify": "SystemdNotifier",
        "._orchestrator": "Orchestrator Reloaded",
        "._policy": "FailureKind RestartPolicy",
        "._reload": "ReloadPlan",
        "._status": (
            "LOCK_FILE STATUS_FILE AlreadyRunning StatusSnapshot WorkerStatus "
            "acquire_lock format_status_table pid_alive read_status status_exit_code"
        ),
        "._supervisor": "SlotState WorkerLike WorkerSlot classify",
        "._wiring": "worker_factory",
    },
)
