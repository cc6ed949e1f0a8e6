"""Convex sync protocol messages: attrs types and their JSON text frames (pure, no I/O).

Mirrors `src/browser/sync/protocol.ts` of the `convex` npm package 1.48.0. Query args and
results inside messages are plain Python values here; they travel in Convex's encoded
JSON (`$integer`, `$float`, `$bytes`) and 64-bit timestamps as base64 of 8 LE bytes.

Server frames are read strictly, since any of them may be malformed: a frame whose shape
is wrong (not JSON, a version that is not an int, `modifications` not a list) is a
`SyncProtocolError`; a modification whose query id is readable but whose other fields are
not becomes `QueryMalformed`, so one bad result fails that query instead of the socket.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

import attrs

from oco.convex._codec import decode, encode
from oco.errors import ProtocolViolation

__all__ = [
    "Action",
    "AddQuery",
    "AuthError",
    "Authenticate",
    "ClientMessage",
    "Connect",
    "FatalError",
    "ModifyQuerySet",
    "Ping",
    "QueryFailed",
    "QueryMalformed",
    "QueryRemoved",
    "QueryUpdated",
    "RemoveQuery",
    "ServerMessage",
    "StateVersion",
    "SyncProtocolError",
    "Transition",
    "TransitionChunk",
    "UnknownServerMessage",
    "decode_client_message",
    "decode_server_message",
    "decode_ts",
    "decode_value",
    "encode_message",
    "encode_ts",
    "encode_value",
    "message_json",
    "modification_json",
]


class SyncProtocolError(ProtocolViolation):
    """A sync-protocol frame that is not valid JSON or misses a required field."""


# Values use the HTTP client's codec: one encoding of Convex values in the package.
encode_value = encode
decode_value = decode


def _b64_8(text: Any) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 8:
        raise ValueError("expected base64 of 8 bytes")
    return raw


def encode_ts(ts: int) -> str:
    """A u64 timestamp → base64 of its 8 little-endian bytes."""
    return base64.b64encode(struct.pack("<Q", ts)).decode("ascii")


def decode_ts(text: Any) -> int:
    """Base64 of 8 little-endian bytes → the u64 timestamp."""
    return struct.unpack("<Q", _b64_8(text))[0]


# -- client → server --------------------------------------------------------------------


@attrs.frozen
class Connect:
    """First message on every socket."""

    session_id: str
    connection_count: int
    last_close_reason: str | None
    client_ts: int
    max_observed_timestamp: int | None = None


@attrs.frozen
class Authenticate:
    """Sets the identity; trio-oco never sends one (its queries are public)."""

    token_type: str  # "Admin" | "User" | "None"
    base_version: int
    value: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class AddQuery:
    query_id: int
    udf_path: str
    args: dict[str, Any]
    journal: str | None = None
    component_path: str | None = None


@attrs.frozen
class RemoveQuery:
    query_id: int


@attrs.frozen
class ModifyQuerySet:
    base_version: int
    new_version: int
    modifications: tuple[AddQuery | RemoveQuery, ...]


@attrs.frozen
class Action:
    """`Mutation`/`Action`/`Event` frames: decoded by the fake server only to ignore them."""

    type: str
    raw: dict[str, Any]


ClientMessage = Connect | Authenticate | ModifyQuerySet | Action

# -- server → client --------------------------------------------------------------------


@attrs.frozen(order=False)
class StateVersion:
    query_set: int
    identity: int
    ts: int


INITIAL_VERSION = StateVersion(query_set=0, identity=0, ts=0)


@attrs.frozen
class QueryUpdated:
    query_id: int
    value: Any
    log_lines: tuple[str, ...] = ()
    journal: str | None = None


@attrs.frozen
class QueryFailed:
    query_id: int
    error_message: str
    log_lines: tuple[str, ...] = ()
    error_data: Any = None
    journal: str | None = None


@attrs.frozen
class QueryRemoved:
    query_id: int


@attrs.frozen
class QueryMalformed:
    """A modification for `query_id` that could not be read (not on the wire: what the
    decoder makes of a QueryUpdated/QueryFailed with wrong-typed fields)."""

    query_id: int
    detail: str


@attrs.frozen
class Transition:
    start_version: StateVersion
    end_version: StateVersion
    modifications: tuple[QueryUpdated | QueryFailed | QueryRemoved | QueryMalformed, ...]
    client_clock_skew: float | None = None
    server_ts: float | None = None


@attrs.frozen
class TransitionChunk:
    chunk: str
    part_number: int
    total_parts: int
    transition_id: str


@attrs.frozen
class Ping:
    pass


@attrs.frozen
class AuthError:
    error: str
    base_version: int
    auth_update_attempted: bool


@attrs.frozen
class FatalError:
    error: str


@attrs.frozen
class UnknownServerMessage:
    """A message type this client does not know (MutationResponse, or something newer)."""

    type: str


ServerMessage = Transition | TransitionChunk | Ping | AuthError | FatalError | UnknownServerMessage

# -- encoding ---------------------------------------------------------------------------


def _version_json(v: StateVersion) -> dict[str, Any]:
    return {"querySet": v.query_set, "identity": v.identity, "ts": encode_ts(v.ts)}


def modification_json(m: Any) -> dict[str, Any]:
    match m:
        case AddQuery():
            out = {
                "type": "Add",
                "queryId": m.query_id,
                "udfPath": m.udf_path,
                "args": [encode_value(m.args)],
            }
            if m.journal is not None:
                out["journal"] = m.journal
            if m.component_path is not None:
                out["componentPath"] = m.component_path
            return out
        case RemoveQuery():
            return {"type": "Remove", "queryId": m.query_id}
        case QueryUpdated():
            return {
                "type": "QueryUpdated",
                "queryId": m.query_id,
                "value": encode_value(m.value),
                "logLines": list(m.log_lines),
                "journal": m.journal,
            }
        case QueryFailed():
            return {
                "type": "QueryFailed",
                "queryId": m.query_id,
                "errorMessage": m.error_message,
                "logLines": list(m.log_lines),
                "errorData": encode_value(m.error_data),
                "journal": m.journal,
            }
        case QueryRemoved():
            return {"type": "QueryRemoved", "queryId": m.query_id}
    raise TypeError(f"not a modification: {m!r}")


def message_json(message: Any) -> dict[str, Any]:
    """The JSON object of one client or server message."""
    match message:
        case Connect():
            out = {
                "type": "Connect",
                "sessionId": message.session_id,
                "connectionCount": message.connection_count,
                "lastCloseReason": message.last_close_reason,
                "clientTs": message.client_ts,
            }
            if message.max_observed_timestamp is not None:
                out["maxObservedTimestamp"] = encode_ts(message.max_observed_timestamp)
            return out
        case Authenticate():
            out = {
                "type": "Authenticate",
                "tokenType": message.token_type,
                "baseVersion": message.base_version,
            }
            if message.value is not None:
                out["value"] = message.value
            return out
        case ModifyQuerySet():
            return {
                "type": "ModifyQuerySet",
                "baseVersion": message.base_version,
                "newVersion": message.new_version,
                "modifications": [modification_json(m) for m in message.modifications],
            }
        case Transition():
            out = {
                "type": "Transition",
                "startVersion": _version_json(message.start_version),
                "endVersion": _version_json(message.end_version),
                "modifications": [modification_json(m) for m in message.modifications],
            }
            if message.client_clock_skew is not None:
                out["clientClockSkew"] = message.client_clock_skew
            if message.server_ts is not None:
                out["serverTs"] = message.server_ts
            return out
        case TransitionChunk():
            return {
                "type": "TransitionChunk",
                "chunk": message.chunk,
                "partNumber": message.part_number,
                "totalParts": message.total_parts,
                "transitionId": message.transition_id,
            }
        case Ping():
            return {"type": "Ping"}
        case AuthError():
            return {
                "type": "AuthError",
                "error": message.error,
                "baseVersion": message.base_version,
                "authUpdateAttempted": message.auth_update_attempted,
            }
        case FatalError():
            return {"type": "FatalError", "error": message.error}
        case Action():
            return message.raw
    raise TypeError(f"not a sync message: {message!r}")


def encode_message(message: Any) -> str:
    """One message → the text of its websocket frame."""
    return json.dumps(message_json(message), separators=(",", ":"), allow_nan=False)


# -- decoding ---------------------------------------------------------------------------

# What reading a hostile frame can raise besides the checks below: bad base64 (binascii),
# an int too big for a float (OverflowError), nesting deeper than the stack (RecursionError).
_DECODE_ERRORS = (
    KeyError,
    TypeError,
    ValueError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    struct.error,
    binascii.Error,
)


def _load(text: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(text, dict):
        obj: Any = text
    else:
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise SyncProtocolError(f"sync frame is not JSON ({type(e).__name__})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise SyncProtocolError("sync frame is not an object with a string 'type'")
    return obj


def _int(value: Any, what: str) -> int:
    # JSON numbers: an int, or a float with an integral value; never a bool or a string.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{what} must be an integer")
    return int(value)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _optional_str(value: Any, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _optional_number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    return float(value)


def _log_lines(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(line, str) for line in value):
        raise TypeError("logLines must be a list of strings")
    return tuple(value)


def _version(obj: Any) -> StateVersion:
    if not isinstance(obj, dict):
        raise TypeError(f"a version must be an object, got {type(obj).__name__}")
    return StateVersion(
        query_set=_int(obj["querySet"], "querySet"),
        identity=_int(obj["identity"], "identity"),
        ts=decode_ts(obj["ts"]),
    )


def _server_modification(
    m: Any,
) -> QueryUpdated | QueryFailed | QueryRemoved | QueryMalformed | None:
    """One modification; None for a kind this client does not know (skipped)."""
    if not isinstance(m, dict):
        raise TypeError(f"a modification must be an object, got {type(m).__name__}")
    kind = _str(m["type"], "a modification's type")
    if kind not in ("QueryUpdated", "QueryFailed", "QueryRemoved"):
        return None  # a newer server's kind: it cannot concern what this client reads
    qid = _int(m["queryId"], "queryId")  # without it the frame cannot be attributed
    try:
        if kind == "QueryUpdated":
            if "value" not in m:
                raise KeyError("value")
            return QueryUpdated(
                qid,
                decode_value(m["value"]),
                _log_lines(m.get("logLines")),
                _optional_str(m.get("journal"), "journal"),
            )
        if kind == "QueryFailed":
            data = m.get("errorData")
            return QueryFailed(
                qid,
                _str(m["errorMessage"], "errorMessage"),
                _log_lines(m.get("logLines")),
                decode_value(data) if data is not None else None,
                _optional_str(m.get("journal"), "journal"),
            )
    except _DECODE_ERRORS as e:
        return QueryMalformed(qid, f"{kind}: {_reason(e)}")
    if kind == "QueryRemoved":
        return QueryRemoved(qid)
    return None


def _reason(e: BaseException) -> str:
    if isinstance(e, KeyError):
        return f"missing {e.args[0]!r}" if e.args else "missing field"
    return f"{type(e).__name__}: {e}"


def decode_server_message(text: str | dict[str, Any]) -> ServerMessage:
    """A server frame → its message; `SyncProtocolError` when malformed."""
    obj = _load(text)
    kind = obj["type"]
    try:
        match kind:
            case "Transition":
                raw = obj["modifications"]
                if not isinstance(raw, list):
                    raise TypeError("modifications must be a list")
                modifications = tuple(m for m in map(_server_modification, raw) if m is not None)
                return Transition(
                    _version(obj["startVersion"]),
                    _version(obj["endVersion"]),
                    modifications,
                    _optional_number(obj.get("clientClockSkew"), "clientClockSkew"),
                    _optional_number(obj.get("serverTs"), "serverTs"),
                )
            case "TransitionChunk":
                return TransitionChunk(
                    _str(obj["chunk"], "chunk"),
                    _int(obj["partNumber"], "partNumber"),
                    _int(obj["totalParts"], "totalParts"),
                    _str(obj["transitionId"], "transitionId"),
                )
            case "Ping":
                return Ping()
            case "AuthError":
                attempted = obj.get("authUpdateAttempted", False)
                if not isinstance(attempted, bool):
                    raise TypeError("authUpdateAttempted must be a bool")
                return AuthError(
                    _str(obj["error"], "error"), _int(obj.get("baseVersion", 0), "baseVersion"), attempted
                )
            case "FatalError":
                return FatalError(_str(obj["error"], "error"))
            case _:
                return UnknownServerMessage(kind)
    except _DECODE_ERRORS as e:
        # The server's type name is echoed: bound it, it is the one free-form part.
        raise SyncProtocolError(f"malformed {kind[:40]} message: {_reason(e)}") from None


def _client_modification(m: dict[str, Any]) -> AddQuery | RemoveQuery:
    if m["type"] == "Add":
        args = m.get("args", [{}])
        # The JS client sends a one-element list; accept a bare object too.
        if isinstance(args, list):
            args = args[0] if args else {}
        decoded = decode_value(args)
        if not isinstance(decoded, dict):
            raise ValueError("query args must be an object")
        return AddQuery(
            int(m["queryId"]), str(m["udfPath"]), decoded, m.get("journal"), m.get("componentPath")
        )
    if m["type"] == "Remove":
        return RemoveQuery(int(m["queryId"]))
    raise ValueError(f"unknown query set modification {m['type']!r}")


def decode_client_message(text: str | dict[str, Any]) -> ClientMessage:
    """A client frame → its message (what the fake server reads)."""
    obj = _load(text)
    kind = obj["type"]
    try:
        match kind:
            case "Connect":
                mot = obj.get("maxObservedTimestamp")
                return Connect(
                    str(obj["sessionId"]),
                    int(obj["connectionCount"]),
                    obj.get("lastCloseReason"),
                    int(obj.get("clientTs", 0)),
                    decode_ts(mot) if mot is not None else None,
                )
            case "Authenticate":
                return Authenticate(str(obj["tokenType"]), int(obj["baseVersion"]), obj.get("value"))
            case "ModifyQuerySet":
                return ModifyQuerySet(
                    int(obj["baseVersion"]),
                    int(obj["newVersion"]),
                    tuple(_client_modification(m) for m in obj["modifications"]),
                )
            case _:
                return Action(kind, obj)
    except _DECODE_ERRORS as e:
        raise SyncProtocolError(f"malformed {kind[:40]} message: {_reason(e)}") from None
