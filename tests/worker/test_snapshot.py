"""The snapshot rules: what a serving worker does about one snapshot of its record and messages
(revoked, approval withdrawn, connect requested, replies), checked without I/O."""

from __future__ import annotations

import itertools

import attrs
from hypothesis import given
from hypothesis import strategies as st

from oco.domain import ChatMessage, WorkerRecord
from oco.worker._planner import Plan, plan_replies
from oco.worker._snapshot import (
    Ending,
    Snapshot,
    SnapshotActions,
    SnapshotMemory,
    connect_requested,
    plan_snapshot,
)

MINUTE = 60_000.0
STALE = 15 * MINUTE
NOW = 100 * MINUTE
_ids = itertools.count()


def record(
    approval: str = "approved", *, requested: float | None = None, connected: float | None = None
) -> WorkerRecord:
    return WorkerRecord(
        worker_id="w",
        machine_id="m",
        approval_status=approval,
        status="online",
        created_at=0.0,
        connect_requested_at=requested,
        connected_at=connected,
    )


def message(
    role: str, ts: float, *, completed: bool, session: str = "s1", model: str | None = "p/m"
) -> ChatMessage:
    return ChatMessage(
        id=f"{role[0]}{next(_ids)}",
        session_id=session,
        role=role,
        content="hi",
        timestamp=ts,
        completed=completed,
        model=model,
    )


def snap(worker: WorkerRecord | None, *messages: ChatMessage) -> Snapshot:
    return Snapshot(worker, (), tuple(messages))


def decide(
    snapshot: Snapshot, memory: SnapshotMemory | None = None, *, in_flight: frozenset[str] = frozenset()
) -> SnapshotActions:
    return plan_snapshot(
        snapshot,
        memory or SnapshotMemory(online_since_ms=50 * MINUTE),
        in_flight=in_flight,
        now_ms=NOW,
        stale_age_ms=STALE,
    )


def test_a_deleted_record_ends_serving_and_asks_nothing_else() -> None:
    pending = (
        message("user", 90 * MINUTE, completed=True),
        message("assistant", 90 * MINUTE + 1, completed=False),
    )
    memory = SnapshotMemory(1.0, last_connect=5.0, reported_orphans=frozenset({"x"}))
    assert decide(snap(None, *pending), memory) == SnapshotActions(memory, Ending.REVOKED)


def test_a_record_no_longer_approved_ends_serving_before_any_connect_or_reply() -> None:
    pending = (
        message("user", 90 * MINUTE, completed=True),
        message("assistant", 90 * MINUTE + 1, completed=False),
    )
    for approval in ("pending", "revoked", "anything else"):
        worker = record(approval, requested=10.0)
        memory = SnapshotMemory(1.0)
        assert decide(snap(worker, *pending), memory) == SnapshotActions(memory, Ending.APPROVAL_WITHDRAWN)


def test_a_connect_request_after_the_last_connect_is_acted_on_once_and_remembered() -> None:
    worker = record(requested=20.0, connected=10.0)
    first = decide(snap(worker))
    assert first.connect and first.ending is None and first.memory.last_connect == 20.0
    again = decide(snap(worker), first.memory)
    assert not again.connect and again.memory == first.memory


def test_a_newer_connect_request_is_acted_on_again() -> None:
    first = decide(snap(record(requested=20.0, connected=10.0)))
    newer = decide(snap(record(requested=30.0, connected=25.0)), first.memory)
    assert newer.connect and newer.memory.last_connect == 30.0


def test_a_connect_request_answered_already_or_never_made_asks_for_no_connect() -> None:
    for worker in (record(), record(requested=10.0, connected=10.0), record(requested=10.0, connected=20.0)):
        actions = decide(snap(worker))
        assert not actions.connect and actions.memory.last_connect is None


def test_connect_requested_follows_the_timestamps() -> None:
    assert connect_requested(record(requested=1.0))  # never connected
    assert connect_requested(record(requested=2.0, connected=1.0))
    assert not connect_requested(record(requested=1.0, connected=1.0))
    assert not connect_requested(record(requested=1.0, connected=2.0))
    assert not connect_requested(record(connected=2.0))


