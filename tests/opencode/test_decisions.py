"""The pure parts of the OpenCode layer: parsing, error sentences, the turn transcript."""

from __future__ import annotations

import os
import stat

import pytest

from oco.domain import ModelInfo
from oco.opencode import (
    MessageUpdated,
    OpenCodeError,
    OpenCodeNotFound,
    PartDelta,
    PartUpdated,
    PermissionAsked,
    SessionError,
    SessionIdle,
    SessionStatus,
    describe_error,
    find_opencode_bin,
    models_from_providers,
    parse_event,
    parse_models_output,
    reconcile,
    split_model,
)
from oco.opencode._transcript import TurnTranscript


def test_model_ids_split_at_the_first_slash_only():
    assert split_model("fake/fake-model") == {"providerID": "fake", "modelID": "fake-model"}
    assert split_model("openrouter/meta/llama-3") == {"providerID": "openrouter", "modelID": "meta/llama-3"}
    for bad in ("nomodel", "/x", "x/"):
        with pytest.raises(ValueError, match="expected provider/model"):
            split_model(bad)


def test_events_are_typed_and_unknown_or_malformed_ones_ignored():
    delta = {
        "type": "message.part.delta",
        "properties": {
            "sessionID": "ses_1",
            "messageID": "msg_1",
            "partID": "prt_1",
            "field": "text",
            "delta": "Hi",
        },
    }
    assert parse_event(delta) == PartDelta("ses_1", "msg_1", "prt_1", "text", "Hi")
    assert parse_event({"type": "session.idle", "properties": {"sessionID": "ses_1"}}) == SessionIdle("ses_1")
    assert parse_event(
        {"type": "session.status", "properties": {"sessionID": "s", "status": {"type": "busy"}}}
    ) == SessionStatus("s", {"type": "busy"})
    asked = {
        "type": "permission.asked",
        "properties": {
            "id": "per_1",
            "sessionID": "s",
            "permission": "bash",
            "patterns": ["echo *"],
            "metadata": {},
            "always": [],
        },
    }
    assert parse_event(asked) == PermissionAsked("s", "per_1", "bash", ["echo *"])
    assert parse_event({"type": "session.error", "properties": {}}) is None  # not routable
    assert parse_event({"type": "session.diff", "properties": {"sessionID": "s"}}) is None
    assert parse_event({"type": "message.part.delta", "properties": {"sessionID": "s"}}) is None
    assert parse_event(["not", "a", "dict"]) is None


@pytest.mark.parametrize(
    "error,sentence",
    [
        (
            {"name": "APIError", "data": {"message": "bad  input\n", "statusCode": 400}},
            "The model provider rejected the request (HTTP 400): bad input",
        ),
        (
            {"name": "APIError", "data": {"message": "down", "statusCode": 503}},
            "The model provider failed (HTTP 503): down",
        ),
        (
            {"name": "ProviderAuthError", "data": {"providerID": "x", "message": "no key"}},
            "Provider authentication failed: no key",
        ),
        ({"name": "MessageAbortedError", "data": {"message": "Aborted"}}, "The request was aborted."),
        ({"name": "Weird"}, "OpenCode failed (Weird)."),
        ("just text", "OpenCode failed: just text"),
    ],
)
def test_errors_become_readable_sentences(error, sentence):
    assert describe_error(error) == sentence


def test_long_provider_messages_are_shortened():
    sentence = describe_error({"name": "APIError", "data": {"message": "x" * 5000, "statusCode": 400}})
    assert len(sentence) < 600 and sentence.endswith("… (5000 chars)")


def test_provider_error_texts_reach_the_chat_inert():
    sentence = describe_error(
        {"name": "Bad\x1b[2J", "data": {"message": "\x1b]0;owned\x07no \x1b[31mred\x00"}}
    )
    assert sentence == "OpenCode failed (Bad): no red\\x00"


def _part(part_id: str, kind: str, message_id: str = "msg_a", **extra) -> PartUpdated:
    return PartUpdated("s", {"id": part_id, "type": kind, "messageID": message_id, **extra})


def test_transcript_streams_text_parts_joined_like_the_final_content():
    t = TurnTranscript()
    out: list[str] = []
    t.feed(MessageUpdated("s", {"id": "msg_u", "role": "user"}))
    out += t.feed(_part("prt_u", "text", "msg_u", text="my question"))  # our own text: not streamed
    out += t.feed(PartDelta("s", "msg_a", "prt_1", "text", "early "))  # before its type is known
    out += t.feed(_part("prt_1", "text", text=""))
    out += t.feed(PartDelta("s", "msg_a", "prt_1", "text", "answer"))
    out += t.feed(_part("prt_r", "reasoning", text="hmm"))
    out += t.feed(_part("prt_t", "tool", tool="bash", state={"status": "running"}))
    out += t.feed(_part("prt_t", "tool", tool="bash", state={"status": "completed"}))
    out += t.feed(_part("prt_2", "text", text="second part"))  # deltas were missed entirely
    result = t.result()
    assert "".join(out) == result.content == "early answer\nsecond part"
    assert result.reasoning == "hmm"
    assert [p["state"]["status"] for p in result.other_parts] == ["completed"]
    assert t.started and t.user_message_id == "msg_u"


