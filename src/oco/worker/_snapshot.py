"""What one snapshot of the backend asks of a serving worker, decided without I/O.

A watcher delivers the worker's record, its active sessions and its messages as one
`Snapshot`; `plan_snapshot` turns it into `SnapshotActions`. Every rule that reacts to a
snapshot lives here (h11's `_state.py` is the model); the shell (`Worker._follow`) carries
the actions out in this order:

1. no record: the worker was deleted in the web app (`Ending.REVOKED`); nothing else runs;
2. a record that is not approved: approval was withdrawn (`Ending.APPROVAL_WITHDRAWN`);
3. a connect request (the web app's `requestConnect`) newer than the last connect and not
   acted on yet: `connect` (markConnected, publish the models again, start OpenCode early);
4. the replies to start, to close as stale or for want of a model, and the orphans to
   report once (`plan_replies`).

`SnapshotMemory` is all that carries over from one snapshot to the next; the actions say
what to remember. Pure: attrs and the pure planner only.
"""

from __future__ import annotations

import enum
from collections.abc import Set

import attrs

from oco.domain import ActiveSession, ChatMessage, WorkerRecord

from ._planner import Plan, plan_replies


@attrs.frozen
class Snapshot:
    """The worker's record (None once deleted), its active sessions and its message history,
    as last seen by a watcher."""

    worker: WorkerRecord | None
    sessions: tuple[ActiveSession, ...]
    messages: tuple[ChatMessage, ...]


class Ending(enum.Enum):
    """Why a snapshot ends the worker's serving."""

    REVOKED = "revoked"  # the record is gone: deleted in the web app
    APPROVAL_WITHDRAWN = "approval_withdrawn"  # the record is no longer approved


@attrs.frozen
class SnapshotMemory:
    """What the shell remembers between snapshots while it serves.

    `online_since_ms`: when serving began (Convex clock, ms; see `plan_replies`).
    `last_connect`: the `connectRequestedAt` of the connect request last acted on.
    `reported_orphans`: user message ids already reported as orphans.
    """

    online_since_ms: float | None
    last_connect: float | None = None
    reported_orphans: frozenset[str] = frozenset()


@attrs.frozen
class SnapshotActions:
    """What to do about one snapshot, in order: end (then nothing else), connect, the replies.
    `memory` is what to pass with the next snapshot."""

    memory: SnapshotMemory
    ending: Ending | None = None
    connect: bool = False
    replies: Plan = Plan()


def connect_requested(record: WorkerRecord) -> bool:
    """The web app asked the worker to connect after its last connect."""
    requested = record.connect_requested_at
    return requested is not None and (record.connected_at is None or requested > record.connected_at)


def plan_snapshot(
    snapshot: Snapshot,
    memory: SnapshotMemory,
    *,
    in_flight: Set[str],
    now_ms: float,
    stale_age_ms: float,
) -> SnapshotActions:
    """Decide what one snapshot asks for (see the module docstring for the rules).

    `in_flight`, `now_ms` and `stale_age_ms` are those of `plan_replies`.
    """
    record = snapshot.worker
    if record is None:
        return SnapshotActions(memory, Ending.REVOKED)
    if record.approval_status != "approved":
        return SnapshotActions(memory, Ending.APPROVAL_WITHDRAWN)
    connect = connect_requested(record) and record.connect_requested_at != memory.last_connect
    if connect:
        memory = attrs.evolve(memory, last_connect=record.connect_requested_at)
    replies = plan_replies(
        snapshot.messages,
        in_flight=in_flight,
        now_ms=now_ms,
        stale_age_ms=stale_age_ms,
        online_since_ms=memory.online_since_ms,
        reported_orphans=memory.reported_orphans,
    )
    if replies.orphans:
        reported = memory.reported_orphans | {orphan.id for orphan in replies.orphans}
        memory = attrs.evolve(memory, reported_orphans=reported)
    return SnapshotActions(memory, None, connect, replies)
