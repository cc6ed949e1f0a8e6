"""OpenCode's `/event` payloads and `/session/{id}/message` bodies with junk in them.

`parse_event` gives None or a typed event whose fields have the declared types; the turn's
transcript takes any sequence of parsed events without raising; `reconcile` gives a
`TurnResult` or None for any body. All pure: no server per example.
"""

from __future__ import annotations

import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fuzzing import FUZZ
from oco.opencode import (
    MessageUpdated,
    PartDelta,
    PartUpdated,
    PermissionAsked,
    QuestionAsked,
    SessionError,
    SessionIdle,
    SessionStatus,
    TurnResult,
    parse_event,
    reconcile,
)
from oco.opencode._transcript import TurnTranscript

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from(["ses_1", "msg_1", "prt_1", "text", "reasoning", "tool", "user", "assistant", ""])
    | st.text(max_size=5)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=5,
)
KINDS = st.sampled_from(
    [
        "message.part.delta",
        "message.part.updated",
        "message.updated",
        "session.status",
        "session.idle",
        "session.error",
        "permission.asked",
        "question.asked",
        "server.heartbeat",
        "server.connected",
        "other",
    ]
)
PROPERTY_KEYS = [
    "sessionID",
    "messageID",
    "partID",
    "field",
    "delta",
    "part",
    "info",
    "status",
    "error",
    "id",
    "permission",
    "patterns",
    "questions",
]
PART = st.fixed_dictionaries(
    {},
    optional={"id": SCALARS, "type": SCALARS, "text": VALUES, "messageID": SCALARS, "sessionID": SCALARS},
)
INFO = st.fixed_dictionaries(
    {},
    optional={
        "id": VALUES,
        "role": SCALARS,
        "error": VALUES,
        "sessionID": SCALARS,
        "time": VALUES | st.fixed_dictionaries({"created": VALUES}),
    },
)
PROPERTIES = st.fixed_dictionaries(
    {},
    optional={**{k: VALUES for k in PROPERTY_KEYS}, "part": PART | VALUES, "info": INFO | VALUES},
)
EVENTS = st.fixed_dictionaries({"type": KINDS}, optional={"properties": PROPERTIES | VALUES}) | VALUES

STR_FIELDS = {
    PartDelta: ("session_id", "message_id", "part_id", "field", "delta"),
    PartUpdated: ("session_id",),
    MessageUpdated: ("session_id",),
    SessionStatus: ("session_id",),
    SessionIdle: ("session_id",),
    SessionError: ("session_id",),
    PermissionAsked: ("session_id", "id", "permission"),
    QuestionAsked: ("session_id", "id"),
}
DICT_FIELDS = {PartUpdated: "part", MessageUpdated: "info", SessionStatus: "status"}


@FUZZ
@given(payloads=st.lists(EVENTS, min_size=1, max_size=6), not_before=st.none() | st.just(0.0))
def test_any_event_payload_parses_to_a_typed_event_or_none_and_feeds_a_transcript(
    payloads: list[Any], not_before: float | None
) -> None:
    transcript = TurnTranscript(not_before_ms=not_before)
    for payload in payloads:
        event = parse_event(payload)
        if event is None:
            continue
        for name in STR_FIELDS.get(type(event), ()):
            assert isinstance(getattr(event, name), str), (name, event)
        if type(event) in DICT_FIELDS:
            assert isinstance(getattr(event, DICT_FIELDS[type(event)]), dict)
        if isinstance(event, SessionError):
            assert event.error is None or isinstance(event.error, dict)
        if isinstance(event, PermissionAsked):
            assert all(isinstance(p, str) for p in event.patterns)
        for piece in transcript.feed(event):
            assert isinstance(piece, str) and piece
    result = transcript.result()
    assert isinstance(result.content, str) and isinstance(result.reasoning, str)
    assert result.error is None or (isinstance(result.error, str) and "\n" not in result.error)


MESSAGE = st.fixed_dictionaries(
    {}, optional={"info": INFO | VALUES, "parts": st.lists(PART | VALUES, max_size=3) | VALUES}
)
BODIES = st.lists(MESSAGE | VALUES, max_size=4) | VALUES


USER_IDS = st.none() | st.sampled_from(["msg_1", ""]) | VALUES


@FUZZ
@given(body=BODIES, user_id=USER_IDS, text=st.text(max_size=3))
def test_reconcile_any_message_body_gives_a_result_or_none(body: Any, user_id: Any, text: str) -> None:
    result = reconcile(body, user_id, text)
    assert result is None or isinstance(result, TurnResult)
    if result is not None:
        assert isinstance(result.content, str) and isinstance(result.reasoning, str)
        assert all(isinstance(part, dict) for part in result.other_parts)


def test_a_well_formed_turn_still_reconciles() -> None:
    """The guard against junk keeps the real shape working (what OpenCode 1.18 sends)."""
    now = time.time() * 1000
    body = [
        {
            "info": {"id": "msg_u", "role": "user", "time": {"created": now}},
            "parts": [{"type": "text", "text": "hi"}],
        },
        {
            "info": {"id": "msg_a", "role": "assistant"},
            "parts": [
                {"type": "reasoning", "text": "think"},
                {"type": "text", "text": "hello"},
                {"type": "step-finish"},
            ],
        },
    ]
    result = reconcile(body, "msg_u", "hi")
    assert result == TurnResult("hello", "think", [{"type": "step-finish"}])
