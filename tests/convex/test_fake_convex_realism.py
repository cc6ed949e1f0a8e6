"""The fake Convex answers as real Convex serving the reference backend does, dev and prod.

Each expectation is Convex's own behaviour (get-convex/convex-backend: redaction.rs,
udf/src/validation.rs, value/src/{array,object,size}.rs, common/src/version.rs, http/extract.rs)
or the reference backend's source (conradkoh/opencode-orchestrator, services/backend/convex).
"""

from __future__ import annotations

import json
import re
import signal
from typing import Any

import httpx
import pytest
import trio

from oco.convex import ConvexClient, ConvexFunctionError
from oco.testing import CONVEX_MODES, FakeConvex, in_process_convex, open_oco, serve_fake_convex
from oco.testing._fake_convex_errors import FunctionFailure, QueryFailure
from oco.testing._fake_convex_http import BadRequest, check_client_version, parse_semver
from oco.testing._fake_convex_values import format_size, inspect, log_line, size

HEAD = r"\[Request ID: [0-9a-f]{16}\] Server Error"


def prod_of(mode: str) -> bool:
    return mode == "prod"


async def post(
    fake: FakeConvex,
    route: str,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as http:
        if raw is not None:
            return await http.post(f"http://fake/api/{route}", content=raw, headers=headers)
        return await http.post(f"http://fake/api/{route}", json=body, headers=headers)


async def call(fake: FakeConvex, kind: str, path: str, args: Any, fmt: str = "json") -> httpx.Response:
    return await post(fake, kind, {"path": path, "args": args, "format": fmt})


def assert_error(response: httpx.Response, mode: str, dev_text: str) -> dict[str, Any]:
    """A 560 function error: on dev `dev_text` follows the request id; on prod nothing does."""
    assert response.status_code == 560, response.text
    body = response.json()
    assert body["status"] == "error"
    if prod_of(mode):
        assert re.fullmatch(HEAD, body["errorMessage"]), body
        assert "logLines" not in body
    else:
        assert re.fullmatch(HEAD + "\n" + re.escape(dev_text), body["errorMessage"]), body
    return body


# -- 1. prod mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_a_thrown_error_is_redacted_on_prod_and_detailed_on_dev(mode: str) -> None:
    fake = FakeConvex(prod=prod_of(mode))
    created = fake.create_worker()
    args = {
        "machineId": created.machine_id,
        "workerId": created.worker_id,
        "secret": "wrong",
        "workingDirectory": "/w",
        "username": "u",
    }
    response = await call(fake, "mutation", "workers:register", args)
    assert_error(
        response,
        mode,
        "Uncaught Error: Invalid worker secret. Authentication failed.\n"
        "    at handler (../convex/workers.ts:112:13)\n",
    )


@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_log_lines_reach_dev_clients_only(mode: str) -> None:
    fake = FakeConvex(prod=prod_of(mode))
    created = fake.create_worker()  # approved but offline: requestConnect answers, logging once
    response = await call(fake, "mutation", "workers:requestConnect", {"workerId": created.worker_id})
    body = response.json()
    assert response.status_code == 200 and body["value"]["error"] == "WORKER_OFFLINE"
    expected = [f"[LOG] '[workers.requestConnect] Connect request for worker:' '{created.worker_id}'"]
    assert body.get("logLines") == (None if prod_of(mode) else expected)


@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_log_lines_of_a_failed_call_are_kept_on_dev(mode: str) -> None:
    fake = FakeConvex(prod=prod_of(mode))
    models = [{"id": "p/m", "name": "M", "provider": "p"}]
    response = await call(
        fake, "mutation", "workerModels:updateModels", {"workerId": "nobody", "models": models}
    )
    body = assert_error(
        response,
        mode,
        "Uncaught Error: Worker nobody not found\n    at handler (../convex/workerModels.ts:38:13)\n",
    )
    if not prod_of(mode):
        assert body["logLines"] == [
            "[LOG] '[updateModels] Updating models for worker:' 'nobody'",
            "[LOG] '[updateModels] Received 1 models:'",
            "[LOG] '[updateModels]   - p/m (p): M'",
        ]


@pytest.mark.parametrize("mode", CONVEX_MODES)
@pytest.mark.parametrize("fmt", ["json", "convex_encoded_json"])
async def test_convex_error_data_survives_prod(mode: str, fmt: str) -> None:
    fake = FakeConvex(prod=prod_of(mode))
    fake.faults.add(function="workers:heartbeat", convex_error={"code": "SLOW_DOWN", "n": 2.0})
    response = await call(
        fake, "mutation", "workers:heartbeat", {"machineId": "m", "workerId": "w", "secret": "s"}, fmt
    )
    body = assert_error(response, mode, 'Uncaught ConvexError: {"code":"SLOW_DOWN","n":2.0}\n')
    assert body["errorData"] == {"code": "SLOW_DOWN", "n": 2.0}


@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_an_injected_560_reads_like_a_thrown_error(mode: str) -> None:
    fake = FakeConvex(prod=prod_of(mode))
    fake.faults.add(function="workers:heartbeat", status=560)
    response = await call(
        fake, "mutation", "workers:heartbeat", {"machineId": "m", "workerId": "w", "secret": "s"}
    )
    assert_error(response, mode, "Uncaught Error: injected fault\n")


@pytest.mark.parametrize("mode", CONVEX_MODES)
def test_a_failing_subscribed_query_hides_its_text_on_prod(mode: str) -> None:
    # The sync endpoint turns what run_query raises into QueryFailed: nothing of the function's
    # text may reach a prod client, and the same failure keeps the same text (no re-send).
    fake = FakeConvex(prod=prod_of(mode))
    failures = []
    for _ in range(2):
        with pytest.raises(QueryFailure) as caught:
            fake.run_query("chat:subscribeToWorkerSessions", {})
        failures.append(caught.value)
    first, second = failures
    assert first.error_message == second.error_message and str(first) == str(second)
    if prod_of(mode):
        assert re.fullmatch(HEAD, first.error_message) and re.fullmatch(HEAD, str(first))
    else:
        assert re.fullmatch(
            HEAD + r"\nArgumentValidationError: Object is missing the required field `workerId`\..*\n",
            first.error_message,
            re.DOTALL,
        )
        assert str(first).startswith("ArgumentValidationError: Object is missing")


@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_query_failed_over_the_sync_socket_is_redacted_on_prod(mode: str) -> None:
    from httpx_ws import aconnect_ws
    from httpx_ws.transport import ASGIWebSocketTransport

    fake = FakeConvex(prod=prod_of(mode))
    async with httpx.AsyncClient(transport=ASGIWebSocketTransport(fake.app)) as http:
        async with aconnect_ws("http://fake/api/1.48.0/sync", http) as ws:
            await ws.send_text(
                json.dumps(
                    {
                        "type": "Connect",
                        "sessionId": "0b7e3b0e-0000-4000-8000-000000000000",
                        "connectionCount": 0,
                        "lastCloseReason": "InitialConnect",
                        "clientTs": 0,
                    }
                )
            )
            await ws.send_text(
                json.dumps(
                    {
                        "type": "ModifyQuerySet",
                        "baseVersion": 0,
                        "newVersion": 1,
                        "modifications": [
                            {
                                "type": "Add",
                                "queryId": 0,
                                "udfPath": "chat:subscribeToWorkerSessions",
                                "args": [{}],
                            }
                        ],
                    }
                )
            )
            with trio.fail_after(5):
                while (message := json.loads(await ws.receive_text()))["type"] != "Transition":
                    pass
    (failed,) = message["modifications"]
    assert failed["type"] == "QueryFailed"
    text = failed["errorMessage"]
    if prod_of(mode):
        assert re.fullmatch(HEAD, text), text  # exactly what real Convex sends, no "Uncaught Error"
    else:
        assert re.fullmatch(
            HEAD + r"\nArgumentValidationError: Object is missing the required field `workerId`\..*\n",
            text,
            re.DOTALL,
        ), text


# -- 2. unknown, internal, wrong kind: function errors ---------------------------------------------


NOT_FOUND = "Could not find public function for '{}'. Did you forget to run `npx convex dev` or `npx convex deploy`?\n"


@pytest.mark.parametrize("mode", CONVEX_MODES)
@pytest.mark.parametrize(
    ("kind", "path", "text"),
    [
        ("query", "nothing:here", NOT_FOUND.format("nothing:here")),
        ("mutation", "machines:updateMachineStatus", NOT_FOUND.format("machines:updateMachineStatus")),
        ("action", "workerActions:generateSecret", NOT_FOUND.format("workerActions:generateSecret")),
        (
            "query",
            "workers:heartbeat",
            "Trying to execute workers.js:heartbeat as Query, but it is defined as Mutation.\n",
        ),
        (
            "mutation",
            "workers:getByMachineAndWorker",
            "Trying to execute workers.js:getByMachineAndWorker as Mutation, but it is defined as Query.\n",
        ),
        (
            "action",
            "chat:writeChunk",
            "Trying to execute chat.js:writeChunk as Action, but it is defined as Mutation.\n",
        ),
    ],
)
async def test_unknown_internal_and_wrong_kind_calls_are_function_errors(
    mode: str, kind: str, path: str, text: str
) -> None:
    fake = FakeConvex(prod=prod_of(mode))
    assert_error(await call(fake, kind, path, {}), mode, text)
    assert fake.counts[path] == 1  # still a call the deployment received


@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_argument_validation_errors_have_convexs_text_and_are_redacted_on_prod(mode: str) -> None:
    fake = FakeConvex(prod=prod_of(mode))
    args = {"machineId": "m", "workerId": "w", "workingDirectory": "/d", "username": "u"}
    response = await call(fake, "mutation", "workers:register", args)
    assert_error(
        response,
        mode,
        (
            "ArgumentValidationError: Object is missing the required field `secret`. Consider wrapping "
            "the field validator in `v.optional(...)` if this is expected.\n\n"
            'Object: {machineId: "m", username: "u", workerId: "w", workingDirectory: "/d"}\n'
            "Validator: v.object({machineId: v.string(), secret: v.string(), username: v.string(), "
            "workerId: v.string(), workingDirectory: v.string()})\n"
        ),
    )


async def test_a_wrong_field_deep_in_the_arguments_names_its_path() -> None:
    fake = FakeConvex()
    models = [{"id": "a/b", "name": "B", "provider": "a"}, {"id": 5.0, "name": "C", "provider": "a"}]
    response = await call(fake, "mutation", "workerModels:updateModels", {"workerId": "w", "models": models})
    assert_error(
        response,
        "dev",
        "ArgumentValidationError: Value does not match validator.\n"
        "Path: .models[1].id\nValue: 5.0\nValidator: v.string()\n",
    )


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (
            [{}, {}],
            "Expected to receive a single object as the function's argument. Instead received 2 arguments: [{}, {}]",
        ),
        (5, "Expected to receive an object as the function's argument. Instead received: 5.0"),
        (None, "Expected to receive an object as the function's argument. Instead received: null"),
    ],
)
async def test_arguments_that_are_not_one_object(args: Any, text: str) -> None:
    response = await call(FakeConvex(), "query", "chat:getActiveSessions", args)
    assert_error(response, "dev", f"ArgumentValidationError: {text}\n")


