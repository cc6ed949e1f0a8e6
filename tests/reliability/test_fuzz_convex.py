"""Convex results with missing, extra or wrong-typed fields, through the typed `WorkerBackend`.

The backend answers through an in-memory `httpx.MockTransport` (no socket per example). Whatever
it returns, a call gives the typed result or raises `ConvexProtocolError`, never another
exception; a list with a malformed row keeps the good rows and logs one error per bad row.
"""

from __future__ import annotations

import functools
import json
import logging
import types
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import httpx
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import FUZZ
from oco.convex import (
    ConvexClient,
    ConvexException,
    ConvexProtocolError,
    Int64,
    camel,
    encode,
)
from oco.convex.api import WorkerBackend
from oco.domain import ActiveSession, ChatMessage, Registration, SessionDetails, WorkerRecord

# Convex values of every kind the codec carries (Int64 and bytes are wrong for every field).
SCALARS = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.integers(-(2**63), 2**63 - 1).map(Int64)
    | st.binary(max_size=4)
)
KEYS = st.text(max_size=6).filter(lambda k: k and not k.startswith("$"))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=5,
)


@attrs.frozen
class FieldSpec:
    wire: str
    kind: type  # str, float or bool
    required: bool


@functools.cache
def field_specs(cls: type) -> tuple[FieldSpec, ...]:
    attrs.resolve_types(cls)
    specs = []
    for field in attrs.fields(cls):
        kinds = [t for t in typing.get_args(field.type) if t is not type(None)] or [field.type]
        required = field.default is attrs.NOTHING
        specs.append(FieldSpec(camel(field.name), kinds[0], required))
    return tuple(specs)


def _wrong_for(kind: type) -> Callable[[Any], bool]:
    """Whether a value is not of `kind` for the contract (None counts as absent, so not wrong)."""

    def wrong(value: Any) -> bool:
        if value is None:
            return False
        if kind is float:
            # An Int64 decodes to a Python int, which a float field must accept (JSON `0`).
            return isinstance(value, bool) or not isinstance(value, (float, Int64))
        if kind is bool:
            return not isinstance(value, bool)
        return not isinstance(value, kind)

    return wrong


# Strategies are built once: building them inside @composite costs more than the test itself.
GOOD = {str: st.text(max_size=6), float: st.floats(allow_nan=False), bool: st.booleans()}
WRONG = {kind: VALUES.filter(_wrong_for(kind)) for kind in GOOD}
NOT_OBJECT = VALUES.filter(lambda v: not isinstance(v, dict))


