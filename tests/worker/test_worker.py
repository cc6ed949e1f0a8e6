"""The worker against the fake Convex in process, on a MockClock: lifecycle, heartbeat, watching."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from oco._retry import MODEL_PUBLISH
from oco.convex import InvalidSecret, WorkerRejected
from oco.testing import FakeConvex, running_worker
from oco.worker import INTERRUPTED_NOTE, NO_MODEL_NOTE, STALE_NOTE, State


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def registered_calls(fake: FakeConvex, function: str) -> list[float]:
    return [call.at for call in fake.calls if call.function == function]


async def test_waits_for_approval_then_connects(fake, new_worker, autojump_clock):
    created = fake.create_worker(approved=False)
    async with running_worker(new_worker(created), until=State.WAITING_APPROVAL) as worker:
        await trio.sleep(12)
        assert fake.counts["workers:register"] == 3  # at 0, 5 and 10 s: one at a time
        fake.approve(created.worker_id)
        with trio.fail_after(10):
            await worker.state.wait_value(State.READY)
        assert fake.counts["workers:markConnected"] == 1
        assert fake.worker(created.worker_id).status == "online"


async def test_wrong_secret_is_rejected_after_one_register_call(fake, new_worker, autojump_clock):
    created = fake.create_worker()
    worker = new_worker(created, token=created.token_with_secret("wrong"))
    with pytest.RaisesGroup(InvalidSecret, allow_unwrapped=True, flatten_subgroups=True):
        await worker.run()
    assert fake.counts["workers:register"] == 1
    assert worker.state.value is State.FAILED
    assert fake.counts["workers:setOffline"] == 0


async def test_deleted_worker_stops_as_revoked(fake, new_worker, autojump_clock):
    created = fake.create_worker()
    worker = new_worker(created)
    async with trio.open_nursery() as nursery:

        async def run_and_expect_revoked() -> None:
            # The watcher (record gone) and the heartbeat (worker not found) may both notice.
            with pytest.raises(BaseExceptionGroup) as raised:
                await worker.run()
            leaves = _leaves(raised.value)
            assert leaves and all(isinstance(leaf, WorkerRejected) for leaf in leaves), leaves

        nursery.start_soon(run_and_expect_revoked)
        await worker.state.wait_value(State.READY)
        fake.remove(created.worker_id)
    assert isinstance(worker.lifecycle.cause, BaseExceptionGroup | WorkerRejected)
    assert worker.state.value is State.FAILED


async def test_heartbeat_first_beat_at_ready_then_every_interval(fake, new_worker, autojump_clock):
    created = fake.create_worker()
    async with running_worker(new_worker(created)):
        ready_at = trio.current_time()
        await trio.sleep(95)
    beats = [round(t / 1000 - ready_at, 1) for t in registered_calls(fake, "workers:heartbeat")]
    assert beats == [0.0, 30.0, 60.0, 90.0]


async def test_connect_request_marks_connected_exactly_once(fake, new_worker, autojump_clock):
    created = fake.create_worker()
    async with running_worker(new_worker(created)):
        await trio.sleep(1)
        fake.request_connect(created.worker_id)
        await trio.sleep(30)
        assert fake.counts["workers:markConnected"] == 2  # start-up + the one request
        assert fake.counts["workerModels:updateModels"] == 2


@pytest.mark.parametrize("stop_in", [State.WAITING_APPROVAL, State.CONNECTING, State.READY])
async def test_stop_sends_set_offline_once_registered(fake, new_worker, autojump_clock, stop_in):
    created = fake.create_worker(approved=stop_in is not State.WAITING_APPROVAL)
    if stop_in is State.CONNECTING:
        fake.faults.add(function="workers:markConnected", hang=True)
    async with running_worker(new_worker(created), until=stop_in) as worker:
        await trio.sleep(1)
    assert worker.state.value is State.STOPPED
    assert fake.counts["workers:setOffline"] == 1
    assert fake.worker(created.worker_id).status == "offline"


async def test_no_heavy_history_query_while_nothing_changes(fake, new_worker, autojump_clock):
    created = fake.create_worker()
    async with running_worker(new_worker(created)):
        await trio.sleep(5)
        heavy_before = fake.counts["chat:subscribeToWorkerMessages"]
        requests_before = fake.http_requests
        await trio.sleep(600)
        assert fake.counts["chat:subscribeToWorkerMessages"] == heavy_before
        idle_per_minute = (fake.http_requests - requests_before) / 10
        assert idle_per_minute <= 60


async def test_stale_and_model_less_messages_are_closed_not_dropped(
    fake, new_worker, tmp_path, autojump_clock
):
    created = fake.create_worker()
    # A previous run registered and then died without setOffline: the web app still takes chats.
    fake.call(
        "workers:register",
        {
            "machineId": created.machine_id,
            "workerId": created.worker_id,
            "secret": created.secret,
            "workingDirectory": str(tmp_path),
            "username": "someone",
        },
    )
    chat = fake.start_session(created.worker_id)
    stale_reply = fake.send_message(chat, "sent long ago")
    await trio.sleep(3600)
    chat2 = fake.start_session(created.worker_id)
    no_model_reply = fake.send_message(chat2, "which model?", model="")
    async with running_worker(new_worker(created), until=None):
        stale = await fake.wait_reply(stale_reply, timeout=30)
        no_model = await fake.wait_reply(no_model_reply, timeout=30)
    assert stale.content == STALE_NOTE
    assert no_model.content == NO_MODEL_NOTE


async def test_a_turn_that_cannot_start_opencode_ends_with_a_readable_error(fake, new_worker):
    # Real time, not MockClock: starting a process hands work to a thread, and an autojumping
    # clock would leap to the test's deadline while that thread runs.
    created = fake.create_worker()
    async with running_worker(new_worker(created)):
        chat = fake.start_session(created.worker_id)
        reply_id = fake.send_message(chat, "hello")
        reply = await fake.wait_reply(reply_id, timeout=30)
    assert reply.content.startswith("Error: OpenCode failed to start")
    assert INTERRUPTED_NOTE not in reply.content


@pytest.mark.real_backoff(MODEL_PUBLISH)
async def test_models_are_published_once_convex_takes_them_again(fake, new_worker, autojump_clock):
    created = fake.create_worker()
    fake.faults.add(function="workerModels:updateModels", status=503, times=4)
    async with running_worker(new_worker(created), until=None):
        # Given up after the first 503 until the next connect request before.
        await fake.wait_for(
            lambda: fake.store.first("workerModels", workerId=created.worker_id) is not None, 120
        )
        assert fake.counts["workerModels:updateModels"] == 5


async def test_a_model_list_over_convexs_array_limit_is_cut_to_fit(fake, convex, autojump_clock):
    from oco.convex.api import WorkerBackend
    from oco.domain import ARRAY_LIMIT, ModelInfo

    created = fake.create_worker()
    backend = WorkerBackend(convex, created.machine_id, created.worker_id, "unused")
    many = [ModelInfo(id=f"p/m{n}", name=f"M{n}", provider="p") for n in range(ARRAY_LIMIT + 5)]
    await backend.update_models(many)  # refused whole by Convex before
    stored = fake.store.first("workerModels", workerId=created.worker_id)
    assert len(stored["models"]) == ARRAY_LIMIT


async def test_the_workers_own_secret_is_kept_out_of_opencodes_environment(fake, new_worker, monkeypatch):
    # A secret exported under any name (here bare, without the token's shape) must not reach the
    # agent's tools: only the token-shaped values were stripped before the worker passed its own.
    created = fake.create_worker()
    worker = new_worker(created)
    monkeypatch.setenv("MY_BACKUP_OF_IT", worker.config.secret)
    from oco.opencode import opencode_environment

    env = opencode_environment(dict(__import__("os").environ), worker.host._secrets)
    assert "MY_BACKUP_OF_IT" not in env
