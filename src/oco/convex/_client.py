"""`ConvexClient`: queries, mutations and actions over the Convex HTTP API, with retries.

One POST per call to `/api/{query,mutation,action}` with `format: convex_encoded_json`;
HTTP 200 and 560 carry a `UdfResponse`, other statuses map to typed errors (`_errors.py`).
A call is retried by the `CONVEX_CALL` policy (`oco._retry`): a few attempts within about
10 s, a write that must not be applied twice only when the request never left.

Whatever a URL answers becomes a value or a `ConvexException`, never another exception: a
body is streamed and read only up to a bound (a Convex value is at most 1 MiB, so a success
body over `SUCCESS_BODY_MAX_BYTES` is refused unread), a 404 or a body that is not a Convex
answer is `NotAConvexDeployment`, and every error carries the deployment URL.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx
import trio

from oco import __version__
from oco._retry import CONVEX_CALL, Predicate, RetryPolicy, retrying
from oco._text import ERROR_BODY_MAX_BYTES, external
from oco.convex._codec import CodecError, decode, encode
from oco.convex._errors import (
    ConvexAuthError,
    ConvexError,
    ConvexException,
    ConvexFunctionError,
    ConvexProtocolError,
    ConvexRequestError,
    ConvexUnavailable,
    NotAConvexDeployment,
    function_error,
    redact,
    sensitive_values,
    server_error,
)
from oco.convex._functions import is_idempotent
from oco.convex._version import client_header

log = logging.getLogger("oco.convex")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
FORMAT = "convex_encoded_json"
Kind = Literal["query", "mutation", "action"]

MIB = 1024 * 1024
# A Convex value is at most 1 MiB and a function's result at most 16 MiB (Convex "Limits"):
# a success body larger than this is not a Convex answer, and is refused without reading it.
SUCCESS_BODY_MAX_BYTES = 16 * MIB
# A function error is a message (and at most 1 MiB of ConvexError data).
FUNCTION_ERROR_BODY_MAX_BYTES = 2 * MIB
# Any other status: only a code and a message are read from it.
OTHER_BODY_MAX_BYTES = ERROR_BODY_MAX_BYTES
MAX_LOG_LINES = 100  # function log lines echoed (at DEBUG) per response


def _never_sent(exc: Exception) -> bool:
    return isinstance(exc, ConvexUnavailable) and not exc.sent


class ConvexClient:
    """A client for one Convex deployment; the orchestrator lends one per URL to its workers.

    `http` lets tests plug in a transport (e.g. `httpx.ASGITransport(app=fake.app)`); a client
    passed in is not closed by `aclose`. `attempt_timeout` bounds one attempt end to end
    (httpx's own timeouts bound each network operation); `retry` is the calls' policy.
    """

    def __init__(
        self,
        url: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = CONVEX_CALL,
        attempt_timeout: float | None = 60.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout
        self.retry = retry
        self.attempt_timeout = attempt_timeout
        self._batch_supported: bool | None = None
        self._headers = {"Convex-Client": client_header(__version__)}

    def __repr__(self) -> str:
        return f"ConvexClient({self.url!r})"

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client calls go through; a sync socket to the same deployment upgrades over it."""
        return self._http

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> ConvexClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- public calls ---------------------------------------------------------------------

    async def query(self, path: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run a query; retried on transient failures."""
        return await self._call("query", path, args or {})

    async def mutation(
        self, path: str, args: Mapping[str, Any] | None = None, *, idempotent: bool | None = None
    ) -> Any:
        """Run a mutation; `idempotent=None` looks the path up in the idempotency table."""
        safe = is_idempotent(path) if idempotent is None else idempotent
        return await self._call("mutation", path, args or {}, retry_on=None if safe else _never_sent)

    async def action(
        self, path: str, args: Mapping[str, Any] | None = None, *, idempotent: bool = False
    ) -> Any:
        """Run an action; retried only when the request never left unless `idempotent`."""
        return await self._call("action", path, args or {}, retry_on=None if idempotent else _never_sent)

    async def query_batch(self, queries: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Any]:
        """Run several queries at one timestamp through `/api/query_batch`.

        Backends without the route (HTTP 404) get single queries instead, and the client
        remembers not to try the batch route again.
        """
        if self._batch_supported is False:
            return [await self.query(path, args) for path, args in queries]
        label = "+".join(path for path, _ in queries)
        body = {"queries": [{"path": p, "args": encode(dict(a)), "format": FORMAT} for p, a in queries]}
        secrets = [s for _, a in queries for s in sensitive_values(a)]
        with self._located():
            try:
                payload = await self._with_retries("query_batch", label, body, secrets)
            except NotAConvexDeployment as exc:
                if exc.status != 404:
                    raise
                # An older backend without the route; a URL that is no Convex deployment at
                # all says so again on the single query.
                log.info("Convex backend %s has no /api/query_batch; using single queries", self.url)
                self._batch_supported = False
                return [await self.query(path, args) for path, args in queries]
            results = payload.get("results") if isinstance(payload, dict) else None
            if not isinstance(results, list) or len(results) != len(queries):
                raise ConvexProtocolError(label, "results")
            self._batch_supported = True
            return [
                self._udf_value(result, path, sensitive_values(args))
                for result, (path, args) in zip(results, queries, strict=True)
            ]

    # -- machinery ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _located(self) -> Any:
        """Stamps this deployment's URL on any Convex error raised inside."""
        try:
            yield
        except ConvexException as exc:
            if exc.url is None:
                exc.url = self.url
            raise

    async def _call(
        self, kind: Kind, path: str, args: Mapping[str, Any], *, retry_on: Predicate | None = None
    ) -> Any:
        secrets = sensitive_values(args)
        body = {"path": path, "args": encode(dict(args)), "format": FORMAT}
        with self._located():
            payload = await self._with_retries(kind, path, body, secrets, retry_on=retry_on)
            return self._udf_value(payload, path, secrets)

    async def _with_retries(
        self,
        route: str,
        function: str,
        body: Any,
        secrets: list[str],
        *,
        retry_on: Predicate | None = None,
    ) -> Any:
        """`_post`, retried by the client's policy (`retry_on` narrows it for unsafe writes)."""
        async for attempt in retrying(
            self.retry, on=retry_on, describe=lambda exc: f"{function} failed ({exc})"
        ):
            with attempt, self._located():
                return await self._post(route, function, body, secrets)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _post(self, route: str, function: str, body: Any, secrets: list[str]) -> Any:
        """One attempt: the parsed body of a 200/560 answer, or the typed error of any other."""
        deadline = (
            trio.fail_after(self.attempt_timeout)
            if self.attempt_timeout is not None
            else contextlib.nullcontext()
        )
        try:
            with deadline:
                async with self._http.stream(
                    "POST",
                    f"{self.url}/api/{route}",
                    json=body,
                    headers=self._headers,
                    timeout=self._timeout,
                ) as response:
                    status = response.status_code
                    limit = _body_limit(status)
                    raw, complete = await _read_bounded(response, limit)
        except trio.TooSlowError:
            raise ConvexUnavailable(
                f"no answer within {self.attempt_timeout:g}s", sent=True, function=function
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never left: no connection was established for it.
            raise ConvexUnavailable(_reason(exc, secrets), sent=False, function=function) from None
        except httpx.TransportError as exc:
            raise ConvexUnavailable(_reason(exc, secrets), sent=True, function=function) from None
        log.debug(
            "%s %s -> HTTP %d (%d bytes%s)", route, function, status, len(raw), "" if complete else ", cut"
        )
        if status == 200 and not complete:
            raise ConvexProtocolError(function, "body", f"response over {limit // MIB} MiB (refused)")
        if status == 560 and not complete:
            # The function failed; what it said is too long to read. Why is found from state.
            raise ConvexFunctionError(f"error response over {limit // MIB} MiB (refused)", function=function)
        if status in (200, 560):
            try:
                payload = json.loads(raw)
            except ValueError:
                raise NotAConvexDeployment(
                    function, status=status, route=route, what=f"HTTP {status} with a non-JSON body"
                ) from None
            if route != "query_batch" and not (isinstance(payload, dict) and "status" in payload):
                raise NotAConvexDeployment(
                    function, status=status, route=route, what=f"HTTP {status} without a Convex answer"
                )
            return payload
        text = redact(raw.decode("utf-8", "replace"), secrets)
        if status == 400:
            code, message = _bad_request(text)
            raise ConvexRequestError(code, redact(message, secrets), function=function)
        if status in (401, 403):
            raise ConvexAuthError(status, text[:200], function=function)
        if status in (404, 405) or 300 <= status < 400:
            # Every Convex deployment serves these routes (query_batch aside, see there), and
            # none redirects them: this URL is something else (a web site, a proxy's page).
            what = f"HTTP {status}" if status >= 400 else f"HTTP {status} redirect"
            raise NotAConvexDeployment(function, status=status, route=route, what=what)
        raise server_error(status, function=function)

    def _udf_value(self, payload: Any, function: str, secrets: list[str]) -> Any:
        """The decoded value of a `UdfResponse`, or the typed error it reports."""
        if not isinstance(payload, dict):
            raise ConvexProtocolError(function, "body", "not an object")
        log_lines = payload.get("logLines")
        if isinstance(log_lines, list):  # junk here is not fatal
            for line in log_lines[:MAX_LOG_LINES]:
                log.debug("[%s] %s", function, external(redact(str(line), secrets)))
        status = payload.get("status")
        try:
            if status == "success":
                return decode(payload.get("value"))
            if status == "error":
                message = redact(str(payload.get("errorMessage", "")), secrets)
                if "errorData" in payload:
                    raise ConvexError(decode(payload["errorData"]), message, function=function)
                raise function_error(message, function=function)
        except CodecError as exc:
            raise ConvexProtocolError(function, "value", str(exc)) from None
        raise ConvexProtocolError(function, "status")


def _body_limit(status: int) -> int:
    if status == 200:
        return SUCCESS_BODY_MAX_BYTES
    if status == 560:
        return FUNCTION_ERROR_BODY_MAX_BYTES
    return OTHER_BODY_MAX_BYTES


async def _read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body, and whether that was all of it.

    A declared length over the limit is not read at all; otherwise reading stops at the
    first chunk past the limit (leaving the stream closes the connection, so the rest is
    never received).
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"", False
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(parts)[:limit], False
    return b"".join(parts), True


def _reason(exc: Exception, secrets: list[str]) -> str:
    text = str(exc)
    return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, secrets)


def _bad_request(text: str) -> tuple[str, str]:
    try:
        payload = json.loads(text)
    except ValueError:
        return "BadRequest", text[:200]
    if isinstance(payload, dict):
        return str(payload.get("code", "BadRequest")), str(payload.get("message", ""))
    return "BadRequest", ""


__all__ = ["DEFAULT_TIMEOUT", "ConvexClient", "ConvexException", "RetryPolicy"]
