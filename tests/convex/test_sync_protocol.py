"""Sync protocol messages and the pure client state: wire shapes as the npm client sends
and reads them (convex 1.48.0 `protocol.ts`, `local_state.ts`, `web_socket_manager.ts`)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from oco.convex._sync_protocol import (
    INITIAL_VERSION,
    AddQuery,
    Authenticate,
    AuthError,
    Connect,
    FatalError,
    ModifyQuerySet,
    Ping,
    QueryFailed,
    QueryMalformed,
    QueryRemoved,
    QueryUpdated,
    RemoveQuery,
    StateVersion,
    SyncProtocolError,
    Transition,
    TransitionChunk,
    UnknownServerMessage,
    decode_client_message,
    decode_server_message,
    decode_ts,
    decode_value,
    encode_message,
    encode_ts,
    encode_value,
)
from oco.convex._sync_state import (
    CLIENT_CLOSE,
    HEALTHY_AFTER_S,
    ChunkAssembler,
    QueryError,
    QuerySuccess,
    ReconnectLog,
    ReconnectReport,
    SyncState,
    VersionMismatch,
    backoff_delay,
)


def test_timestamps_travel_as_base64_of_8_little_endian_bytes():
    assert encode_ts(5151996) == "/JxOAAAAAAA="
    assert decode_ts("/JxOAAAAAAA=") == 5151996
    assert decode_ts(encode_ts(2**64 - 1)) == 2**64 - 1
    with pytest.raises(ValueError):
        decode_ts("AAAA")


def test_values_use_the_encoded_json_format():
    assert encode_value({"b": 1, "a": b"\x01"}) == {"a": {"$bytes": "AQ=="}, "b": 1.0}
    assert encode_value(float("-inf")) == {"$float": "AAAAAAAA8P8="}
    assert decode_value({"$integer": "/JxOAAAAAAA="}) == 5151996
    assert decode_value(3) == 3.0 and isinstance(decode_value(3), float)
    assert math.isnan(decode_value(encode_value(float("nan"))))
    with pytest.raises(ValueError):
        encode_value({"$bad": 1})
    with pytest.raises(ValueError):
        encode_value(object())


convex_values = st.recursive(
    st.none()
    | st.booleans()
    | st.text()
    | st.binary()
    | st.floats(allow_nan=False)
    | st.integers(-(2**53), 2**53),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def _as_decoded(value):
    """What a value looks like after a round trip: ints become Float64, tuples lists."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [_as_decoded(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_decoded(v) for k, v in value.items()}
    return value


@given(convex_values)
def test_value_codec_round_trips_through_json_text(value):
    wire = json.loads(json.dumps(encode_value(value)))
    assert decode_value(wire) == _as_decoded(value)


def test_modify_query_set_wraps_args_in_a_one_element_list_like_the_js_client():
    message = ModifyQuerySet(0, 1, (AddQuery(0, "chat:list", {"workerId": "w", "n": 2}), RemoveQuery(3)))
    wire = json.loads(encode_message(message))
    assert wire == {
        "type": "ModifyQuerySet",
        "baseVersion": 0,
        "newVersion": 1,
        "modifications": [
            {"type": "Add", "queryId": 0, "udfPath": "chat:list", "args": [{"n": 2.0, "workerId": "w"}]},
            {"type": "Remove", "queryId": 3},
        ],
    }
    assert decode_client_message(encode_message(message)) == ModifyQuerySet(
        0, 1, (AddQuery(0, "chat:list", {"workerId": "w", "n": 2.0}), RemoveQuery(3))
    )


@pytest.mark.parametrize(
    "message",
    [
        Connect("5f0c", 0, "InitialConnect", 1700000000000),
        Connect("5f0c", 3, None, 1, max_observed_timestamp=99),
        Authenticate("None", 0),
    ],
)
def test_client_messages_round_trip(message):
    assert decode_client_message(encode_message(message)) == message


def test_authenticate_hides_its_token_from_repr():
    assert "s3cret" not in repr(Authenticate("User", 0, "s3cret"))


@pytest.mark.parametrize(
    "message",
    [
        Transition(
            StateVersion(0, 0, 0),
            StateVersion(1, 0, 2**40),
            (
                QueryUpdated(0, {"rows": [1.0, "x"]}, ("log",), None),
                QueryFailed(1, "Uncaught Error: boom", (), {"code": "E"}, None),
                QueryRemoved(2),
            ),
            client_clock_skew=1.5,
            server_ts=1e15,
        ),
        TransitionChunk('{"ty', 0, 2, "t1"),
        Ping(),
        AuthError("expired", 1, True),
        FatalError("bad"),
    ],
)
def test_server_messages_round_trip(message):
    assert decode_server_message(encode_message(message)) == message


