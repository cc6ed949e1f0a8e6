"""Whatever the model produces, a reply fits Convex's limits and is never empty (issue 13).

Convex refuses a value over 1 MiB ("Value is too large"), and content, reasoning and
otherParts are fields of one message document (1 MiB too): an answer over 1 MiB never
completed, and a turn whose only tool call was rejected ended with empty content.
"""

from __future__ import annotations

import json

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from worker_support import pending_reply

from oco.convex import ConvexFunctionError
from oco.domain import ARRAY_LIMIT
from oco.opencode import PermissionDecision, TurnResult
from oco.worker._completion import (
    EMPTY_REPLY,
    Outcome,
    ReplyCompleter,
    reply_from_note,
    reply_from_turn,
)
from oco.worker._limits import MESSAGE_BUDGET, VALUE_LIMIT, json_size

MIB = 1024 * 1024


def _size(value: str | None) -> int:
    return json_size(value) if value is not None else 0


def _arg_sizes_fit(args: dict) -> None:
    """Every string argument within the value limit, every array within the item limit."""
    for key, value in args.items():
        if isinstance(value, str):
            assert json_size(value) <= VALUE_LIMIT, (key, json_size(value))
        if isinstance(value, list):
            assert len(value) <= ARRAY_LIMIT, key


def _huge_turn() -> TurnResult:
    content = 'Grüße, 世界! "quoted"\n' * 70_000  # 1.6 MB of UTF-8, more as JSON
    reasoning = "thinking… " * 40_000
    tool = {"type": "tool", "tool": "bash", "state": {"status": "completed", "output": "x" * 3 * MIB}}
    return TurnResult(content, reasoning, [tool] * 3)


def test_an_answer_over_1_mib_is_cut_with_a_marker_and_the_message_fits_one_document() -> None:
    result = _huge_turn()
    final = reply_from_turn(result, result.content, opencode_session="ses_abc")
    assert final.structured
    total = _size(final.content) + _size(final.reasoning) + _size(final.other_parts)
    assert total <= MESSAGE_BUDGET < VALUE_LIMIT
    cut = final.content.rindex("\n\n[… answer cut: ")
    assert result.content.startswith(final.content[:cut])
    assert cut > 500_000  # the answer keeps most of the room
    marker = final.content[cut:]
    assert (
        marker.startswith("\n\n[… answer cut: it is 1.") and "a Convex message holds 1 MiB in all" in marker
    )
    assert "the full text is in OpenCode session ses_abc" in marker
    assert "[… reasoning cut: " in final.reasoning
    assert json.loads(final.other_parts)[-1]["type"] in ("tool", "truncated")


def test_a_small_answer_is_sent_as_is() -> None:
    result = TurnResult("short answer", "brief", [{"type": "tool", "tool": "bash"}])
    final = reply_from_turn(result, "short answer", opencode_session="ses_1")
    assert (final.content, final.reasoning) == ("short answer", "brief")
    assert json.loads(final.other_parts) == [{"type": "tool", "tool": "bash"}]


def test_an_error_note_after_a_huge_stream_still_fits_and_keeps_the_note() -> None:
    final = reply_from_note("y" * 3 * MIB, "Error: OpenCode stopped unexpectedly (exit code 1)")
    assert not final.structured
    assert _size(final.content) <= MESSAGE_BUDGET
    assert final.content.endswith("\n\nError: OpenCode stopped unexpectedly (exit code 1)")
    assert "[… answer cut: it is 3.0 MiB" in final.content


def test_a_huge_error_note_is_bounded_too() -> None:
    final = reply_from_note("streamed", "Error: " + "z" * 3 * MIB)
    assert (
        final.content.startswith("streamed\n\nError: zzz") and "[… note cut: it is 3.0 MiB" in final.content
    )
    assert _size(final.content) <= 20 * 1024


def test_a_turn_whose_only_tool_call_was_rejected_gets_a_readable_reply() -> None:
    rejected = PermissionDecision("per_1", "bash", ["echo *"], "reject")
    tool = {"type": "tool", "tool": "bash", "state": {"status": "error", "error": "rejected"}}
    result = TurnResult("", "", [tool], permissions=[rejected])
    final = reply_from_turn(result, "", opencode_session="ses_1")
    assert final.content == "(The agent's tool call was rejected by the permission policy: bash.)"
    assert json.loads(final.other_parts) == [tool]  # the tool part is still shown


def test_several_rejected_tools_are_named_once_each() -> None:
    decisions = [
        PermissionDecision(f"per_{n}", tool, ["*"], "reject")
        for n, tool in enumerate(["edit", "bash", "bash"])
    ]
    result = TurnResult(" \n", "", [{"type": "tool"}], permissions=decisions)
    final = reply_from_turn(result, "", opencode_session=None)
    assert final.content == "(The agent's tool calls were rejected by the permission policy: bash, edit.)"


def test_a_turn_with_tool_parts_and_no_text_is_never_empty() -> None:
    allowed = PermissionDecision("per_1", "bash", ["ls"], "once")
    result = TurnResult("", "", [{"type": "tool"}], permissions=[allowed])
    assert reply_from_turn(result, "", opencode_session=None).content == EMPTY_REPLY


@given(
    st.text(max_size=20),
    st.text(max_size=20),
    st.lists(st.dictionaries(st.sampled_from(["type", "x"]), st.text(max_size=5)), max_size=3),
    st.lists(st.sampled_from(["once", "reject"]), max_size=3),
    st.one_of(st.none(), st.text(min_size=1, max_size=10)),
)
def test_no_turn_result_completes_with_empty_content(content, streamed, parts, replies, error) -> None:
    decisions = [PermissionDecision(f"p{n}", "bash", [], r) for n, r in enumerate(replies)]
    final = reply_from_turn(TurnResult(content, "", parts, error, decisions), streamed, opencode_session=None)
    assert final.content.strip()


def test_lone_surrogates_from_a_peer_are_made_encodable() -> None:
    final = reply_from_turn(TurnResult("bad \ud800 text", "\udfff", []), "", opencode_session=None)
    final.content.encode("utf-8")
    final.reasoning.encode("utf-8")


async def test_the_oversized_answer_completes_in_convex_with_every_argument_within_the_limits(
    fake, new_worker, autojump_clock
):
    created = fake.create_worker(online=True)
    worker = new_worker(created)
    chat = fake.start_session(created.worker_id)
    reply_id = fake.send_message(chat, "write a lot")
    reply = pending_reply(fake, chat, reply_id)
    result = _huge_turn()
    final = reply_from_turn(result, result.content, opencode_session="ses_abc")
    with trio.fail_after(60):
        assert await ReplyCompleter(worker.backend).complete(reply, final) is Outcome.LANDED
    stored = fake.message(reply_id)
    assert stored.completed and "[… answer cut: " in stored.content
    assert [c.function for c in fake.calls][-1] == "chat:completeStructuredMessage"  # first form took
    for call in fake.calls:
        _arg_sizes_fit(call.args)


async def test_the_fake_refuses_the_whole_oversized_answer_as_the_relay_used_to_send_it(
    fake, new_worker, autojump_clock
):
    # What the completion above is up against (and what every restart re-ran before).
    created = fake.create_worker(online=True)
    worker = new_worker(created)
    chat = fake.start_session(created.worker_id)
    reply_id = fake.send_message(chat, "write a lot")
    result = _huge_turn()
    with pytest.raises(ConvexFunctionError, match="too large"):
        await worker.backend.complete_structured(chat, reply_id, result.content, result.reasoning, None)