async def test_our_client_sees_unknown_functions_as_function_errors_on_loopback() -> None:
    async with serve_fake_convex(prod=True) as server:
        async with ConvexClient(server.url) as client:
            with pytest.raises(ConvexFunctionError) as caught:
                await client.query("nothing:here")
    assert re.fullmatch(HEAD, caught.value.message)


# -- 3. query_batch ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_a_batch_answers_each_query_and_fails_only_the_failing_one(mode: str) -> None:
    fake = FakeConvex(prod=prod_of(mode))
    created = fake.create_worker()
    ok = {
        "path": "workers:getByMachineAndWorker",
        "format": "json",
        "args": {"machineId": created.machine_id, "workerId": created.worker_id},
    }
    queries = [
        ok,
        {"path": "nothing:here", "args": {}, "format": "json"},
        {"path": "chat:subscribeToWorkerSessions", "args": {"workerId": created.worker_id}},
    ]
    response = await post(fake, "query_batch", {"queries": queries})
    assert response.status_code == 200
    first, missing, sessions = response.json()["results"]
    assert first["status"] == "success" and first["value"]["workerId"] == created.worker_id
    assert missing["status"] == "error" and "Server Error" in missing["errorMessage"]
    assert ("Could not find public function" in missing["errorMessage"]) is not prod_of(mode)
    assert sessions == {"status": "success", "value": []}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"path": "a:b", "args": {}, "format": "xml"}, "BadFormat"),
        ({"path": "a:b:c", "args": {}}, "BadConvexFunctionIdentifier"),
        ({"path": "a:b"}, "BadJsonBody"),
    ],
)
async def test_a_bad_query_shape_fails_the_whole_batch(query: dict[str, Any], code: str) -> None:
    ok = {"path": "chat:subscribeToWorkerSessions", "args": {"workerId": "w"}}
    response = await post(FakeConvex(), "query_batch", {"queries": [ok, query]})
    assert response.status_code == 400 and response.json()["code"] == code


