"""Pairing when two messages are sent to one session within the same millisecond (found by the soak)."""

from __future__ import annotations

from oco.domain import ChatMessage
from oco.worker import plan_replies


def _message(id: str, role: str, ts: float) -> ChatMessage:
    return ChatMessage(
        id=id,
        session_id="s1",
        role=role,
        content=f"text of {id}",
        timestamp=ts,
        completed=role == "user",
        model="p/m",
    )


def _plan(messages: list[ChatMessage]):
    return plan_replies(messages, in_flight=frozenset(), now_ms=1e6, stale_age_ms=9e5, online_since_ms=None)


def test_two_sends_in_one_millisecond_each_get_their_own_placeholder() -> None:
    # sendMessage writes user@t and placeholder@t+1; two calls at the same t, in backend order.
    u1, a1, u2, a2 = (
        _message("u1", "user", 10),
        _message("a1", "assistant", 11),
        _message("u2", "user", 10),
        _message("a2", "assistant", 11),
    )
    result = _plan([u1, a1, u2, a2])
    assert [(p.user_message_id, p.reply_message_id, p.content) for p in result.start] == [
        ("u1", "a1", "text of u1"),
        ("u2", "a2", "text of u2"),
    ]
    assert result.orphans == ()


def test_an_exact_match_still_orphans_an_earlier_message_without_placeholder() -> None:
    lost, u, a = _message("lost", "user", 5), _message("u", "user", 10), _message("a", "assistant", 11)
    result = _plan([lost, u, a])
    assert [(p.user_message_id, p.reply_message_id) for p in result.start] == [("u", "a")]
    assert [m.id for m in result.orphans] == ["lost"]
