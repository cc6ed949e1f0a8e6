"""The worker: one configured worker's lifecycle, Convex watcher, chat relay and OpenCode host.

Public: `Worker` (run it in a nursery; `state` and `report`, a `WorkerReport`, are
observable), `StopControl` (shared stop deadline and force switch), `LiveSettings` (settings
a reload changes in place), `ModelCatalog` (shared model listings), `State`, the pure
cores for those who want them (`Lifecycle`, `plan_replies`), and `OpenCodeHost`/`OpenCodeShare`
for the orchestrator's shared OpenCode servers.
"""

from typing import TYPE_CHECKING

from oco._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers read; at run time a name is imported on first use
    from ._lifecycle import Lifecycle, State
    from ._live_settings import LiveSettings
    from ._models import ModelCatalog
    from ._opencode_host import OpenCodeHost, OpenCodeShare
    from ._planner import INTERRUPTED_NOTE, NO_MODEL_NOTE, STALE_NOTE, PendingReply, plan_replies
    from ._report import WorkerReport
    from ._stop import StopControl
    from ._worker import REMOVED_NOTE, Worker, WorkerRevoked

__all__ = [
    "INTERRUPTED_NOTE",
    "NO_MODEL_NOTE",
    "REMOVED_NOTE",
    "STALE_NOTE",
    "Lifecycle",
    "LiveSettings",
    "ModelCatalog",
    "OpenCodeHost",
    "OpenCodeShare",
    "PendingReply",
    "State",
    "StopControl",
    "Worker",
    "WorkerReport",
    "WorkerRevoked",
    "plan_replies",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "._lifecycle": "Lifecycle State",
        "._live_settings": "LiveSettings",
        "._models": "ModelCatalog",
        "._opencode_host": "OpenCodeHost OpenCodeShare",
        "._planner": "INTERRUPTED_NOTE NO_MODEL_NOTE STALE_NOTE PendingReply plan_replies",
        "._report": "WorkerReport",
        "._stop": "StopControl",
        "._worker": "REMOVED_NOTE Worker WorkerRevoked",
    },
)