def test_replies_are_the_planners_for_the_same_facts() -> None:
    old = (
        message("user", 10 * MINUTE, completed=True),
        message("assistant", 10 * MINUTE + 1, completed=False),
    )
    new = (
        message("user", 90 * MINUTE, completed=True),
        message("assistant", 90 * MINUTE + 1, completed=False),
    )
    none = (
        message("user", 91 * MINUTE, completed=True, model=None, session="s2"),
        message("assistant", 91 * MINUTE + 1, completed=False, session="s2", model=None),
    )
    messages = (*old, *new, *none)
    actions = decide(snap(record(), *messages))
    expected = plan_replies(
        messages, in_flight=frozenset(), now_ms=NOW, stale_age_ms=STALE, online_since_ms=50 * MINUTE
    )
    assert actions.replies == expected
    assert [r.reply_message_id for r in expected.close_stale] == [old[1].id]
    assert [r.reply_message_id for r in expected.start] == [new[1].id]
    assert [r.reply_message_id for r in expected.no_model] == [none[1].id]


def test_replies_in_flight_are_not_planned_again() -> None:
    user, placeholder = (
        message("user", 90 * MINUTE, completed=True),
        message("assistant", 90 * MINUTE + 1, completed=False),
    )
    assert decide(snap(record(), user, placeholder), in_flight=frozenset({placeholder.id})).replies == Plan()


def test_an_orphan_is_reported_once_then_remembered() -> None:
    orphan = message("user", 90 * MINUTE, completed=True)
    first = decide(snap(record(), orphan))
    assert first.replies.orphans == (orphan,) and first.memory.reported_orphans == {orphan.id}
    second = decide(snap(record(), orphan), first.memory)
    assert second.replies.orphans == () and second.memory == first.memory


def test_a_connect_and_replies_come_from_one_snapshot() -> None:
    user, placeholder = (
        message("user", 90 * MINUTE, completed=True),
        message("assistant", 90 * MINUTE + 1, completed=False),
    )
    actions = decide(snap(record(requested=5.0), user, placeholder))
    assert actions.connect and [r.reply_message_id for r in actions.replies.start] == [placeholder.id]


_records = st.one_of(
    st.none(),
    st.builds(
        record,
        st.sampled_from(["approved", "pending", "revoked"]),
        requested=st.one_of(st.none(), st.integers(0, 5).map(float)),
        connected=st.one_of(st.none(), st.integers(0, 5).map(float)),
    ),
)
_messages = st.lists(
    st.builds(
        message,
        st.sampled_from(["user", "assistant", "system"]),
        st.integers(0, 120).map(lambda m: m * MINUTE),
        completed=st.booleans(),
        session=st.sampled_from(["s1", "s2"]),
        model=st.sampled_from([None, "p/m"]),
    ),
    max_size=8,
)
_memories = st.builds(
    SnapshotMemory,
    st.one_of(st.none(), st.integers(0, 120).map(lambda m: m * MINUTE)),
    last_connect=st.one_of(st.none(), st.integers(0, 5).map(float)),
)


@given(_records, _messages, _memories)
def test_every_snapshot_gives_exactly_one_of_end_or_work(
    worker: WorkerRecord | None, messages: list[ChatMessage], memory: SnapshotMemory
) -> None:
    actions = decide(Snapshot(worker, (), tuple(messages)), memory)
    if worker is None:
        assert actions == SnapshotActions(memory, Ending.REVOKED)
    elif worker.approval_status != "approved":
        assert actions == SnapshotActions(memory, Ending.APPROVAL_WITHDRAWN)
    else:
        assert actions.ending is None
        wanted = connect_requested(worker) and worker.connect_requested_at != memory.last_connect
        assert actions.connect is wanted
        assert actions.memory.last_connect == (worker.connect_requested_at if wanted else memory.last_connect)
        expected = plan_replies(
            messages,
            in_flight=frozenset(),
            now_ms=NOW,
            stale_age_ms=STALE,
            online_since_ms=memory.online_since_ms,
        )
        assert actions.replies == expected
        assert actions.memory.reported_orphans == {o.id for o in expected.orphans}
        # Deciding again with what it said to remember asks for no second connect or report.
        again = decide(Snapshot(worker, (), tuple(messages)), actions.memory)
        assert not again.connect and again.replies.orphans == ()
        assert attrs.evolve(again, replies=actions.replies) == attrs.evolve(actions, connect=False)
