"""The fake Convex backend's ASGI app: the Convex HTTP API wire format, as Convex serves it.

`POST /api/{query,mutation,action}` and `/api/query_batch` with JSON bodies. A failed
function (its own throw, an unknown or internal function, the wrong kind, bad arguments,
Convex's limits) is HTTP 560 with a `UdfResponse` `{"status": "error", "errorMessage", ...}`
worded for a dev or prod deployment (`_fake_convex_errors`); a request Convex refuses before
running anything (bad `Convex-Client` header, body, path or `format`) is HTTP 400
`{"code", "message"}` (`_fake_convex_http`). In a batch each query gets its own result.
WebSocket routes are looked up in `fake.websocket_routes`.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import trio

from oco.convex import encode
from oco.testing._asgi import answer_lifespan, read_body
from oco.testing._fake_convex_errors import FunctionFailure, request_id
from oco.testing._fake_convex_faults import Fault
from oco.testing._fake_convex_http import (
    BadRequest,
    batch_request,
    check_client_version,
    default_format,
    function_path,
    read_json_body,
    sync_path_version_problem,
    udf_request,
    value_format,
)

if TYPE_CHECKING:
    from oco.testing._fake_convex import FakeConvex

_KINDS = {"/api/query": "query", "/api/mutation": "mutation", "/api/action": "action"}
_BATCH = "/api/query_batch"
_INJECTED = "injected fault"


class _Reply(Exception):
    """Stop handling and answer with this status and payload (an injected fault)."""

    def __init__(self, status: int, payload: Any) -> None:
        self.status = status
        self.payload = payload


# -- values out ---------------------------------------------------------------------------------


def _special(x: float) -> bool:
    return math.isnan(x) or math.isinf(x) or (x == 0.0 and math.copysign(1.0, x) < 0)


def export(value: Any, fmt: str) -> Any:
    """`value` in the requested format: clean `json` (lossy), `encoded` or `export` JSON."""
    if fmt == "encoded":
        return encode(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if fmt == "export" else str(value)
    if isinstance(value, float):
        if fmt == "json" and (math.isnan(value) or math.isinf(value)):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        if fmt == "export" and _special(value):
            return {"$float": base64.b64encode(struct.pack("<d", value)).decode()}
        return value
    if isinstance(value, (bytes, bytearray)):
        text = base64.b64encode(bytes(value)).decode()
        return text if fmt == "json" else {"$bytes": text}
    if isinstance(value, list):
        return [export(item, fmt) for item in value]
    return {key: export(item, fmt) for key, item in value.items()}


class _Answer:
    """One call's `UdfResponse`, built once the value format is known."""

    def __init__(self, fake: FakeConvex, request: str, default_format: str) -> None:
        self.fake = fake
        self.request = request
        self.default_format = default_format  # when a call names no `format`

    def format_of(self, call: dict[str, Any]) -> str:
        return value_format(call.get("format"), self.default_format)

    def _logs(self, body: dict[str, Any], lines: list[str]) -> dict[str, Any]:
        if lines and not self.fake.prod:  # a production deployment never sends log lines
            body["logLines"] = list(lines)
        return body

    def success(self, value: Any, fmt: str, lines: list[str]) -> dict[str, Any]:
        return self._logs({"status": "success", "value": export(value, fmt)}, lines)

    def failure(self, failure: FunctionFailure, fmt: str, lines: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "errorMessage": self.fake.error_message(failure, self.request),
        }
        if failure.has_data:
            body["errorData"] = export(failure.data, fmt)
        return self._logs(body, lines)


def _fault_failure(fault: Fault) -> FunctionFailure:
    if fault.throws_convex_error:
        return FunctionFailure.convex_error(fault.error_data)
    return FunctionFailure(_INJECTED)


async def _apply_fault(fake: FakeConvex, path: str) -> Fault | None:
    """Latency and hangs now; returns the fault whose status answers this call, if any."""
    fault = fake.faults.take(path)
    if fault is None:
        return None
    if fault.latency:
        await trio.sleep(fault.latency)
    if fault.hang:
        await trio.sleep_forever()
    return fault if fault.status is not None else None


def _fault_reply(answer: _Answer, fault: Fault, fmt: str) -> tuple[int, Any]:
    if fault.status == 560:
        return 560, answer.failure(_fault_failure(fault), fmt, [])
    return fault.status or 500, _INJECTED


