"""The worker: one configured worker's lifecycle, Convex watcher, chat relay and OpenCode host.

Public: `Worker` (run it in a nursery; `state` is observable), `StopControl` (shared stop
deadline and force switch), `ModelCatalog` (shared model listings), `State`, the notes a
reply can be closed with, and the planner's pure core (`plan_replies`, `PendingReply`).
"""

from ._lifecycle import State
from ._models import ModelCatalog
from ._planner import INTERRUPTED_NOTE, NO_MODEL_NOTE, STALE_NOTE, PendingReply, plan_replies
from ._stop import StopControl
from ._worker import REMOVED_NOTE, Worker

__all__ = [
    "INTERRUPTED_NOTE",
    "NO_MODEL_NOTE",
    "REMOVED_NOTE",
    "STALE_NOTE",
    "ModelCatalog",
    "PendingReply",
    "State",
    "StopControl",
    "Worker",
    "plan_replies",
]
