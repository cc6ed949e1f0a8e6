"""The reply planner: which turns to start, close as stale, close for a missing model, or log."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from oco.domain import ChatMessage
from oco.worker._planner import (
    INTERRUPTED_NOTE,
    NO_MODEL_NOTE,
    STALE_NOTE,
    PendingReply,
    Plan,
    plan_replies,
)

MINUTE = 60_000.0
STALE = 15 * MINUTE
_ids = itertools.count()


def user(session: str, ts: float, content: str = "hi", model: str | None = "p/m", **kw) -> ChatMessage:
    return ChatMessage(
        id=kw.pop("id", f"u{next(_ids)}"),
        session_id=session,
        role="user",
        content=content,
        timestamp=ts,
        completed=kw.pop("completed", True),
        model=model,
    )


def reply(session: str, ts: float, completed: bool = False, model: str | None = None, **kw) -> ChatMessage:
    return ChatMessage(
        id=kw.pop("id", f"a{next(_ids)}"),
        session_id=session,
        role="assistant",
        content="done" if completed else "",
        timestamp=ts,
        completed=completed,
        model=model,
    )


def plan(
    messages, *, in_flight=frozenset(), now=100 * MINUTE, online_since=None, reported=frozenset()
) -> Plan:
    return plan_replies(
        messages,
        in_flight=in_flight,
        now_ms=now,
        stale_age_ms=STALE,
        online_since_ms=online_since,
        reported_orphans=reported,
    )


def test_a_pending_message_is_started_with_its_placeholder_and_model() -> None:
    u, a = user("s1", 1000, "hello", model="openai/gpt"), reply("s1", 1001)
    result = plan([u, a])
    assert result.start == (PendingReply("s1", u.id, a.id, "hello", "openai/gpt", 1000),)
    assert not (result.close_stale or result.no_model or result.orphans)


def test_an_answered_message_gives_no_work() -> None:
    assert plan([user("s1", 1000), reply("s1", 1001, completed=True)]) == Plan()


def test_a_reply_in_flight_is_not_started_again() -> None:
    u, a = user("s1", 1000), reply("s1", 1001)
    assert plan([u, a], in_flight={a.id}) == Plan()


def test_two_messages_in_one_session_are_both_returned_in_order() -> None:
    u1, a1 = user("s1", 1000, "first"), reply("s1", 1001)
    u2, a2 = user("s1", 2000, "second"), reply("s1", 2001)
    result = plan([u2, a2, a1, u1])  # unsorted input
    assert [(p.user_message_id, p.reply_message_id) for p in result.start] == [
        (u1.id, a1.id),
        (u2.id, a2.id),
    ]


def test_several_sessions_interleave_in_timestamp_order() -> None:
    msgs = [
        user("s2", 1500),
        reply("s2", 1501),
        user("s1", 1000),
        reply("s1", 1001),
        user("s3", 1200),
        reply("s3", 1201, completed=True),
        user("s1", 3000),
        reply("s1", 3001),
    ]
    result = plan(msgs)
    assert [(p.session_id, p.timestamp) for p in result.start] == [
        ("s1", 1000),
        ("s2", 1500),
        ("s1", 3000),
    ]


def test_model_falls_back_to_the_placeholder_then_to_no_model() -> None:
    u1, a1 = user("s1", 1000, model=None), reply("s1", 1001, model="anthropic/claude")
    u2, a2 = user("s2", 1000, model=""), reply("s2", 1001, model="")
    u3, a3 = user("s3", 1000, model=None), reply("s3", 1001, model=None)
    result = plan([u1, a1, u2, a2, u3, a3])
    assert [p.model for p in result.start] == ["anthropic/claude"]
    assert [p.reply_message_id for p in result.no_model] == [a2.id, a3.id]
    assert all(p.model is None for p in result.no_model)


def test_a_user_message_without_placeholder_is_reported_once() -> None:
    u = user("s1", 1000)
    first = plan([u])
    assert first.orphans == (u,) and not first.start
    assert plan([u], reported={u.id}) == Plan()


def test_two_user_messages_then_one_placeholder_pair_the_nearest_and_orphan_the_earlier() -> None:
    u1, u2, a = user("s1", 1000, "lost"), user("s1", 2000, "kept"), reply("s1", 2001)
    result = plan([u1, u2, a])
    assert [(p.user_message_id, p.reply_message_id, p.content) for p in result.start] == [
        (u2.id, a.id, "kept")
    ]
    assert result.orphans == (u1,)


def test_placeholders_are_never_shared_across_sessions() -> None:
    u = user("s1", 1000)
    other = reply("s2", 1001)
    result = plan([u, other])
    assert not result.start and result.orphans == (u,)


def test_an_incomplete_user_message_keeps_its_placeholder_and_gives_no_work() -> None:
    u1 = user("s1", 1000)
    u2 = user("s1", 2000, completed=False)
    a2 = reply("s1", 2001)
    result = plan([u1, u2, a2])
    assert not result.start
    assert result.orphans == (u1,)  # u1's placeholder is missing; a2 is not taken from u2


def test_system_messages_neither_pair_nor_break_a_pair() -> None:
    u = user("s1", 1000)
    s = ChatMessage(id="sys", session_id="s1", role="system", content="x", timestamp=1000.5, completed=True)
    a = reply("s1", 1001)
    assert [p.reply_message_id for p in plan([u, s, a]).start] == [a.id]


def test_equal_timestamps_keep_the_backend_order() -> None:
    # Two sendMessage calls in the same millisecond: u1@t, a1@t+1, u2@t+1, a2@t+2.
    u1, a1, u2, a2 = user("s1", 10), reply("s1", 11), user("s1", 11), reply("s1", 12)
    result = plan([u1, a1, u2, a2])
    assert [(p.user_message_id, p.reply_message_id) for p in result.start] == [
        (u1.id, a1.id),
        (u2.id, a2.id),
    ]


def test_at_start_up_old_messages_are_closed_and_young_ones_answered() -> None:
    now = 100 * MINUTE
    old_u, old_a = user("s1", now - 60 * MINUTE), reply("s1", now - 60 * MINUTE + 1)
    young_u, young_a = user("s2", now - 5 * MINUTE), reply("s2", now - 5 * MINUTE + 1)
    result = plan([old_u, old_a, young_u, young_a], now=now, online_since=now)
    assert [p.reply_message_id for p in result.close_stale] == [old_a.id]
    assert [p.reply_message_id for p in result.start] == [young_a.id]


def test_stale_means_strictly_older_than_the_stale_age() -> None:
    now = 100 * MINUTE
    edge_u, edge_a = user("s1", now - STALE), reply("s1", now - STALE + 1)
    older_u, older_a = user("s2", now - STALE - 1), reply("s2", now - STALE)
    result = plan([edge_u, edge_a, older_u, older_a], now=now, online_since=now)
    assert [p.reply_message_id for p in result.start] == [edge_a.id]
    assert [p.reply_message_id for p in result.close_stale] == [older_a.id]


def test_a_message_sent_while_the_worker_was_online_is_never_closed_as_stale() -> None:
    online = 10 * MINUTE
    u, a = user("s1", online + 1), reply("s1", online + 2)
    result = plan([u, a], now=online + 2 * STALE, online_since=online)
    assert [p.reply_message_id for p in result.start] == [a.id]
    assert not result.close_stale


def test_without_online_since_nothing_is_stale() -> None:
    u, a = user("s1", 0), reply("s1", 1)
    assert [p.reply_message_id for p in plan([u, a], now=10 * STALE).start] == [a.id]


def test_a_stale_close_in_flight_is_not_planned_twice_and_a_failed_one_is_retried() -> None:
    now = 100 * MINUTE
    u, a = user("s1", 0), reply("s1", 1)
    assert plan([u, a], now=now, online_since=now, in_flight={a.id}) == Plan()
    retried = plan([u, a], now=now + MINUTE, online_since=now)
    assert [p.reply_message_id for p in retried.close_stale] == [a.id]


def test_note_texts() -> None:
    assert INTERRUPTED_NOTE == "Interrupted: the worker was stopped"
    assert "offline" in STALE_NOTE and "send it again" in STALE_NOTE
    assert "no model selected" in NO_MODEL_NOTE


# --- properties over arbitrary histories -------------------------------------------------

_message = st.builds(
    lambda i, s, role, ts, done, model: ChatMessage(
        id=f"m{i}",
        session_id=s,
        role=role,
        content=f"c{i}",
        timestamp=ts,
        completed=done,
        model=model,
    ),
    st.integers(),
    st.sampled_from(["s1", "s2", "s3"]),
    st.sampled_from(["user", "assistant", "system"]),
    st.integers(0, 50).map(float),
    st.booleans(),
    st.sampled_from([None, "", "p/m"]),
)
_histories = st.lists(_message, max_size=25, unique_by=lambda m: m.id)


@given(_histories, st.data())
def test_plans_are_consistent_for_any_history(messages: list[ChatMessage], data) -> None:
    by_id = {m.id: m for m in messages}
    in_flight = data.draw(st.sets(st.sampled_from(sorted(by_id) or ["none"])))
    result = plan(messages, in_flight=in_flight, now=40.0, online_since=30.0)
    replies = [*result.start, *result.close_stale, *result.no_model]
    reply_ids = [p.reply_message_id for p in replies]
    user_ids = [p.user_message_id for p in replies]
    assert len(set(reply_ids)) == len(reply_ids)  # a placeholder answers one message
    assert len(set(user_ids)) == len(user_ids)
    assert not set(reply_ids) & in_flight
    for p in replies:
        u, a = by_id[p.user_message_id], by_id[p.reply_message_id]
        assert (u.role, a.role) == ("user", "assistant")
        assert u.completed and not a.completed
        assert u.session_id == a.session_id == p.session_id
        assert u.timestamp <= a.timestamp
    for group in (result.start, result.close_stale, result.no_model, result.orphans):
        stamps = [p.timestamp for p in group]
        assert stamps == sorted(stamps)
    assert all(p.model for p in result.start)
    orphan_ids = {m.id for m in result.orphans}
    assert not orphan_ids & set(user_ids)


@given(_histories, st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_input_order_when_timestamps_differ(messages, rnd) -> None:
    distinct = list({m.timestamp: m for m in messages}.values())
    shuffled = list(distinct)
    rnd.shuffle(shuffled)
    assert plan(distinct) == plan(shuffled)


def test_replies_of_different_sessions_start_oldest_message_first() -> None:
    # Found by the property below: placeholders written in the same millisecond paired in the
    # order they were written, so the newer message of another chat came first.
    newer, older = user("s1", 1.0), user("s2", 0.0)
    result = plan([newer, older, reply("s1", 2.0), reply("s2", 2.0)])
    assert [p.user_message_id for p in result.start] == [older.id, newer.id]