async def _run(
    fake: FakeConvex, answer: _Answer, kind: str, request: dict[str, Any], fmt_first: str | None
) -> tuple[int, Any]:
    """Run one `{path, args, format?}` call: (HTTP status, UdfResponse or fault payload).

    Convex parses `format` after running a single call (so a mutation commits, then the
    request is refused) and before each query of a batch: `fmt_first` is that early parse."""
    path = function_path(request["path"])
    raw_args = request["args"]
    fake.record(path, kind, raw_args if isinstance(raw_args, dict) else {})
    fault = await _apply_fault(fake, path)
    if fault is not None and not fault.after:
        raise _Reply(*_fault_reply(answer, fault, fmt_first or "json"))
    try:
        value = fake.invoke(kind, path, raw_args)
    except FunctionFailure as failure:
        outcome: tuple[bool, Any] = (False, failure)
    else:
        outcome = (True, value)
    lines = list(fake.store.log_lines)
    fmt = fmt_first if fmt_first is not None else answer.format_of(request)
    if fault is not None:
        return _fault_reply(answer, fault, fmt)
    ok, result = outcome
    if ok:
        return 200, answer.success(result, fmt, lines)
    return 560, answer.failure(result, fmt, lines)


async def _batch(fake: FakeConvex, answer: _Answer, body: Any, text: str) -> tuple[int, Any]:
    if not fake.batch_enabled:
        return 404, "No route"
    results = []
    for query in batch_request(body, text):
        # All run at one timestamp: nothing awaits between them unless a fault says so.
        try:
            status, payload = await _run(fake, answer, "query", query, answer.format_of(query))
        except _Reply as reply:
            status, payload = reply.status, reply.payload
        if status not in (200, 560):
            raise _Reply(status, payload)  # an injected infrastructure failure fails it all
        results.append(payload)
    return 200, {"results": results}


# -- the HTTP shell ---------------------------------------------------------------------------------


async def _respond(send: Any, status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> None:
    if payload is None:
        body, ctype = b"", None
    elif isinstance(payload, str):
        body, ctype = payload.encode(), b"text/plain; charset=utf-8"
    else:
        body, ctype = json.dumps(payload).encode(), b"application/json"
    raw_headers = [(b"content-length", str(len(body)).encode())]
    if ctype is not None:
        raw_headers.insert(0, (b"content-type", ctype))
    raw_headers += [(k.encode(), v.encode("latin-1", "replace")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _get_query(scope: dict[str, Any]) -> BadRequest:
    """`GET /api/query`: Convex's route exists but cannot deserialize `args` from a query string."""
    fields = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "args" in fields:
        why = "args: invalid type: newtype struct, expected any valid JSON value"
    else:
        why = "missing field `path`" if "path" not in fields else "missing field `args`"
    return BadRequest("BadQueryArgs", f"Failed to deserialize query string: {why}")


async def _refuse_websocket(scope: dict[str, Any], send: Any, message: str) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps({"code": "InvalidClientVersion", "message": message}).encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 400,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


async def _websocket(fake: FakeConvex, scope: dict[str, Any], receive: Any, send: Any) -> None:
    handler = fake.websocket_route(scope["path"])
    if handler is None:
        await send({"type": "websocket.close", "code": 1008})
        return
    parts = scope["path"].split("/")
    if len(parts) == 4 and parts[3] == "sync":
        problem = sync_path_version_problem(unquote(parts[2]))
        if problem is not None:
            await receive()  # websocket.connect
            await _refuse_websocket(scope, send, problem)
            return
    await handler(scope, receive, send)


def make_app(fake: FakeConvex) -> Any:
    """The ASGI callable serving `fake`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await _websocket(fake, scope, receive, send)
            return
        fake.http_requests += 1
        raw = await read_body(receive)
        route, method = scope["path"], scope["method"]
        if route not in _KINDS and route != _BATCH:
            await _respond(send, 404, "No route")
            return
        headers = _headers(scope)
        extra: tuple[tuple[str, str], ...] = ()
        try:
            extra = check_client_version(headers.get("convex-client"), strict=fake.strict_client_version)
            if method != "POST":
                if route == "/api/query" and method in ("GET", "HEAD"):
                    raise _get_query(scope)
                allow = "GET,HEAD,POST" if route == "/api/query" else "POST"
                await _respond(send, 405, None, (("allow", allow),))
                return
            body, text = read_json_body(headers.get("content-type"), raw)
            answer = _Answer(fake, request_id(), default_format(headers.get("convex-client")))
            if route == _BATCH:
                status, payload = await _batch(fake, answer, body, text)
            else:
                status, payload = await _run(fake, answer, _KINDS[route], udf_request(body, text), None)
        except BadRequest as exc:
            status, payload = exc.status, {"code": exc.code, "message": exc.message}
            extra = exc.headers or extra
        except _Reply as reply:
            status, payload = reply.status, reply.payload
        await _respond(send, status, payload, extra)

    return app
