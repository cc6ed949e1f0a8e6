"""The worker: one configured worker's lifecycle, Convex watcher, chat relay and OpenCode host.

Public: `Worker` (run it in a nursery; `state` and `report`, a `WorkerReport`, are
observable), `StopControl` (shared stop deadline and force switch), `ModelCatalog` (shared
model listings), `State`, and the pure cores for those who want them (`Lifecycle`,
`plan_replies`).
"""

from typing import TYPE_CHECKING

from oco._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers read; at run time a name is imported on first use
    from ._lifecycle import Event, IllegalTransition, Lifecycle, State
    from ._models import ModelCatalog, config_identity
    from ._planner import INTERRUPTED_NOTE, NO_MODEL_NOTE, STALE_NOTE, PendingReply, Plan, plan_replies
    from ._report import WorkerReport
    from ._stop import StopControl
    from ._snapshot import Snapshot
    from ._watch import PollingWatcher, Watcher
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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "._lifecycle": "Event IllegalTransition Lifecycle State",
        "._models": "ModelCatalog config_identity",
        "._planner": "INTERRUPTED_NOTE NO_MODEL_NOTE STALE_NOTE PendingReply Plan plan_replies",
        "._report": "WorkerReport",
        "._stop": "StopControl",
        "._snapshot": "Snapshot",
        "._watch": "PollingWatcher Watcher",
        "._worker": "REMOVED_NOTE Worker WorkerRevoked",
    },
)
