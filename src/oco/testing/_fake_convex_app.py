"""The fake Convex backend's ASGI app: the Convex HTTP API wire format, exactly as documented.

`POST /api/{query,mutation,action}` and `/api/query_batch` with JSON bodies; a function error
is HTTP 560 with a `UdfResponse`; an unknown function, wrong kind or bad format is HTTP 400
`{"code", "message"}`. WebSocket routes are looked up in `fake.websocket_routes`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import trio

from oco.convex import CodecError, decode, encode
from oco.testing._asgi import answer_lifespan, read_body
from oco.testing._fake_convex_store import FUNCTIONS, FunctionFailure

if TYPE_CHECKING:
    from oco.testing._fake_convex import FakeConvex

FORMATS = {"json", "convex_clean_json", "convex_encoded_json", "convex_json"}
_KINDS = {"/api/query": "query", "/api/mutation": "mutation", "/api/action": "action"}


class BadRequest(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


class _Reply(Exception):
    """Stop handling and answer with this status and payload (an injected fault)."""

    def __init__(self, status: int, payload: Any) -> None:
        self.status = status
        self.payload = payload


def _parse_call(kind: str, body: Any) -> tuple[str, dict[str, Any], str]:
    if not isinstance(body, dict) or not isinstance(body.get("path"), str):
        raise BadRequest("BadJsonBody", "Expected an object with a string `path`.")
    path, fmt = body["path"], body.get("format", "json")
    if fmt not in FORMATS:
        raise BadRequest("BadFormat", f"Invalid value format {fmt!r}")
    function = FUNCTIONS.get(path)
    if function is None:
        raise BadRequest(
            "InvalidConvexFunction", f"Could not find public function for '{path}'."
        )
    if function.kind != kind:
        raise BadRequest(
            "InvalidConvexFunction",
            f"Trying to execute {path} as {kind.capitalize()}, "
            f"but it is defined as {function.kind.capitalize()}.",
        )
    args = body.get("args", {})
    if isinstance(args, list) and len(args) == 1:  # the legacy one-element list
        args = args[0]
    if not isinstance(args, dict):
        raise BadRequest("BadJsonBody", "`args` must be an object.")
    try:
        return path, decode(args), fmt
    except CodecError as exc:
        raise BadRequest("BadJsonBody", f"Invalid argument value: {exc}") from None


def _udf(value: Any, fmt: str) -> dict[str, Any]:
    encoded = fmt in ("convex_encoded_json", "convex_json")
    return {"status": "success", "value": encode(value) if encoded else value}


def _udf_error(message: str) -> dict[str, Any]:
    return {"status": "error", "errorMessage": message}


async def _apply_fault(fake: FakeConvex, path: str) -> tuple[int | None, Any]:
    """Latency and hangs now; returns the status to answer after the function, if any."""
    fault = fake.faults.take(path)
    if fault is None:
        return None, None
    if fault.latency:
        await trio.sleep(fault.latency)
    if fault.hang:
        await trio.sleep_forever()
    if fault.status is None:
        return None, None
    payload = (
        _udf_error("Uncaught Error: injected fault")
        if fault.status == 560
        else "injected fault"
    )
    if not fault.after:
        raise _Reply(fault.status, payload)
    return fault.status, payload


async def _run_one(fake: FakeConvex, kind: str, body: Any) -> tuple[int, Any]:
    path, args, fmt = _parse_call(kind, body)
    fake.record(path, kind, args)
    late_status, late_payload = await _apply_fault(fake, path)
    try:
        value = fake.execute(path, args)
    except FunctionFailure as exc:
        status, payload = 560, _udf_error(exc.error_message)
    else:
        status, payload = 200, _udf(value, fmt)
    if late_status is not None:
        return late_status, late_payload
    return status, payload


async def _batch_route(fake: FakeConvex, body: Any) -> tuple[int, Any]:
    if not fake.batch_enabled:
        return 404, "No route"
    queries = body.get("queries") if isinstance(body, dict) else None
    if not isinstance(queries, list):
        raise BadRequest("BadJsonBody", "Expected `queries`, a list.")
    results = []
    for query in queries:
        # All run at one timestamp: nothing awaits between them unless a fault says so.
        status, payload = await _run_one(fake, "query", query)
        if status not in (200, 560):
            return status, payload
        results.append(payload)
    return 200, {"results": results}


async def _respond(send: Any, status: int, payload: Any) -> None:
    if isinstance(payload, str):
        body, ctype = payload.encode(), b"text/plain; charset=utf-8"
    else:
        body, ctype = json.dumps(payload).encode(), b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def make_app(fake: FakeConvex) -> Any:
    """The ASGI callable serving `fake`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            handler = fake.websocket_route(scope["path"])
            if handler is None:
                await send({"type": "websocket.close", "code": 1008})
                return
            await handler(scope, receive, send)
            return
        fake.http_requests += 1
        body_bytes = await read_body(receive)
        path = scope["path"]
        if scope["method"] != "POST" or (path not in _KINDS and path != "/api/query_batch"):
            await _respond(send, 404, "No route")
            return
        try:
            try:
                body = json.loads(body_bytes or b"null")
            except ValueError:
                raise BadRequest("BadJsonBody", "The request body is not JSON.") from None
            if path == "/api/query_batch":
                status, payload = await _batch_route(fake, body)
            else:
                status, payload = await _run_one(fake, _KINDS[path], body)
        except BadRequest as exc:
            status, payload = 400, {"code": exc.code, "message": exc.message}
        except _Reply as reply:
            status, payload = reply.status, reply.payload
        await _respond(send, status, payload)

    return app