async def test_our_client_batch_gets_the_good_results_before_the_failing_one() -> None:
    # What our ConvexClient.query_batch does with a per-query error: it raises that query's
    # error (documented in the report: the batch itself succeeds on the server).
    fake = FakeConvex()
    created = fake.create_worker()
    async with in_process_convex(fake, "http://fake") as client:
        with pytest.raises(ConvexFunctionError, match="Could not find public function"):
            await client.query_batch(
                [
                    (
                        "workers:getByMachineAndWorker",
                        {"machineId": created.machine_id, "workerId": created.worker_id},
                    ),
                    ("nothing:here", {}),
                ]
            )
    assert fake.counts["workers:getByMachineAndWorker"] == 1 and fake.counts["nothing:here"] == 1


# -- 4. request-level 400s -------------------------------------------------------------------------


async def test_a_body_without_args_is_a_400_naming_the_field() -> None:
    raw = b'{"path":"workers:heartbeat","format":"json"}'
    response = await post(
        FakeConvex(), "mutation", None, raw=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "BadJsonBody",
        "message": "Failed to deserialize the JSON body into the target type: missing field `args` "
        f"at line 1 column {len(raw)}",
    }


@pytest.mark.parametrize(
    ("raw", "content_type", "message"),
    [
        (b'{"path":"a:b","args":{}}', None, "Expected request with `Content-Type: application/json`"),
        (
            b'{"path":',
            "application/json",
            "Failed to parse the request body as JSON: expected value at line 1 column 8",
        ),
        (
            b'{"path":5,"args":{}}',
            "application/json",
            "Failed to deserialize the JSON body into the target type: path: invalid type: integer `5`, "
            "expected a string at line 1 column 20",
        ),
        (
            b"[]",
            "application/json",
            "Failed to deserialize the JSON body into the target type: invalid type: sequence, expected "
            "struct UdfPostRequest at line 1 column 2",
        ),
    ],
)
async def test_bodies_convex_cannot_read(raw: bytes, content_type: str | None, message: str) -> None:
    headers = {"content-type": content_type} if content_type else {"content-type": "text/plain"}
    response = await post(FakeConvex(), "query", None, raw=raw, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"code": "BadJsonBody", "message": message}