def test_transition_wire_shape_matches_protocol_ts():
    text = encode_message(Transition(INITIAL_VERSION, StateVersion(1, 0, 1), (QueryUpdated(7, None),)))
    assert json.loads(text) == {
        "type": "Transition",
        "startVersion": {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="},
        "endVersion": {"querySet": 1, "identity": 0, "ts": "AQAAAAAAAAA="},
        "modifications": [
            {"type": "QueryUpdated", "queryId": 7, "value": None, "logLines": [], "journal": None}
        ],
    }


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"type": 3}',
        '{"type": "Transition", "startVersion": {}}',
        '{"type": "Transition", "startVersion": {"querySet": 0, "identity": 0, "ts": "x"},'
        ' "endVersion": {"querySet": 0, "identity": 0, "ts": "x"}, "modifications": []}',
    ],
)
def test_malformed_server_frames_are_protocol_errors(text):
    with pytest.raises(SyncProtocolError):
        decode_server_message(text)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_fields = (
    "querySet",
    "identity",
    "ts",
    "queryId",
    "value",
    "type",
    "errorMessage",
    "logLines",
    "errorData",
    "journal",
    "chunk",
    "partNumber",
    "totalParts",
    "transitionId",
    "error",
    "baseVersion",
    "authUpdateAttempted",
)
_version_like = st.fixed_dictionaries(
    {
        "querySet": _json | st.integers(0, 3),
        "identity": _json | st.integers(0, 3),
        "ts": _json | st.just("AQAAAAAAAAA="),
    }
)
_modification_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["QueryUpdated", "QueryFailed", "QueryRemoved", "X"]) | _json,
        "queryId": st.integers(0, 3) | _json,
    },
    optional={k: _json for k in ("value", "errorMessage", "logLines", "errorData", "journal")},
)