@functools.cache
def _extras(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    known = {s.wire for s in field_specs(cls)}
    return st.dictionaries(KEYS.filter(lambda k: k not in known), VALUES, max_size=2)


@functools.cache
def good_row(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    """A row the contract accepts, optionals present or not, plus extra fields (a newer backend)."""
    specs = field_specs(cls)
    return st.builds(
        lambda required, optional, extra: {**extra, **required, **optional},
        st.fixed_dictionaries({s.wire: GOOD[s.kind] for s in specs if s.required}),
        st.fixed_dictionaries({}, optional={s.wire: GOOD[s.kind] for s in specs if not s.required}),
        _extras(cls),
    )


@st.composite
def _broken(draw: st.DrawFn, cls: type) -> Any:
    row = dict(draw(good_row(cls)))
    specs = field_specs(cls)
    if draw(st.booleans()):
        row.pop(draw(st.sampled_from([s.wire for s in specs if s.required])))
    else:
        spec = draw(st.sampled_from(specs))
        row[spec.wire] = draw(WRONG[spec.kind])
    return row


@functools.cache
def bad_row(cls: type) -> st.SearchStrategy[Any]:
    """A row the contract refuses: a required field missing or wrong-typed, or not an object."""
    return _broken(cls) | NOT_OBJECT


def expected(cls: type, row: dict[str, Any]) -> Any:
    """The attrs value a good row must become (extra fields dropped, absent optionals None)."""
    kwargs = {}
    for field, spec in zip(attrs.fields(cls), field_specs(cls), strict=False):
        if spec.wire in row:
            value = row[spec.wire]
            kwargs[field.name] = float(value) if spec.kind is float and value is not None else value
    return cls(**kwargs)


class _Responder:
    """The one in-memory transport's answer: JSON `body(request)` with HTTP 200.

    One `httpx.AsyncClient` serves every example (building one costs milliseconds, mostly
    its TLS context); MockTransport keeps no per-event-loop state, so it is safe to share.
    """

    body: Callable[[httpx.Request], Any] = staticmethod(lambda request: None)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(self.body(request)).encode())


_RESPONDER = _Responder()
_HTTP = httpx.AsyncClient(transport=httpx.MockTransport(_RESPONDER))


def backend_answering(body: Callable[[httpx.Request], Any]) -> WorkerBackend:
    """A backend whose every call gets the JSON `body(request)` with HTTP 200."""
    _RESPONDER.body = body
    client = ConvexClient("http://127.0.0.1:1", http=_HTTP)
    return WorkerBackend(client, "m1", "w1", "secret-not-in-output")


def success(value: Any) -> Callable[[httpx.Request], Any]:
    encoded = encode(value)

    def body(request: httpx.Request) -> Any:
        if request.url.path.endswith("query_batch"):
            return {"results": [{"status": "success", "value": encoded}] * 2}
        return {"status": "success", "value": encoded}

    return body


# -- list results: the three watched lists and getActiveSessions ------------------------------


async def _worker_sessions(backend: WorkerBackend) -> list[Any]:
    """`chat:subscribeToWorkerSessions` as the subscription watcher reads it."""
    value = await backend.client.query("chat:subscribeToWorkerSessions", {"workerId": backend.worker_id})
    return backend.parse_sessions(value)


LISTS: dict[str, tuple[type, Callable[[WorkerBackend], Awaitable[list[Any]]]]] = {
    "sessions": (ActiveSession, _worker_sessions),
    "messages": (ChatMessage, WorkerBackend.worker_messages),
    "active": (SessionDetails, WorkerBackend.active_sessions),
    "poll_watch": (ActiveSession, lambda b: _poll_sessions(b)),
}


async def _poll_sessions(backend: WorkerBackend) -> list[Any]:
    try:
        _worker, sessions = await backend.poll_watch()
    except ConvexProtocolError as exc:
        # The same value is served as the worker record too; only that half may fail here.
        assert exc.function == "workers:getByMachineAndWorker"
        return await _worker_sessions(backend)
    return sessions


@st.composite
def mixed_list(draw: st.DrawFn, cls: type) -> tuple[list[Any], list[bool]]:
    good = draw(st.lists(st.booleans(), max_size=5))
    rows = [draw(good_row(cls)) if ok else draw(bad_row(cls)) for ok in good]
    return rows, good


@FUZZ
@given(name=st.sampled_from(list(LISTS)), data=st.data())
async def test_a_bad_row_is_left_out_and_logged_once_and_good_rows_kept(
    name: str, data: st.DataObject
) -> None:
    cls, call = LISTS[name]
    rows, good = data.draw(mixed_list(cls))
    backend = backend_answering(success(rows))
    records: list[logging.LogRecord] = []
    handler = _ListHandler(records)
    logging.getLogger("oco.convex.api").addHandler(handler)
    try:
        items = await call(backend)
    finally:
        logging.getLogger("oco.convex.api").removeHandler(handler)
    assert items == [expected(cls, row) for row, ok in zip(rows, good, strict=False) if ok]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    bad_indexes = [i for i, ok in enumerate(good) if not ok]
    # One line per distinct bad row, naming its index (identical rows log once).
    assert len(warnings) <= len(bad_indexes)
    assert {int(w.split("$[", 1)[1].split("]", 1)[0]) for w in warnings} <= set(bad_indexes)
    if bad_indexes:
        assert f"$[{bad_indexes[0]}]" in warnings[0]
    assert all("secret-not-in-output" not in w for w in warnings)


class _ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# -- every call, any value: the typed result or ConvexProtocolError -------------------------

CALLS: dict[str, tuple[Callable[[WorkerBackend], Awaitable[Any]], Any]] = {
    "register": (lambda b: b.register("/p", "me"), Registration),
    "get_worker": (WorkerBackend.get_worker, WorkerRecord | None),
    "session_name": (lambda b: b.session_name("c1"), str | None),
    "set_offline": (WorkerBackend.set_offline, int),
    "mark_connected": (WorkerBackend.mark_connected, int),
    "worker_sessions": (_worker_sessions, list),
    "worker_messages": (WorkerBackend.worker_messages, list),
    "active_sessions": (WorkerBackend.active_sessions, list),
    "poll_watch": (WorkerBackend.poll_watch, tuple),
}

ROWS = [Registration, WorkerRecord, ActiveSession, ChatMessage, SessionDetails]


COUNTS = st.fixed_dictionaries(
    {},
    optional={k: VALUES for k in ("sessionsInactivated", "sessionsTerminated", "sessionsInvalidated")},
)
ANY_RESULT = st.one_of(
    VALUES,
    COUNTS,
    *(good_row(cls) | bad_row(cls) | st.lists(good_row(cls) | bad_row(cls), max_size=3) for cls in ROWS),
)


@FUZZ
@given(name=st.sampled_from(list(CALLS)), value=ANY_RESULT)
async def test_any_result_is_typed_or_a_protocol_error(name: str, value: Any) -> None:
    call, result_type = CALLS[name]
    backend = backend_answering(success(value))
    try:
        result = await call(backend)
    except ConvexProtocolError as exc:
        assert exc.function and "\n" not in str(exc)
        return
    origin = typing.get_origin(result_type)
    if origin in (types.UnionType, typing.Union):
        assert isinstance(result, typing.get_args(result_type))
    else:
        assert isinstance(result, result_type)


# -- the response envelope itself -----------------------------------------------------------

ENVELOPES = (
    st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(["success", "error", "other"]) | VALUES,
            "value": VALUES,
            "errorMessage": VALUES,
            "errorData": VALUES,
            "logLines": VALUES | st.lists(VALUES, max_size=2),
        },
    )
    | VALUES
)


def _json_ready(value: Any) -> Any:
    try:
        return encode(value)
    except Exception:  # noqa: BLE001 - keys the codec refuses: send something still JSON
        return str(value)


@FUZZ
@given(name=st.sampled_from(["register", "get_worker", "worker_messages"]), envelope=ENVELOPES)
async def test_any_response_envelope_ends_in_a_convex_error(name: str, envelope: Any) -> None:
    call, _ = CALLS[name]
    raw = _json_ready(envelope)
    backend = backend_answering(lambda request: raw)
    try:
        await call(backend)
    except ConvexException as exc:
        # Only a backend that said "error" may produce anything but a protocol error.
        if not isinstance(exc, ConvexProtocolError):
            assert isinstance(raw, dict) and raw.get("status") == "error"
        assert "secret-not-in-output" not in str(exc)