async def test_a_bad_format_is_refused_after_the_mutation_ran() -> None:
    # Convex parses `format` once the function has run: the write commits, the answer is a 400.
    fake = FakeConvex()
    created = fake.create_worker()
    args = {
        "machineId": created.machine_id,
        "workerId": created.worker_id,
        "secret": created.secret,
        "workingDirectory": "/w",
        "username": "u",
    }
    response = await call(fake, "mutation", "workers:register", args, fmt="xml")
    assert response.status_code == 400
    assert response.json() == {
        "code": "BadFormat",
        "message": "format param must be one of [`json`]. Got xml",
    }
    assert fake.worker(created.worker_id).status == "online"


async def test_the_clean_json_format_is_the_default() -> None:
    fake = FakeConvex()
    response = await post(fake, "query", {"path": "chat:getLastSyncTimestamp", "args": {"workerId": "w"}})
    assert response.json() == {"status": "success", "value": None}


@pytest.mark.parametrize(
    "header",
    ["trio_oco", "trio", "", "0.1.0"],
)
async def test_a_client_header_without_a_dash_is_refused(header: str) -> None:
    for strict in (True, False):
        fake = FakeConvex(strict_client_version=strict)
        response = await call_with_header(fake, header)
        assert response.status_code == 400
        assert response.json() == {
            "code": "InvalidClientVersion",
            "message": f"Failed to parse client version string: '{header}'. Expected format is "
            "{client_name}-{semver}, e.g. my-esolang-client-0.0.1",
        }
        assert fake.counts["chat:getActiveSessions"] == 0  # refused before running


