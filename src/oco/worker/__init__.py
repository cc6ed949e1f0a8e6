"""The worker: one configured worker's lifecycle, Convex watcher, chat relay and OpenCode host.

Public: `Worker` (run it in a nursery; `state` and `report`, a `WorkerReport`, are
observable), `StopControl` (shared stop deadline and force switch), `ModelCatalog` (shared
model listings), `State`, and the pure cores for those who want them (`Lifecycle`,
`plan_replies`).
"""

from ._lifecycle import Event, IllegalTransition, Lifecycle, State
from ._models import ModelCatalog, config_identity
from ._planner import INTERRUPTED_NOTE, NO_MODEL_NOTE, STALE_NOTE, PendingReply, Plan, plan_replies
from ._report import WorkerReport
from ._stop import StopControl
from ._watch import PollingWatcher, Snapshot, Watcher
from ._worker import REMOVED_NOTE, Worker, WorkerRevoked

__all__ = [
    "INTERRUPTED_NOTE",
    "NO_MODEL_NOTE",
    "REMOVED_NOTE",
    "STALE_NOTE",
    "Event",
    "IllegalTransition",
    "Lifecycle",
    "ModelCatalog",
    "PendingReply",
    "Plan",
    "PollingWatcher",
    "Snapshot",
    "State",
    "StopControl",
    "Watcher",
    "Worker",
    "WorkerReport",
    "WorkerRevoked",
    "config_identity",
    "plan_replies",
]
