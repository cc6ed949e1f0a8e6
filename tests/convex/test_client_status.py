"""Every HTTP status branch of ConvexClient, against real HTTP servers on loopback or ASGI."""

from __future__ import annotations

import json
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from oco.convex import (
    ConvexAuthError,
    ConvexClient,
    ConvexError,
    ConvexFunctionError,
    ConvexProtocolError,
    ConvexServerError,
    ConvexUnavailable,
    NotAConvexDeployment,
    is_transient,
)
from oco.testing import FakeConvexServer, in_process_convex


def canned(status: int, body: Any, content_type: str = "application/json") -> Any:
    """A minimal ASGI app answering every request with one fixed response."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type.encode())],
            }
        )
        await send({"type": "http.response.body", "body": raw})

    return app


def client_for(app: Any) -> AbstractAsyncContextManager[ConvexClient]:
    return in_process_convex(app, "http://convex.test")


async def test_success_decodes_the_encoded_value(client: ConvexClient, server: FakeConvexServer) -> None:
    worker = server.fake.create_worker()
    record = await client.query(
        "workers:getByMachineAndWorker", {"machineId": worker.machine_id, "workerId": worker.worker_id}
    )
    assert record["workerId"] == worker.worker_id and isinstance(record["createdAt"], float)


async def test_function_error_on_560_is_a_function_error(
    client: ConvexClient, server: FakeConvexServer
) -> None:
    with pytest.raises(ConvexFunctionError) as caught:
        await client.mutation("workers:requestConnect", {"workerId": "nope"})
    assert caught.value.summary == "Worker not found"
    assert caught.value.function == "workers:requestConnect"


async def test_function_error_on_200_is_also_parsed() -> None:
    app = canned(
        200, {"status": "error", "errorMessage": "[Request ID: x] Server Error\nUncaught Error: boom\n  at f"}
    )
    async with client_for(app) as convex:
        with pytest.raises(ConvexFunctionError, match="boom") as caught:
            await convex.query("a:b")
    assert caught.value.summary == "boom"


async def test_error_data_becomes_convex_error() -> None:
    app = canned(
        560, {"status": "error", "errorMessage": "x", "errorData": {"code": {"$integer": "AQAAAAAAAAA="}}}
    )
    async with client_for(app) as convex:
        with pytest.raises(ConvexError) as caught:
            await convex.mutation("a:b")
    assert caught.value.data == {"code": 1}


async def test_unknown_function_is_a_function_error(client: ConvexClient) -> None:
    # Convex answers an unknown (or internal) function as a failed function, not a 400.
    with pytest.raises(ConvexFunctionError, match="Could not find public function for 'nothing:here'"):
        await client.query("nothing:here")


async def test_wrong_kind_is_a_function_error(client: ConvexClient) -> None:
    with pytest.raises(ConvexFunctionError, match="as Query, but it is defined as Mutation"):
        await client.query("workers:heartbeat", {})


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_statuses(status: int) -> None:
    async with client_for(canned(status, b"denied", "text/plain")) as convex:
        with pytest.raises(ConvexAuthError) as caught:
            await convex.query("a:b")
    assert caught.value.status == status and not is_transient(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(
    status: int, server: FakeConvexServer, client: ConvexClient
) -> None:
    server.fake.faults.add(status=status, times=1)
    with pytest.raises(ConvexServerError) as caught:
        await client.query("workers:getByMachineAndWorker", {"machineId": "m", "workerId": "w"})
    assert caught.value.status == status and is_transient(caught.value)


async def test_injected_560_is_a_function_error(server: FakeConvexServer, client: ConvexClient) -> None:
    server.fake.faults.add(function="chat:getSessionName", status=560)
    with pytest.raises(ConvexFunctionError, match="injected fault") as caught:
        await client.query("chat:getSessionName", {"chatSessionId": "s", "workerId": "w"})
    assert not is_transient(caught.value)


@pytest.mark.parametrize("status", [404, 405])
async def test_404_means_not_a_convex_deployment_and_is_not_transient(status: int) -> None:
    async with client_for(canned(status, b"no", "text/plain")) as convex:
        with pytest.raises(NotAConvexDeployment) as caught:
            await convex.mutation("workers:register")
    assert caught.value.status == status and not is_transient(caught.value)
    assert caught.value.describe() == (
        f"http://convex.test is not a Convex deployment (HTTP {status} from /api/mutation, "
        "calling workers:register): check convex_url"
    )


@pytest.mark.parametrize("body", [b"<html><body>Welcome</body></html>", b'{"hello": "world"}', b"[1, 2]"])
async def test_a_200_that_is_no_convex_answer_means_not_a_convex_deployment(body: bytes) -> None:
    async with client_for(canned(200, body, "text/html")) as convex:
        with pytest.raises(NotAConvexDeployment) as caught:
            await convex.query("a:b")
    assert isinstance(caught.value, ConvexProtocolError) and caught.value.field == "body"
    assert caught.value.url == "http://convex.test"
    assert "is not a Convex deployment (HTTP 200" in caught.value.describe()


async def test_unknown_status_field_is_a_protocol_error() -> None:
    async with client_for(canned(200, {"status": "maybe"})) as convex:
        with pytest.raises(ConvexProtocolError):
            await convex.query("a:b")


async def test_refused_connection_is_unavailable_and_never_sent(
    server: FakeConvexServer, client: ConvexClient
) -> None:
    await server.stop_listening()
    with pytest.raises(ConvexUnavailable) as caught:
        await client.query("workers:getByMachineAndWorker", {"machineId": "m", "workerId": "w"})
    assert caught.value.sent is False and is_transient(caught.value)
    await server.start_listening()
    assert await client.query("workers:getByMachineAndWorker", {"machineId": "m", "workerId": "w"}) is None


async def test_log_lines_go_to_debug(caplog: pytest.LogCaptureFixture) -> None:
    app = canned(200, {"status": "success", "value": 1, "logLines": ["[LOG] hello from convex"]})
    caplog.set_level(logging.DEBUG, logger="oco.convex")
    async with client_for(app) as convex:
        assert await convex.query("a:b") == 1.0
    assert any("hello from convex" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


async def test_requests_carry_format_and_client_header() -> None:
    seen: list[tuple[dict[str, Any], dict[bytes, bytes]]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        seen.append((json.loads(body), dict(scope["headers"])))
        await canned(200, {"status": "success", "value": None})(scope, receive, send)

    async with client_for(app) as convex:
        await convex.mutation("chat:writeChunk", {"sequence": 2})
    body, headers = seen[0]
    assert body == {"path": "chat:writeChunk", "args": {"sequence": 2.0}, "format": "convex_encoded_json"}
    assert headers[b"convex-client"].startswith(b"trio-oco-")


async def test_query_batch_falls_back_once_on_404(mock_fake: Any) -> None:
    mock_fake.batch_enabled = False
    async with in_process_convex(mock_fake) as convex:
        queries = [("chat:subscribeToWorkerSessions", {"workerId": "w"})] * 2
        assert await convex.query_batch(queries) == [[], []]
        assert await convex.query_batch(queries) == [[], []]
    # one 404 batch, then single queries only
    assert mock_fake.http_requests == 1 + 2 + 2


async def test_query_batch_is_one_request_when_supported(mock_fake: Any) -> None:
    async with in_process_convex(mock_fake) as convex:
        result = await convex.query_batch(
            [
                ("chat:subscribeToWorkerSessions", {"workerId": "w"}),
                ("workers:getByMachineAndWorker", {"machineId": "m", "workerId": "w"}),
            ]
        )
    assert result == [[], None] and mock_fake.http_requests == 1