async def call_with_header(fake: FakeConvex, header: str | None) -> httpx.Response:
    headers = {} if header is None else {"convex-client": header}
    body = {"path": "chat:getActiveSessions", "args": {"workerId": "w"}, "format": "json"}
    return await post(fake, "query", body, headers=headers)


@pytest.mark.parametrize(
    ("header", "strict_ok", "lenient_ok"),
    [
        (None, True, True),
        ("trio-oco-0.1.0", True, True),
        ("trio-oco-0.2.0-dev.1+local.7", True, True),
        ("npm-1.48.0", True, True),
        ("python-0.8.1", True, True),
        ("trio-oco-0.2.0.dev1", False, True),  # a PEP 440 dev build: not SemVer
        ("trio-oco-01.2.3", False, True),  # a leading zero
        ("trio-oco-1.2", False, True),
        ("-1.2.3", False, True),  # no client name
    ],
)
async def test_client_headers_strict_and_as_real_convex(
    header: str | None, strict_ok: bool, lenient_ok: bool
) -> None:
    for strict, ok in ((True, strict_ok), (False, lenient_ok)):
        response = await call_with_header(FakeConvex(strict_client_version=strict), header)
        assert (response.status_code == 200) is ok, (header, strict, response.text)
        if not ok:
            assert response.json()["code"] == "InvalidClientVersion"


async def test_an_unsupported_npm_client_is_refused_with_the_deprecation_headers() -> None:
    response = await call_with_header(FakeConvex(), "npm-0.19.1")
    assert response.status_code == 400
    assert response.json()["code"] == "ClientVersionUnsupported"
    assert response.headers["x-convex-deprecation-state"] == "Unsupported"
    assert "npm package at version 0.19.1 is no longer supported" in response.json()["message"]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1.2.3", True),
        ("0.0.0", True),
        ("1.2.3-alpha.1", True),
        ("1.2.3+build.5", True),
        ("1.2.3-0a.1+x-y", True),
        ("1.2.3-01", False),
        ("01.2.3", False),
        ("1.2", False),
        ("1.2.3-", False),
        ("1.2.3+", False),
        ("v1.2.3", False),
        ("1.2.3.4", False),
    ],
)
def test_strict_semver(text: str, ok: bool) -> None:
    assert (parse_semver(text) is not None) is ok


def test_our_own_client_header_passes_the_strict_check() -> None:
    from oco.convex._client import ConvexClient as Client

    header = Client("http://x")._headers["Convex-Client"]
    assert check_client_version(header, strict=True) == ()
    with pytest.raises(BadRequest):
        check_client_version("trio-oco-0.2.0.dev1", strict=True)


async def test_a_sync_url_version_that_is_not_semver_is_refused() -> None:
    fake = FakeConvex()
    sent: list[dict[str, Any]] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/api/not-a-version/sync",
        "headers": [],
        "extensions": {"websocket.http.response": {}},
    }
    await fake.app(scope, receive, send)
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["code"] == "InvalidClientVersion"
    assert fake.sync.attempts.value == 0


async def test_wrong_methods_and_the_get_query_route() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=FakeConvex().app)) as http:
        put = await http.put("http://fake/api/mutation", json={})
        get = await http.get("http://fake/api/query", params={"path": "a:b", "args": "{}"})
    assert put.status_code == 405 and put.headers["allow"] == "POST"
    assert get.status_code == 400 and get.json()["code"] == "BadQueryArgs"


# -- 5. the reference's shapes and texts -----------------------------------------------------------


@pytest.mark.parametrize("name", ["my worker", None])
def test_register_and_get_by_machine_and_worker_carry_the_name(name: str | None) -> None:
    fake = FakeConvex()
    created = fake.create_worker(name=name)
    result = fake.call(
        "workers:register",
        {
            "machineId": created.machine_id,
            "workerId": created.worker_id,
            "secret": created.secret,
            "workingDirectory": "/w",
            "username": "u",
        },
    )
    record = fake.run_query(
        "workers:getByMachineAndWorker", {"machineId": created.machine_id, "workerId": created.worker_id}
    )
    expected = {} if name is None else {"name": name}  # Convex drops an undefined field
    assert result == {
        "approvalStatus": "approved",
        "status": "online",
        "approved": True,
        "workerId": created.worker_id,
        **expected,
    }
    assert {k: record[k] for k in record if k == "name"} == expected
    assert fake.worker(created.worker_id).name == name