def test_an_earlier_user_message_updated_during_our_turn_is_not_taken_for_ours():
    # OpenCode re-sends the previous user message (summary, diff) while the next turn starts;
    # taking it for ours would prepend the previous answer to this one.
    t = TurnTranscript(not_before_ms=1_000)
    out: list[str] = []
    t.feed(MessageUpdated("s", {"id": "msg_old", "role": "user", "time": {"created": 500}}))
    out += t.feed(_part("prt_old", "text", "msg_old", text="previous question"))
    t.feed(MessageUpdated("s", {"id": "msg_new", "role": "user", "time": {"created": 1_010}}))
    out += t.feed(_part("prt_a", "text", "msg_a", text="this answer"))
    assert t.user_message_id == "msg_new"
    assert "".join(out) == "this answer"
    messages = [
        {"info": {"id": "msg_old", "role": "user"}, "parts": [{"type": "text", "text": "previous question"}]},
        {
            "info": {"id": "msg_prev", "role": "assistant"},
            "parts": [{"type": "text", "text": "previous answer"}],
        },
        {"info": {"id": "msg_new", "role": "user"}, "parts": [{"type": "text", "text": "x"}]},
        {"info": {"id": "msg_a", "role": "assistant"}, "parts": [{"type": "text", "text": "this answer"}]},
    ]
    assert reconcile(messages, t.user_message_id, "x").content == "this answer"


def test_transcript_keeps_the_first_error():
    t = TurnTranscript()
    t.feed(
        MessageUpdated(
            "s",
            {
                "id": "msg_a",
                "role": "assistant",
                "error": {"name": "ProviderAuthError", "data": {"message": "no key"}},
            },
        )
    )
    t.feed(SessionError("s", {"name": "UnknownError", "data": {"message": "later"}}))
    assert t.result().error == "Provider authentication failed: no key"


def _message(role: str, message_id: str, parts: list[dict], **info) -> dict:
    return {"info": {"id": message_id, "role": role, **info}, "parts": parts}


def test_reconcile_takes_everything_after_our_user_message():
    messages = [
        _message("user", "msg_0", [{"type": "text", "text": "old"}]),
        _message("assistant", "msg_1", [{"type": "text", "text": "old answer"}]),
        _message("user", "msg_2", [{"type": "text", "text": "USE_TOOL"}]),
        _message(
            "assistant",
            "msg_3",
            [{"type": "step-start"}, {"type": "tool", "tool": "bash"}, {"type": "reasoning", "text": "r"}],
        ),
        _message(
            "assistant", "msg_4", [{"type": "text", "text": "tool said: hi"}, {"type": "text", "text": ""}]
        ),
    ]
    by_id = reconcile(messages, "msg_2", "ignored")
    by_text = reconcile(messages, None, "USE_TOOL")
    assert by_id == by_text
    assert by_id.content == "tool said: hi" and by_id.reasoning == "r"
    assert [p["type"] for p in by_id.other_parts] == ["step-start", "tool"]
    assert reconcile(messages, "msg_missing", "x") is None


def test_reconcile_reports_an_assistant_error():
    messages = [
        _message("user", "msg_0", [{"type": "text", "text": "FAIL400"}]),
        _message(
            "assistant",
            "msg_1",
            [],
            error={"name": "APIError", "data": {"message": "bad", "statusCode": 400}},
        ),
    ]
    assert (
        reconcile(messages, "msg_0", "FAIL400").error
        == "The model provider rejected the request (HTTP 400): bad"
    )


def test_models_from_config_providers_and_from_the_cli():
    body = {
        "providers": [
            {
                "id": "fake",
                "name": "Fake",
                "models": {"fake-model": {"id": "fake-model", "name": "Fake Model"}, "b": {"name": "B"}},
            }
        ],
        "default": {},
    }
    assert models_from_providers(body) == [
        ModelInfo("fake/b", "B", "fake"),
        ModelInfo("fake/fake-model", "Fake Model", "fake"),
    ]
    verbose = 'fake/fake-model\n{\n  "id": "fake-model",\n  "name": "Fake Model"\n}\nor/meta/llama\n{"name": "Llama"}\n'
    assert parse_models_output(verbose) == [
        ModelInfo("fake/fake-model", "Fake Model", "fake"),
        ModelInfo("or/meta/llama", "Llama", "or"),
    ]
    assert parse_models_output("a/b\nWARN something happened\nc/d\n") == [
        ModelInfo("a/b", "b", "a"),
        ModelInfo("c/d", "d", "c"),
    ]


def test_the_binary_is_found_in_priority_order(tmp_path):
    def exe(name: str) -> str:
        path = tmp_path / name
        path.write_text("#!/bin/sh\n")
        path.chmod(stat.S_IRWXU)
        return str(path)

    on_path, from_env, configured = exe("opencode"), exe("from-env"), exe("configured")
    environ = {"PATH": str(tmp_path), "OCO_OPENCODE_BIN": from_env}
    assert find_opencode_bin(configured, environ) == configured
    assert find_opencode_bin(None, environ) == from_env
    assert find_opencode_bin(None, {"PATH": str(tmp_path)}) == on_path
    for environ in (
        {"PATH": os.devnull},
        {"PATH": str(tmp_path), "OCO_OPENCODE_BIN": str(tmp_path / "missing")},
    ):
        with pytest.raises(OpenCodeNotFound, match="npm i -g opencode-ai"):
            find_opencode_bin(None, environ)


def test_http_errors_name_the_status_and_never_hide():
    assert (
        str(OpenCodeError(404, "GET /session/x: not found"))
        == "OpenCode request failed (HTTP 404): GET /session/x: not found"
    )
    assert "unreachable" in str(OpenCodeError(None, "ConnectError"))
