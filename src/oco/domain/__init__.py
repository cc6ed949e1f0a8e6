"""Domain types the worker shares with both adapters, owned by neither.

The backend's records (`Registration`, `WorkerRecord`, `ActiveSession`, `ChatMessage`,
`SessionDetails`), the models a worker publishes (`ModelInfo`) and `Backend`, the protocol of
the backend operations the worker uses. `oco.convex` builds and implements them,
`oco.opencode` builds `ModelInfo`; `ARRAY_LIMIT` is the backend's array limit; neither adapter imports the other. The neutral errors are
in `oco.errors`. Pure: imports nothing but attrs and the standard library.
"""

from ._backend import Backend
from ._limits import ARRAY_LIMIT
from ._records import ActiveSession, ChatMessage, ModelInfo, Registration, SessionDetails, WorkerRecord

__all__ = [
    "ARRAY_LIMIT",
    "ActiveSession",
    "Backend",
    "ChatMessage",
    "ModelInfo",
    "Registration",
    "SessionDetails",
    "WorkerRecord",
]