def test_start_session_takes_no_model_and_names_the_missing_login() -> None:
    fake = FakeConvex()
    created = fake.create_worker(online=True)
    with pytest.raises(FunctionFailure, match="Object contains extra field `model`"):
        fake.execute(
            "chat:startSession",
            {"sessionId": fake.user_session, "workerId": created.worker_id, "model": "p/m"},
        )
    with pytest.raises(FunctionFailure, match=r"^Unauthorized: Must be logged in to start a session$"):
        fake.execute("chat:startSession", {"sessionId": "nobody", "workerId": created.worker_id})
    stranger = fake.create_user("Mallory")
    with pytest.raises(FunctionFailure, match=r"^Unauthorized: You do not own this worker$"):
        fake.execute("chat:startSession", {"sessionId": stranger, "workerId": created.worker_id})


def test_start_session_logs_as_the_reference() -> None:
    fake = FakeConvex()
    created = fake.create_worker(online=True)
    chat = fake.start_session(created.worker_id)
    user = fake.store.first("users")
    assert fake.store.log_lines == [
        f"[LOG] '[startSession] Called with:' {{\n  workerId: '{created.worker_id}'\n}}",
        f"[LOG] '[startSession] User authenticated:' '{user['_id']}'",
        f"[LOG] '[startSession] Worker found:' '{created.worker_id}' 'status:' 'online'",
        "[LOG] '[startSession] Machine ownership verified'",
        f"[LOG] '[startSession] Generated chatSessionId:' '{chat}'",
        "[LOG] '[startSession] Session created successfully'",
    ]


def test_subscribe_to_chunks_takes_the_chat_session_and_answers_strangers_nothing() -> None:
    fake = FakeConvex()
    created = fake.create_worker(online=True)
    chat = fake.start_session(created.worker_id)
    reply = fake.send_message(chat, "hi")
    fake.call("chat:writeChunk", {"chatSessionId": chat, "messageId": reply, "chunk": "he", "sequence": 0.0})
    args = {"sessionId": fake.user_session, "chatSessionId": chat, "messageId": reply}
    (chunk,) = fake.run_query("chat:subscribeToChunks", args)
    assert set(chunk) == {"chunkId", "messageId", "sessionId", "chunk", "sequence", "timestamp"}
    assert chunk["chunk"] == "he" and chunk["sessionId"] == chat
    stranger = fake.create_user("Mallory")
    assert fake.run_query("chat:subscribeToChunks", {**args, "sessionId": stranger}) == []
    assert fake.run_query("chat:getMessages", {"sessionId": stranger, "chatSessionId": chat}) == []
    assert fake.run_query("chat:getMessages", {"sessionId": "nobody", "chatSessionId": "none"}) == []


def test_web_app_mutations_name_what_needs_a_login_and_what_is_not_owned() -> None:
    fake = FakeConvex()
    created = fake.create_worker(approved=False)
    for path, verb in (
        ("workers:approve", "approve workers"),
        ("workers:reject", "reject workers"),
        ("workers:remove", "remove workers"),
    ):
        with pytest.raises(FunctionFailure, match=f"^Unauthorized: Must be logged in to {verb}$"):
            fake.execute(path, {"sessionId": "nobody", "workerId": created.worker_id})
        stranger = fake.create_user()
        with pytest.raises(FunctionFailure, match=r"^Unauthorized: You do not own this machine$"):
            fake.execute(path, {"sessionId": stranger, "workerId": created.worker_id})
    with pytest.raises(FunctionFailure, match=r"^Unauthorized: Must be logged in to create a machine$"):
        fake.execute("machines:create", {"sessionId": "nobody", "machineId": "m", "name": "n"})


def test_get_models_answers_models_and_updated_at_only() -> None:
    fake = FakeConvex(clock=lambda: 5.0)
    created = fake.create_worker()
    models = [{"id": "p/m", "name": "M", "provider": "p"}]
    assert fake.call("workerModels:updateModels", {"workerId": created.worker_id, "models": models}) == {
        "success": True,
        "modelsCount": 1.0,
    }
    assert fake.run_query("workerModels:getModels", {"workerId": created.worker_id}) == {
        "models": models,
        "updatedAt": 5.0,
    }
    assert fake.run_query("workerModels:subscribeToModels", {"workerId": "other"}) is None