@given(
    st.one_of(
        _json,
        st.dictionaries(st.sampled_from(_fields), _json).map(
            lambda d: {**d, "type": d.get("type", "Transition")}
        ),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["Transition", "TransitionChunk", "AuthError", "FatalError"]),
                "startVersion": _version_like | _json,
                "endVersion": _version_like | _json,
                "modifications": st.lists(_modification_like | _json, max_size=3) | _json,
            },
            optional={k: _json for k in _fields if k != "type"},
        ),
    )
)
@example(
    {
        "type": "Transition",
        "modifications": [  # OverflowError escaped the decoder
            {"type": "QueryUpdated", "queryId": 0, "value": 10**400}
        ],
        "startVersion": {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="},
        "endVersion": {"querySet": 1, "identity": 0, "ts": "AQAAAAAAAAA="},
    }
)
@example(
    {
        "type": "Transition",
        "modifications": [],
        "endVersion": {},
        "startVersion": {"querySet": 10**400, "identity": 0, "ts": "AAAAAAAAAAA="},
    }
)
def test_any_json_frame_decodes_or_is_a_protocol_error(obj):
    try:
        message = decode_server_message(json.dumps(obj))
    except SyncProtocolError:
        return
    if isinstance(message, Transition):
        assert all(
            isinstance(m, (QueryUpdated, QueryFailed, QueryRemoved, QueryMalformed))
            for m in message.modifications
        )
        for m in message.modifications:
            if isinstance(m, QueryFailed):
                assert isinstance(m.error_message, str)
                assert all(isinstance(line, str) for line in m.log_lines)


@pytest.mark.parametrize(
    ("modification", "detail"),
    [
        ({"type": "QueryUpdated", "queryId": 4}, "QueryUpdated: missing 'value'"),
        ({"type": "QueryUpdated", "queryId": 4, "value": {"$integer": 1}}, "QueryUpdated: Codec"),
        ({"type": "QueryUpdated", "queryId": 4, "value": 1, "logLines": "x"}, "logLines"),
        ({"type": "QueryFailed", "queryId": 4, "errorMessage": 5}, "errorMessage must be a string"),
    ],
)
def test_a_modification_with_a_readable_query_id_fails_that_query_only(modification, detail):
    frame = json.loads(encode_message(Transition(INITIAL_VERSION, StateVersion(1, 0, 1), ())))
    frame["modifications"] = [modification, {"type": "QueryUpdated", "queryId": 5, "value": 2}]
    message = decode_server_message(json.dumps(frame))
    bad, good = message.modifications
    assert isinstance(bad, QueryMalformed) and bad.query_id == 4 and detail in bad.detail
    assert good == QueryUpdated(5, 2.0)


@pytest.mark.parametrize(
    "version",
    [
        {"querySet": "1", "identity": 0, "ts": "AQAAAAAAAAA="},
        {"querySet": True, "identity": 0, "ts": "AQAAAAAAAAA="},
        {"querySet": 1.5, "identity": 0, "ts": "AQAAAAAAAAA="},
        {"querySet": 1, "identity": None, "ts": "AQAAAAAAAAA="},
        {"querySet": 1, "identity": 0, "ts": 1},
        [1, 0, "AQAAAAAAAAA="],
    ],
)
def test_a_wrong_typed_version_is_a_protocol_error(version):
    frame = {
        "type": "Transition",
        "startVersion": version,
        "modifications": [],
        "endVersion": {"querySet": 1, "identity": 0, "ts": "AQAAAAAAAAA="},
    }
    with pytest.raises(SyncProtocolError):
        decode_server_message(json.dumps(frame))


def test_the_joined_chunks_are_bounded():
    assembler = ChunkAssembler(max_chars=10)
    assembler.feed(TransitionChunk("x" * 6, 0, 3, "t"))
    with pytest.raises(SyncProtocolError, match="more than 10"):
        assembler.feed(TransitionChunk("x" * 6, 1, 3, "t"))
    assert not assembler.busy


def test_unknown_server_message_types_are_tolerated():
    assert decode_server_message('{"type": "MutationResponse", "requestId": 1}') == UnknownServerMessage(
        "MutationResponse"
    )


# -- the pure client state --------------------------------------------------------------


def _opened(state: SyncState, now: float = 0.0) -> list:
    state.on_open(client_ts_ms=1, now=now)
    return state.take_outbox()


def test_subscriptions_bump_the_query_set_version_one_step_at_a_time():
    state = SyncState("sess")
    _opened(state)
    a = state.add("chat:one", {"x": 1})
    b = state.add("chat.js:two", {})
    state.remove(a)
    assert state.take_outbox() == [
        ModifyQuerySet(1, 2, (AddQuery(a, "chat:one", {"x": 1}),)),
        ModifyQuerySet(2, 3, (AddQuery(b, "chat:two", {}),)),
        ModifyQuerySet(3, 4, (RemoveQuery(a),)),
    ]
    assert state.queries.keys() == {b}


def test_reconnect_replays_the_whole_query_set_from_version_zero():
    state = SyncState("sess")
    first = _opened(state)
    assert first == [Connect("sess", 0, "InitialConnect", 1, None), ModifyQuerySet(0, 1, ())]
    q = state.add("a:b", {"k": "v"})
    state.apply(Transition(StateVersion(0, 0, 0), StateVersion(1, 0, 5), ()), now=0)
    state.on_close("InactiveServer", CLIENT_CLOSE, jitter=0.5, now=0)
    second = _opened(state)
    assert second == [
        Connect("sess", 1, "InactiveServer", 1, 5),
        ModifyQuerySet(0, 1, (AddQuery(q, "a:b", {"k": "v"}),)),
    ]
    # The reason is reported once, on the socket after the close.
    assert state.last_close_reason is None


def test_transition_must_start_at_the_clients_version():
    state = SyncState("s")
    _opened(state)
    with pytest.raises(VersionMismatch):
        state.apply(Transition(StateVersion(2, 0, 0), StateVersion(3, 0, 1), ()), now=0)


def test_transition_results_reach_live_queries_only():
    state = SyncState("s")
    _opened(state)
    q = state.add("a:b", {})
    results = state.apply(
        Transition(INITIAL_VERSION, StateVersion(1, 0, 1), (QueryUpdated(q, 1.0), QueryFailed(99, "gone"))),
        now=0,
    )
    assert results == {q: QuerySuccess(1.0)}
    results = state.apply(
        Transition(StateVersion(1, 0, 1), StateVersion(1, 0, 2), (QueryFailed(q, "boom", error_data="d"),)),
        now=0,
    )
    assert results == {q: QueryError("boom", "d")}
    results = state.apply(
        Transition(
            StateVersion(1, 0, 2),
            StateVersion(1, 0, 3),
            (QueryMalformed(q, "QueryUpdated: missing 'value'"),),
        ),
        now=0,
    )
    assert results == {q: QueryError("malformed result from the server (QueryUpdated: missing 'value')")}


def _resynced(state: SyncState, now: float) -> None:
    """Open a socket at `now` and deliver every query's result at once."""
    _opened(state, now)
    state.apply(
        Transition(
            INITIAL_VERSION, StateVersion(1, 0, 1), tuple(QueryUpdated(q, 1.0) for q in state.queries)
        ),
        now=now,
    )
    assert state.synced


def test_a_transition_alone_does_not_reset_the_backoff():
    state = SyncState("s")
    state.add("a:b", {})
    delays = []
    for n in range(8):  # each socket resyncs, then breaks at once (a bad frame)
        _resynced(state, now=n * 100.0)
        delays.append(state.on_close("SyncProtocolError", None, jitter=0.5, now=n * 100.0 + 1))
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_the_backoff_resets_once_a_resynced_socket_stayed_open_long_enough():
    state = SyncState("s")
    state.add("a:b", {})
    state.add("a:c", {})
    for _ in range(3):
        state.on_close("x", None, jitter=0.5, now=0)
    _opened(state, now=10)
    state.apply(Transition(INITIAL_VERSION, StateVersion(1, 0, 1), (QueryUpdated(0, 1),)), now=10)
    assert not state.synced  # a:c has no result yet: the resync is not complete
    state.apply(Transition(StateVersion(1, 0, 1), StateVersion(1, 0, 2), (QueryUpdated(1, 1),)), now=15)
    assert state.synced and state.retries == 3
    assert state.on_close("x", None, jitter=0.5, now=15 + HEALTHY_AFTER_S - 0.1) == 8.0
    _resynced(state, now=100)
    assert state.on_close("x", None, jitter=0.5, now=100 + HEALTHY_AFTER_S) == 1.0
    assert state.retries == 1


def test_a_socket_that_never_resynced_is_not_healthy_however_long_it_stayed():
    state = SyncState("s")
    state.add("a:b", {})
    state.on_close("x", None, jitter=0.5, now=0)
    _opened(state, now=0)  # the server accepts, then never answers
    assert state.on_close("InactiveServer", CLIENT_CLOSE, jitter=0.5, now=60) == pytest.approx(0.2)


def test_refused_sockets_cap_at_16_s_and_failing_open_ones_at_60_s():
    state = SyncState("s")
    refused = [state.on_close("x", None, jitter=0.5, now=0) for _ in range(7)]
    assert refused[-2:] == [16.0, 16.0]
    _opened(state, now=0)
    assert state.on_close("x", None, jitter=0.5, now=1) == 60.0


def test_reconnect_log_warns_first_then_summarises_every_window():
    log = ReconnectLog(window=300)
    reports = {t: log.on_reconnect(t) for t in (0, 1, 3, 7, 299, 300, 301, 900, 901)}
    assert reports[0] == ReconnectReport(loud=True)
    assert [reports[t].loud for t in (1, 3, 7, 299)] == [False] * 4
    assert reports[300] == ReconnectReport(loud=True, repeats=5, span=300)  # 1..299 and 300
    assert not reports[301].loud
    # A burst that stopped is summarised at the next reconnect, with its true span.
    assert reports[900] == ReconnectReport(loud=True, repeats=2, span=600)
    assert not reports[901].loud
    quiet = ReconnectLog(window=300)
    assert quiet.on_reconnect(0).loud and quiet.on_reconnect(400) == ReconnectReport(loud=True)


def test_backoff_follows_the_js_client():
    assert backoff_delay(CLIENT_CLOSE, 0, 0.5) == pytest.approx(0.1)
    assert backoff_delay(None, 0, 0.5) == 1.0
    assert backoff_delay("TooManyConcurrentRequests: slow down", 0, 0.5) == 3.0
    assert backoff_delay(None, 10, 0.5) == 16.0  # capped
    assert backoff_delay(None, 10, 0.0) == 8.0 and backoff_delay(None, 10, 0.999) < 24.0
    assert backoff_delay(None, 10_000, 0.5) == 16.0  # no overflow
    assert backoff_delay(None, 10_000, 0.5, max_backoff=60.0) == 60.0


def test_transition_chunks_join_into_one_transition():
    text = encode_message(Transition(INITIAL_VERSION, StateVersion(1, 0, 1), (QueryUpdated(0, "x" * 50),)))
    parts = [text[i : i + 16] for i in range(0, len(text), 16)]
    assembler = ChunkAssembler()
    results = [assembler.feed(TransitionChunk(p, n, len(parts), "t")) for n, p in enumerate(parts)]
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == decode_server_message(text)
    assert not assembler.busy


def test_out_of_order_transition_chunk_is_a_protocol_error():
    assembler = ChunkAssembler()
    assembler.feed(TransitionChunk("{", 0, 3, "t"))
    with pytest.raises(SyncProtocolError):
        assembler.feed(TransitionChunk("}", 2, 3, "t"))
    assert not assembler.busy
