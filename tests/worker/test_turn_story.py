"""The outcome line of a turn (pure): how long, how many chunks and tool calls, or the error."""

from __future__ import annotations

from oco.worker._planner import PendingReply
from oco.worker._relay import _Turn, outcome_line
from oco.worker._session_map import ReplyStart

REPLY = PendingReply("chat_1", "user_1", "reply_1", "hello", "fake/fake-model", 0.0)


def _turn(**changes: object) -> _Turn:
    turn = _Turn(REPLY, ReplyStart(first_sequence=0, rerun=False))
    for name, value in changes.items():
        setattr(turn, name, value)
    return turn


def test_an_answer_says_its_time_chunks_and_tool_calls() -> None:
    turn = _turn(chat_name="Fix the build", chunks=4, tool_calls=1)
    assert (
        outcome_line(turn, 12.345) == 'chat "Fix the build": answered in 12.3 s with 4 chunks and 1 tool call'
    )
    assert (
        outcome_line(_turn(chunks=1), 0.04) == "chat chat_1: answered in 0.0 s with 1 chunk and 0 tool calls"
    )


def test_an_error_says_what_went_wrong_inertly() -> None:
    turn = _turn(chat_name="x\x1b[31m\ny", error="OpenCode failed to start: no answer within 15 s")
    line = outcome_line(turn, 15.2)
    assert (
        line
        == 'chat "x\\ny": answered with an error in 15.2 s: OpenCode failed to start: no answer within 15 s'
    )