def test_auto_resume_touches_the_sessions_it_closes() -> None:
    now = [1000.0]
    fake = FakeConvex(clock=lambda: now[0])
    created = fake.create_worker(online=True)
    old, new = fake.start_session(created.worker_id), fake.start_session(created.worker_id)
    fake.end_session(old)
    now[0] = 2000.0
    fake.send_message(old, "back")
    closed = fake.store.first("chatSessions", sessionId=new)
    assert (closed["status"], closed["lastActivity"]) == ("inactive", 2000.0)


def test_the_web_app_reads_of_the_reference_exist() -> None:
    fake = FakeConvex()
    created = fake.create_worker(name="w", online=True)
    session = fake.user_session
    chat = fake.start_session(created.worker_id)
    (machine,) = fake.run_query("machines:list", {"sessionId": session})
    assert machine["workerCounts"] == {"online": 1.0, "offline": 0.0, "pending": 0.0}
    assert [
        w["name"]
        for w in fake.run_query("workers:list", {"sessionId": session, "machineId": created.machine_id})
    ] == ["w"]
    assert (
        fake.run_query("workers:listPending", {"sessionId": session, "machineId": created.machine_id}) == []
    )
    assert (
        fake.run_query("workers:getToken", {"sessionId": session, "workerId": created.worker_id})["token"]
        == created.token
    )
    assert (
        fake.run_query("chat:getSession", {"sessionId": session, "chatSessionId": chat})["sessionId"] == chat
    )
    assert [
        s["sessionId"]
        for s in fake.run_query("chat:listSessions", {"sessionId": session, "workerId": created.worker_id})
    ] == [chat]
    assert fake.call("chat:updateSessionName", {"chatSessionId": chat, "name": "x"}) is True
    assert fake.call("chat:updateSessionName", {"chatSessionId": chat, "name": "x"}) is False


# -- 6. Convex's limits ----------------------------------------------------------------------------


def chat_with_reply(fake: FakeConvex) -> tuple[str, str]:
    created = fake.create_worker(online=True)
    chat = fake.start_session(created.worker_id)
    return chat, fake.send_message(chat, "hi")


@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_a_document_over_1_mib_is_refused_and_nothing_is_written(mode: str) -> None:
    fake = FakeConvex(prod=prod_of(mode))
    chat, reply = chat_with_reply(fake)
    big = "x" * 1_300_000
    response = await call(
        fake,
        "mutation",
        "chat:writeChunk",
        {"chatSessionId": chat, "messageId": reply, "chunk": big, "sequence": 0.0},
    )
    doc_size = size(
        {
            "_id": "x" * 21,
            "_creationTime": 1.0,
            "chunkId": "x" * 21,
            "messageId": reply,
            "sessionId": chat,
            "chunk": big,
            "sequence": 0.0,
            "timestamp": 1.0,
        }
    )
    assert format_size(doc_size) == "1.24 MiB"
    assert_error(response, mode, "Uncaught Error: Value is too large (1.24 MiB > maximum size 1 MiB)\n")
    assert fake.chunks(reply) == []


async def test_a_failed_write_undoes_the_writes_before_it() -> None:
    # sendMessage names the session, then inserts the user message: too large, all of it undone.
    fake = FakeConvex()
    created = fake.create_worker(online=True)
    chat = fake.start_session(created.worker_id)
    version = fake.version.value
    response = await call(
        fake,
        "mutation",
        "chat:sendMessage",
        {"sessionId": fake.user_session, "chatSessionId": chat, "content": "y" * (1 << 20), "model": "p/m"},
    )
    assert response.status_code == 560 and "Value is too large" in response.json()["errorMessage"]
    assert "name" not in fake.store.first("chatSessions", sessionId=chat)
    assert fake.store.find("chatMessages") == [] and fake.version.value == version


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (
            {"workerId": "w", "models": [{"id": "a", "name": "b", "provider": "c"}] * 8193},
            "Invalid arguments for workerModels.js:updateModels: Array length is too long (8193 > maximum length 8192)",
        ),
        (
            {"workerId": "w", "models": [], **{f"f{i}": "" for i in range(1023)}},
            "Invalid arguments for workerModels.js:updateModels: Object has too many fields (1025 > maximum number 1024)",
        ),
        (
            {"workerId": "w", "models": [], "deep": json.loads("[" * 63 + "]" * 63)},
            "Invalid arguments for workerModels.js:updateModels: Value is too nested (nested 65 levels deep > maximum nesting 64)",
        ),
    ],
)
async def test_argument_values_over_convexs_limits(args: dict[str, Any], text: str) -> None:
    fake = FakeConvex()
    response = await call(fake, "mutation", "workerModels:updateModels", args)
    assert_error(response, "dev", text + "\n")
    assert fake.store.find("workerModels") == []


