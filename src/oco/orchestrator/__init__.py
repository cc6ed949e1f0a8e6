"""The orchestrator: supervision of many workers in one process, stop, status and reload.

Public: `Orchestrator` (run it with `trio.run(orchestrator.run)`; returns the exit code),
`WorkerSlot`, `classify`, and `worker_factory` (real workers for `dev` and `run`).
"""

from ._orchestrator import Orchestrator
from ._policy import FailureKind, RestartPolicy
from ._supervisor import WorkerSlot, classify
from ._wiring import worker_factory

__all__ = ["FailureKind", "Orchestrator", "RestartPolicy", "WorkerSlot", "classify", "worker_factory"]
