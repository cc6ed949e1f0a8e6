"""Real workers watching the fake Convex through sync subscriptions, in process on a MockClock.

The fake serves the sync protocol on its ASGI app; httpx-ws's ASGI transport carries both the
HTTP calls and the websocket. `fake.counts` counts HTTP function calls only, so "no query over
HTTP" is exactly "nothing billed while idle" here (subscription re-runs follow writes only).
"""

from __future__ import annotations

import trio
from subscription_support import SUBSCRIBE, ask_without_model, watch_calls

from oco.testing import IN_PROCESS_URL, in_process_connections, make_worker, running_worker, trio_ms
from oco.worker import NO_MODEL_NOTE, State


async def test_idle_worker_makes_no_watch_call_and_picks_up_a_message(fake, new_worker, autojump_clock):
    created = fake.create_worker()
    async with running_worker(new_worker(created, **SUBSCRIBE), timeout=10):
        with trio.fail_after(10):
            await fake.sync.open_sockets.wait_value(1)
        await trio.sleep(5)
        calls, beats = watch_calls(fake), fake.counts["workers:heartbeat"]
        await trio.sleep(600)
        assert watch_calls(fake) == calls == 0  # not even once at start
        assert fake.counts["workers:heartbeat"] - beats == 20  # every 30 s, nothing else
        assert set(fake.counts) <= {
            "workers:register",
            "workers:markConnected",
            "workerModels:updateModels",
            "workers:heartbeat",
        }
        started = trio.current_time()
        assert await ask_without_model(fake, created.worker_id) == NO_MODEL_NOTE
        assert trio.current_time() - started < 1  # a round trip, not a polling tick
        assert watch_calls(fake) == 0
        assert fake.sync.attempts.value == 1  # one socket all along
    with trio.fail_after(5):
        await fake.sync.open_sockets.wait_value(0)  # the worker's own socket went with it


async def test_refused_upgrades_fall_back_to_polling_then_back(fake, new_worker, autojump_clock, caplog):
    created = fake.create_worker()
    fake.sync.faults.refuse_upgrade = 503
    async with running_worker(new_worker(created, **SUBSCRIBE), timeout=10):
        # Polling answers meanwhile, and the websocket keeps being retried.
        assert await ask_without_model(fake, created.worker_id, timeout=30) == NO_MODEL_NOTE
        assert watch_calls(fake) > 0
        attempts = fake.sync.attempts.value
        await trio.sleep(120)
        assert fake.sync.attempts.value > attempts + 3
        fallbacks = [r for r in caplog.records if "polling until the websocket" in r.message]
        assert len(fallbacks) == 1  # logged once, not per retry

        fake.sync.faults.refuse_upgrade = None
        with trio.fail_after(30):  # the backoff is capped at 16 s (+50 % jitter)
            await fake.sync.open_sockets.wait_value(1)
        await trio.sleep(1)
        calls = watch_calls(fake)
        await trio.sleep(300)
        assert watch_calls(fake) == calls  # polling stopped
        assert await ask_without_model(fake, created.worker_id) == NO_MODEL_NOTE
        assert watch_calls(fake) == calls


async def test_dropped_socket_reconnects_without_polling(fake, new_worker, autojump_clock):
    created = fake.create_worker()
    async with running_worker(new_worker(created, **SUBSCRIBE), until=None):
        with trio.fail_after(10):
            await fake.sync.open_sockets.wait_value(1)
        assert fake.sync.drop_sockets() == 1
        with trio.fail_after(10):
            await fake.sync.open_sockets.wait_value(1)
        assert await ask_without_model(fake, created.worker_id) == NO_MODEL_NOTE
        assert watch_calls(fake) == 0  # back within the connect timeout: never polled
        assert fake.sync.attempts.value == 2


async def test_workers_on_one_url_share_the_lent_socket_which_outlives_the_first_to_leave(
    fake, tmp_path, autojump_clock
):
    first, second = fake.create_worker(), fake.create_worker()
    for created in (first, second):
        (tmp_path / created.worker_id).mkdir()
    async with in_process_connections(fake) as connections, trio.open_nursery() as nursery:
        await nursery.start(connections.run)
        workers = {}
        scopes = [trio.CancelScope(), trio.CancelScope()]
        built = [trio.Event(), trio.Event()]

        async def run(i: int, created) -> None:
            with scopes[i]:
                async with connections.lend(IN_PROCESS_URL) as link:
                    workers[i] = make_worker(
                        created,
                        link.client,
                        tmp_path / created.worker_id,
                        convex_transport="subscribe",
                        now_ms=trio_ms,
                        subscriptions=link.subscriptions,
                    )
                    built[i].set()
                    await workers[i].run()

        nursery.start_soon(run, 0, first)
        with trio.fail_after(10):
            await built[0].wait()
            await workers[0].state.wait_value(State.READY)
        nursery.start_soon(run, 1, second)
        with trio.fail_after(10):
            await built[1].wait()
            await workers[1].state.wait_value(State.READY)
        assert workers[0].backend.client is workers[1].backend.client
        assert await ask_without_model(fake, first.worker_id) == NO_MODEL_NOTE
        assert await ask_without_model(fake, second.worker_id) == NO_MODEL_NOTE
        assert (fake.sync.attempts.value, fake.sync.open_sockets.value) == (1, 1)

        scopes[0].cancel()  # the first worker, whose subscribing opened the socket, leaves
        with trio.fail_after(10):
            await workers[0].state.wait_value(State.STOPPED)
        # Its owner is the lender, not the first worker: no hand-over, not even a reconnect.
        assert await ask_without_model(fake, second.worker_id) == NO_MODEL_NOTE
        assert (fake.sync.attempts.value, fake.sync.open_sockets.value) == (1, 1)
        assert watch_calls(fake) == 0
        assert connections.sockets.open_count.value == 1

        scopes[1].cancel()  # the last one leaves: the socket and the client close
        with trio.fail_after(10):
            await connections.sockets.open_count.wait_value(0)
            await connections.clients.open_count.wait_value(0)
            await fake.sync.open_sockets.wait_value(0)
        nursery.cancel_scope.cancel()