async def test_arguments_over_16_mib_are_refused() -> None:
    fake = FakeConvex()
    response = await call(
        fake,
        "mutation",
        "chat:writeChunk",
        {"chatSessionId": "c", "messageId": "m", "chunk": "z" * (17 << 20), "sequence": 0.0},
    )
    assert_error(
        response, "dev", "Arguments for chat.js:writeChunk are too large (actual: 17 MiB, limit: 16 MiB)\n"
    )


def test_a_result_over_8192_items_fails_the_query() -> None:
    # A worker with a long history: subscribeToWorkerMessages returns every message it ever had.
    fake = FakeConvex()
    fake.store.insert("chatSessions", {"sessionId": "s", "workerId": "w", "status": "active"})
    for i in range(8193):
        fake.store.insert(
            "chatMessages",
            {
                "messageId": f"m{i}",
                "sessionId": "s",
                "role": "user",
                "content": "",
                "timestamp": float(i),
                "completed": True,
            },
        )
    with pytest.raises(QueryFailure) as caught:
        fake.run_query("chat:subscribeToWorkerMessages", {"workerId": "w"})
    assert caught.value.message == (
        "Function chat.js:subscribeToWorkerMessages return value invalid: "
        "Array length is too long (8193 > maximum length 8192)"
    )


def test_a_document_nested_over_16_levels_is_refused() -> None:
    fake = FakeConvex()
    fake.store.begin()
    with pytest.raises(
        FunctionFailure, match=r"Document is too nested \(nested 17 levels deep > maximum nesting 16\)"
    ):
        fake.store.insert("t", {"deep": json.loads("[" * 16 + "]" * 16)})
    fake.store.insert("t", {"deep": json.loads("[" * 15 + "]" * 15)})
    fake.store.rollback()
    assert fake.store.find("t") == []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("it's", "'it\\'s'"),
        ("a\nb", "'a\\nb'"),
        (3.0, "3"),
        (0.5, "0.5"),
        ({"a b": 1.0}, "{\n  'a b': 1\n}"),
        ([1.0, "x"], "[ 1, 'x' ]"),
        ([{"k": 1.0}], "[\n  {\n    k: 1\n  }\n]"),
        ({}, "{}"),
        ([], "[]"),
        (True, "true"),
    ],
)
def test_log_arguments_render_as_object_inspect_does(value: Any, text: str) -> None:
    assert inspect(value) == text


def test_a_log_line_over_32_kib_is_cut() -> None:
    line = log_line("LOG", ("x" * 40000,))
    assert line.endswith(" (truncated due to length)") and len(line.encode()) < 33000


# -- the command ------------------------------------------------------------------------------------


async def test_the_fake_convex_command_serves_a_prod_deployment() -> None:
    async with open_oco("fake-convex", "--prod", "--workers", "1", stderr_apart=True) as fake_convex:
        line = await fake_convex.json_line(timeout=30)
        assert line["mode"] == "prod" and len(line["workers"]) == 1
        worker = line["workers"][0]
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{line['url']}/api/mutation",
                json={
                    "path": "workers:heartbeat",
                    "format": "json",
                    "args": {
                        "machineId": worker["machineId"],
                        "workerId": worker["workerId"],
                        "secret": "wrong",
                    },
                },
            )
        assert response.status_code == 560
        assert re.fullmatch(HEAD, response.json()["errorMessage"])
        fake_convex.process.send_signal(signal.SIGINT)
        assert await fake_convex.wait(timeout=10) == 0


def test_date_now_is_whole_milliseconds_frozen_for_the_whole_function() -> None:
    ticks = iter([1000.25, 1003.5])  # the clock is read once per function, then once more
    fake = FakeConvex(clock=lambda: next(ticks))
    fake.store.begin()
    first, second = fake.store.now(), fake.store.now()
    fake.store.commit()
    assert first == second == 1000.0  # Convex: Date.now() is the time the function started
    assert fake.store.now() == 1003.0
