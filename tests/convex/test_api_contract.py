"""Each WorkerBackend method against the fake over real loopback HTTP: results and errors."""

from __future__ import annotations

import pytest
from convex_helpers import backend_for

from oco.convex import (
    ConvexClient,
    InvalidSecret,
    MessageNotFound,
    SessionNotFound,
    WorkerNotFound,
    WorkerRejected,
)
from oco.convex.api import WorkerBackend
from oco.domain import ActiveSession, ModelInfo
from oco.testing import FakeConvex, FakeConvexServer


@pytest.fixture
def fake(server: FakeConvexServer) -> FakeConvex:
    return server.fake


async def worker_sessions(backend: WorkerBackend) -> list[ActiveSession]:
    """`chat:subscribeToWorkerSessions` as the subscription watcher reads it."""
    value = await backend.client.query("chat:subscribeToWorkerSessions", {"workerId": backend.worker_id})
    return backend.parse_sessions(value)


async def online(backend: WorkerBackend) -> None:
    assert (await backend.register("/work/project", "dev")).approved


async def test_register_approved_goes_online(fake: FakeConvex, client: ConvexClient) -> None:
    worker = fake.create_worker(name="laptop")
    reg = await backend_for(client, worker).register("/work/project", "dev")
    assert (reg.approved, reg.approval_status, reg.status, reg.worker_id, reg.name) == (
        True,
        "approved",
        "online",
        worker.worker_id,
        "laptop",
    )
    record = fake.worker(worker.worker_id)
    assert record.status == "online" and record.working_directory == "/work/project"
    assert fake.store.first("machines", machineId=worker.machine_id)["status"] == "online"


async def test_register_pending_stays_offline(fake: FakeConvex, client: ConvexClient) -> None:
    worker = fake.create_worker(approved=False)
    reg = await backend_for(client, worker).register("/p", "dev")
    assert (reg.approved, reg.approval_status, reg.status) == (False, "pending", "offline")
    assert fake.worker(worker.worker_id).username == "dev"


async def test_register_unknown_worker_and_wrong_secret(fake: FakeConvex, client: ConvexClient) -> None:
    worker = fake.create_worker()
    with pytest.raises(InvalidSecret):
        await backend_for(client, worker, "wrong").register("/p", "dev")
    fake.remove(worker.worker_id)
    with pytest.raises(WorkerNotFound):
        await backend_for(client, worker).register("/p", "dev")


async def test_heartbeat_errors_are_worker_rejections(fake: FakeConvex, client: ConvexClient) -> None:
    worker = fake.create_worker()
    backend = backend_for(client, worker)
    await online(backend)
    await backend.heartbeat()
    with pytest.raises(InvalidSecret):
        await backend_for(client, worker, "wrong").heartbeat()
    fake.reject(worker.worker_id)
    with pytest.raises(WorkerRejected) as caught:
        await backend.heartbeat()
    assert isinstance(caught.value, WorkerNotFound)  # "Unauthorized: Worker not found"


async def test_heartbeat_while_pending_changes_nothing(fake: FakeConvex, client: ConvexClient) -> None:
    worker = fake.create_worker(approved=False)
    await backend_for(client, worker).heartbeat()
    assert fake.worker(worker.worker_id).status == "offline"


async def test_set_offline_inactivates_sessions_and_tolerates_missing_worker(
    fake: FakeConvex, client: ConvexClient
) -> None:
    worker = fake.create_worker()
    backend = backend_for(client, worker)
    await online(backend)
    fake.start_session(worker.worker_id)
    fake.start_session(worker.worker_id)
    assert await backend.set_offline() == 2
    assert fake.worker(worker.worker_id).status == "offline"
    assert await worker_sessions(backend) == []
    with pytest.raises(InvalidSecret):
        await backend_for(client, worker, "wrong").set_offline()
    fake.remove(worker.worker_id)
    assert await backend.set_offline() == 0  # {sessionsTerminated: 0}


async def test_mark_connected_invalidates_sessions_and_clears_opencode_ids(
    fake: FakeConvex, client: ConvexClient
) -> None:
    worker = fake.create_worker()
    backend = backend_for(client, worker)
    await online(backend)
    chat = fake.start_session(worker.worker_id)
    await backend.session_ready(chat, "ses_1")
    assert [s.opencode_session_id for s in await backend.active_sessions()] == ["ses_1"]
    assert await backend.mark_connected() == 1
    assert await backend.active_sessions() == []
    assert "opencodeSessionId" not in fake.store.first("chatSessions", sessionId=chat)
    assert fake.worker(worker.worker_id).connected_at is not None
    with pytest.raises(InvalidSecret):
        await backend_for(client, worker, "wrong").mark_connected()
    fake.remove(worker.worker_id)
    with pytest.raises(WorkerNotFound):
        await backend.mark_connected()


async def test_update_models_upserts_and_needs_the_worker(fake: FakeConvex, client: ConvexClient) -> None:
    worker = fake.create_worker()
    backend = backend_for(client, worker)
    await backend.update_models([ModelInfo("a/one", "One", "a")])
    await backend.update_models([ModelInfo("b/two", "Two", "b"), ModelInfo("b/three", "Three", "b")])
    row = fake.run_query("workerModels:getModels", {"workerId": worker.worker_id})
    assert [m["id"] for m in row["models"]] == ["b/two", "b/three"]
    fake.remove(worker.worker_id)
    with pytest.raises(WorkerNotFound):
        await backend.update_models([])


