"""The fake backend keeps the reference's web-app semantics and wire format."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import trio

from oco.testing import FakeConvex, FakeFunctionError
from oco.testing._fake_convex_errors import FunctionFailure
from oco.testing._fake_convex_webapp_api import session_name


def online_worker(fake: FakeConvex) -> str:
    worker = fake.create_worker()
    fake.store.patch(fake.store.first("workers", workerId=worker.worker_id), status="online")
    return worker.worker_id


@pytest.mark.parametrize(
    ("content", "name"),
    [
        ("  hello \n  world ", "hello world"),
        ("   ", "New Chat"),
        ("x" * 50, "x" * 50),
        ("a" * 49 + " b" + "c" * 10, "a" * 49 + "..."),
        ("y" * 51, "y" * 50 + "..."),
    ],
)
def test_session_names_follow_generate_session_name(content: str, name: str) -> None:
    assert session_name(content) == name


def test_send_message_inserts_user_and_placeholder_together() -> None:
    fake = FakeConvex(clock=lambda: 1000.0)
    chat = fake.start_session(online_worker(fake))
    before = fake.version.value
    reply = fake.send_message(chat, "first", model="p/m")
    user, assistant = fake.messages(chat)
    assert fake.version.value == before + 1  # one transaction
    assert (user.timestamp, assistant.timestamp, assistant.id) == (1000.0, 1001.0, reply)
    assert (
        fake.run_query(
            "chat:getSessionName",
            {
                "chatSessionId": chat,
                "workerId": user.session_id and fake.store.first("chatSessions", sessionId=chat)["workerId"],
            },
        )
        == "first"
    )
    fake.send_message(chat, "second")
    assert fake.store.first("chatSessions", sessionId=chat)["name"] == "first"  # named once


def test_send_message_auto_resumes_and_deactivates_the_others() -> None:
    fake = FakeConvex()
    worker_id = online_worker(fake)
    old, new = fake.start_session(worker_id), fake.start_session(worker_id)
    fake.end_session(old)
    fake.send_message(old, "back again")
    status = {s: fake.store.first("chatSessions", sessionId=s)["status"] for s in (old, new)}
    assert status == {old: "active", new: "inactive"}


def test_start_session_needs_an_online_worker() -> None:
    fake = FakeConvex()
    worker = fake.create_worker()
    with pytest.raises(FakeFunctionError, match="Worker is not online"):
        fake.start_session(worker.worker_id)


def test_request_connect_reports_offline_and_refuses_pending() -> None:
    fake = FakeConvex()
    worker = fake.create_worker()
    assert fake.request_connect(worker.worker_id)["error"] == "WORKER_OFFLINE"
    online = online_worker(fake)
    assert fake.request_connect(online)["success"] is True
    assert fake.worker(online).connect_requested_at is not None
    pending = fake.create_worker(approved=False)
    with pytest.raises(FakeFunctionError, match="Worker is not approved"):
        fake.request_connect(pending.worker_id)


def test_workers_create_issues_a_document_id_as_the_secret() -> None:
    # The reference stores what scheduler.runAfter resolves to: a Convex document id.
    fake = FakeConvex()
    a, b = fake.create_worker(), fake.create_worker()
    secret = a.token.split(":secret_")[1]
    assert re.fullmatch(r"[0-9a-z]{32}", secret) and a.token != b.token
    assert a.token.startswith(f"machine_{a.machine_id}:worker_{a.worker_id}:secret_")


def test_other_users_cannot_approve_or_read() -> None:
    fake = FakeConvex()
    worker = fake.create_worker(approved=False)
    stranger = fake.create_user("Mallory")
    with pytest.raises(FakeFunctionError, match="Unauthorized"):
        fake.call("workers:approve", {"sessionId": stranger, "workerId": worker.worker_id})


async def test_wait_for_wakes_on_commit_and_times_out(autojump_clock: Any) -> None:
    fake = FakeConvex()
    worker = fake.create_worker(approved=False)
    async with trio.open_nursery() as nursery:

        async def approve_later() -> None:
            await trio.sleep(1)
            fake.approve(worker.worker_id)

        nursery.start_soon(approve_later)
        await fake.wait_for(lambda: fake.worker(worker.worker_id).approval_status == "approved", timeout=5)
    with pytest.raises(trio.TooSlowError):
        await fake.wait_for(lambda: fake.worker(worker.worker_id) is None, timeout=5)


async def raw(fake: FakeConvex, route: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as http:
        return await http.post(f"http://fake/api/{route}", json=body)


@pytest.mark.parametrize(
    ("route", "body", "code"),
    [
        ("query", {"path": "no:such:thing", "args": {}, "format": "json"}, "BadConvexFunctionIdentifier"),
        ("query", {"path": "workers:getByMachineAndWorker", "args": {}, "format": "xml"}, "BadFormat"),
        ("mutation", {"args": {}}, "BadJsonBody"),
    ],
)
async def test_bad_requests_are_400_with_code(route: str, body: Any, code: str) -> None:
    response = await raw(FakeConvex(), route, body)
    assert response.status_code == 400 and response.json()["code"] == code


async def test_function_error_is_560_udf_response() -> None:
    response = await raw(
        FakeConvex(),
        "mutation",
        {"path": "workers:requestConnect", "args": {"workerId": "x"}, "format": "json"},
    )
    assert response.status_code == 560
    body = response.json()
    assert re.fullmatch(
        r"\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: Worker not found\n"
        r"    at handler \(\.\./convex/workers\.ts:578:13\)\n",
        body.pop("errorMessage"),
    )
    assert body == {
        "status": "error",
        "logLines": ["[LOG] '[workers.requestConnect] Connect request for worker:' 'x'"],
    }


async def test_legacy_list_args_and_unknown_routes() -> None:
    fake = FakeConvex()
    ok = await raw(
        fake,
        "query",
        {
            "path": "chat:subscribeToWorkerSessions",
            "args": [{"workerId": "w"}],
            "format": "convex_encoded_json",
        },
    )
    assert ok.json() == {"status": "success", "value": []}
    assert (await raw(fake, "nothing", {})).status_code == 404
    assert fake.http_requests == 2


def test_run_query_refuses_mutations() -> None:
    with pytest.raises(FunctionFailure, match="as Query, but it is defined as Mutation"):
        FakeConvex().run_query("workers:heartbeat", {})
