"""Whatever size a Convex URL answers with, the client reads a bounded amount and fails cleanly.

A 400 MB response once took the process to 1.2 GB RSS, and a 50 MB error message became a
52 MB log line. The server here is a real HTTP/1.1 server on loopback (a few lines of trio)
that counts the bytes it managed to send: what the client read is at most that.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

from oco._text import EXTERNAL_MAX_CHARS
from oco.convex import (
    ConvexClient,
    ConvexFunctionError,
    ConvexProtocolError,
    ConvexServerError,
)
from oco.convex._client import SUCCESS_BODY_MAX_BYTES

MIB = 1024 * 1024
HUGE = 400 * MIB


@attrs.define
class Streaming:
    """What the server sent: bytes of body written before the client hung up."""

    sent: int = 0
    done: trio.Event = attrs.field(factory=trio.Event)


async def _read_request(stream: trio.SocketStream) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        body += await stream.receive_some(65536)


@asynccontextmanager
async def huge_server(
    status: int, *, total: int, declare_length: bool, prefix: bytes = b""
) -> AsyncIterator[tuple[str, Streaming]]:
    """Answers every request with `status` and a body of `total` bytes (`prefix`, then 'x')."""
    record = Streaming()

    async def handle(stream: trio.SocketStream) -> None:
        try:
            await _read_request(stream)
            framing = f"Content-Length: {total}" if declare_length else "Transfer-Encoding: chunked"
            await stream.send_all(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{framing}\r\n\r\n".encode()
            )
            block = prefix + b"x" * (256 * 1024 - len(prefix))
            left = total
            while left > 0:
                piece = block[: min(len(block), left)]
                block = b"x" * len(block)
                data = piece if declare_length else b"%x\r\n%s\r\n" % (len(piece), piece)
                await stream.send_all(data)
                record.sent += len(piece)
                left -= len(piece)
            if not declare_length:
                await stream.send_all(b"0\r\n\r\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client hung up: what we count is what it could have read
        finally:
            record.done.set()
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}", record
        nursery.cancel_scope.cancel()


async def _call_and_wait(url: str, record: Streaming, exc_type: type[Exception]) -> Exception:
    async with ConvexClient(url) as convex:
        with pytest.raises(exc_type) as caught:
            await convex.query("chat:subscribeToWorkerMessages", {"workerId": "w"})
    with trio.fail_after(30):
        await record.done.wait()
    return caught.value


@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_400_mb_success_body_is_refused_without_reading_it(declare_length: bool) -> None:
    async with huge_server(
        200, total=HUGE, declare_length=declare_length, prefix=b'{"status":"success","value":"'
    ) as (url, record):
        error = await _call_and_wait(url, record, ConvexProtocolError)
    assert "response over 16 MiB" in str(error)
    # What the server got out before the client hung up: the limit plus socket buffers at most.
    assert record.sent < SUCCESS_BODY_MAX_BYTES + 16 * MIB, record.sent
    if declare_length:
        assert record.sent < 16 * MIB  # refused on the declared length: not read at all


async def test_a_50_mb_function_error_is_one_short_line() -> None:
    message = b'{"status":"error","errorMessage":"Uncaught Error: \x1b[31m'
    async with huge_server(560, total=50 * MIB, declare_length=False, prefix=message) as (url, record):
        error = await _call_and_wait(url, record, ConvexFunctionError)
    assert record.sent < 2 * MIB + 16 * MIB
    assert len(str(error)) <= EXTERNAL_MAX_CHARS + 100
    assert "\x1b" not in str(error) and "\x1b" not in error.describe()


async def test_a_50_mb_error_page_is_read_only_to_its_bound() -> None:
    async with huge_server(502, total=50 * MIB, declare_length=False) as (url, record):
        error = await _call_and_wait(url, record, ConvexServerError)
    assert error.status == 502  # type: ignore[attr-defined]
    assert record.sent < 16 * MIB


async def test_ansi_and_huge_texts_in_an_error_message_are_made_inert(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A function error of 1 MB with escape sequences and newlines: one short inert line."""
    text = "Uncaught Error: \x1b]0;pwned\x07\x1b[2J boom\nforged line" + "y" * MIB
    body = json.dumps(
        {"status": "error", "errorMessage": text, "logLines": ["\x1b[31mred log\x1b[0m\nforged"]}
    ).encode()
    async with huge_server(560, total=len(body), declare_length=True, prefix=body) as (url, record):
        caplog.set_level(logging.DEBUG, logger="oco.convex")
        error = await _call_and_wait(url, record, ConvexFunctionError)
    shown = str(error)
    assert "\x1b" not in shown and "\n" not in shown and "boom" in shown
    assert len(shown) <= EXTERNAL_MAX_CHARS + 100
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "red log" in logged and "\x1b" not in logged and "\nforged" not in logged


# -- any status, any body: a value or a Convex error, said in one inert line -------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from oco.convex import ConvexException, NotAConvexDeployment  # noqa: E402

BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"null",
            b"<html>hi</html>",
            b'{"status":"success"}',
            b'{"status":"error"}',
            b'{"code":"InvalidClientVersion","message":"\\u001b[31mbad"}',
            b'{"results":[]}',
        ]
    ),
    st.text(max_size=100).map(lambda t: json.dumps({"status": "error", "errorMessage": t}).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(status=st.integers(200, 599), body=BODIES, route=st.sampled_from(["query", "mutation"]))
async def test_any_status_and_body_is_a_value_or_a_convex_error_in_one_line(
    status: int, body: bytes, route: str
) -> None:
    import httpx

    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    http = httpx.AsyncClient(transport=transport)
    async with ConvexClient("http://convex.test", http=http) as convex:
        try:
            await getattr(convex, route)("a:b")
        except ConvexException as exc:
            line = exc.describe()
            assert line.isprintable() and "\x1b" not in line and exc.url == "http://convex.test"
            if status in (404, 405) or 300 <= status < 400:
                assert isinstance(exc, NotAConvexDeployment)
            return
    assert status in (200, 560)  # a UdfResponse that says success, whatever the status