async def test_get_worker_hides_the_secret_and_is_none_when_gone(
    fake: FakeConvex, client: ConvexClient
) -> None:
    worker = fake.create_worker()
    backend = backend_for(client, worker)
    record = await backend.get_worker()
    assert record is not None and record.approval_status == "approved"
    raw = await client.query(
        "workers:getByMachineAndWorker", {"machineId": worker.machine_id, "workerId": worker.worker_id}
    )
    assert "secret" not in raw and worker.secret not in repr(raw)
    fake.remove(worker.worker_id)
    assert await backend.get_worker() is None


async def test_watch_queries_see_a_new_message(fake: FakeConvex, client: ConvexClient) -> None:
    worker = fake.create_worker()
    backend = backend_for(client, worker)
    await online(backend)
    chat = fake.start_session(worker.worker_id)
    reply_id = fake.send_message(chat, "  fix   the\n bug  ", model="p/m")
    record, sessions = await backend.poll_watch()
    assert record is not None and record.worker_id == worker.worker_id
    assert [(s.session_id, s.model) for s in sessions] == [(chat, "p/m")]
    user, assistant = await backend.worker_messages()
    assert (user.role, user.content, user.completed) == ("user", "  fix   the\n bug  ", True)
    assert (assistant.id, assistant.completed, assistant.timestamp) == (reply_id, False, user.timestamp + 1)
    (details,) = await backend.active_sessions()
    assert (details.chat_session_id, details.name) == (chat, "fix the bug")
    assert await backend.session_name(chat) == "fix the bug"
    assert await backend_for(client, fake.create_worker()).session_name(chat) is None
    assert await backend.session_name("missing") is None


async def test_poll_watch_falls_back_without_query_batch(fake: FakeConvex, client: ConvexClient) -> None:
    fake.batch_enabled = False
    worker = fake.create_worker()
    record, sessions = await backend_for(client, worker).poll_watch()
    assert record is not None and sessions == []
    assert fake.counts["workers:getByMachineAndWorker"] == 1


async def test_chat_write_back(fake: FakeConvex, client: ConvexClient) -> None:
    worker = fake.create_worker()
    backend = backend_for(client, worker)
    await online(backend)
    chat = fake.start_session(worker.worker_id)
    reply_id = fake.send_message(chat, "hello")
    await backend.session_ready(chat, None)
    await backend.write_chunk(chat, reply_id, "Hel", 0)
    await backend.write_chunk(chat, reply_id, "lo", 1)
    assert fake.calls[-1].args["sequence"] == 1.0 and isinstance(fake.calls[-1].args["sequence"], float)
    await backend.complete_structured(chat, reply_id, "Hello", "thinking", '[{"type":"tool"}]')
    reply = await fake.wait_reply(reply_id, timeout=5)
    assert (reply.content, reply.reasoning, reply.other_parts) == ("Hello", "thinking", '[{"type":"tool"}]')
    assert [c.chunk for c in fake.chunks(reply_id)] == ["Hel", "lo"]
    await backend.complete_message(chat, reply_id, "overwritten")
    assert fake.message(reply_id).content == "overwritten"


@pytest.mark.parametrize(
    "call",
    ["session_ready", "write_chunk", "complete_structured", "complete_message"],
)
async def test_chat_write_back_errors(fake: FakeConvex, client: ConvexClient, call: str) -> None:
    worker = fake.create_worker()
    backend = backend_for(client, worker)
    await online(backend)
    chat = fake.start_session(worker.worker_id)
    reply_id = fake.send_message(chat, "hello")
    invoke = {
        "session_ready": lambda s, m: backend.session_ready(s, "ses"),
        "write_chunk": lambda s, m: backend.write_chunk(s, m, "x", 0),
        "complete_structured": lambda s, m: backend.complete_structured(s, m, "x", None, None),
        "complete_message": lambda s, m: backend.complete_message(s, m, "x"),
    }[call]
    with pytest.raises(SessionNotFound):
        await invoke("missing", reply_id)
    if call != "session_ready":
        with pytest.raises(MessageNotFound):
            await invoke(chat, "missing")


async def test_malformed_row_is_left_out_and_logged_naming_function_and_field(
    fake: FakeConvex, client: ConvexClient, caplog: pytest.LogCaptureFixture
) -> None:
    worker = fake.create_worker()
    backend = backend_for(client, worker)
    # a row the real schema would refuse: no lastActivity
    fake.store.insert(
        "chatSessions",
        {
            "sessionId": "s1",
            "workerId": worker.worker_id,
            "userId": "u",
            "status": "active",
            "createdAt": 1.0,
        },
    )
    assert await worker_sessions(backend) == []
    (record,) = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert "chat:subscribeToWorkerSessions" in record.getMessage()
    assert "$[0].lastActivity" in record.getMessage()


def test_repr_hides_the_secret() -> None:
    backend = WorkerBackend(ConvexClient("https://x.convex.cloud"), "m", "w", "s3cr3t-value")
    assert "s3cr3t-value" not in repr(backend) and "s3cr3t-value" not in str(backend)
