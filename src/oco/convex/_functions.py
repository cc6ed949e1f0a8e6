"""Which backend mutations may be repeated safely: the one idempotency table.

A mutation listed here leaves the same state when applied twice (it patches rows to given
values), so the client retries it on any transient failure. Any other mutation — notably
`chat:writeChunk`, which inserts a row per call — is retried only when the request provably
never reached the server. Queries are always retried.
"""

from __future__ import annotations

IDEMPOTENT_MUTATIONS: frozenset[str] = frozenset(
    {
        "workers:register",  # patches status/heartbeat/directory to given values
        "workers:heartbeat",  # patches status and lastHeartbeat
        "workers:setOffline",  # sessions already inactive stay inactive (count may drop to 0)
        "workers:markConnected",  # same: connectedAt moves, sessions stay inactive
        "workerModels:updateModels",  # upsert of the whole list
        "chat:sessionReady",  # patches opencodeSessionId
        "chat:completeStructuredMessage",  # patches the message to its final content
        "chat:completeMessage",  # same
    }
)
# Not idempotent on purpose: "chat:writeChunk" inserts a chunk row on every call.


def is_idempotent(function: str) -> bool:
    """True when `function` (a mutation path) may be repeated after an ambiguous failure."""
    return function in IDEMPOTENT_MUTATIONS
