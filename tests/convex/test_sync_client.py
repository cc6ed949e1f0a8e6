"""ConvexSubscriptions against the fake sync endpoint: in process through httpx-ws's ASGI
transport on a MockClock (timing), and over real loopback through hypercorn."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import trio
from sync_support import ToyDatabase, in_process, on_loopback

from oco.convex._sync_client import ConvexSubscriptions, SyncQueryError, sync_url
from oco.convex._sync_state import QueryError, QuerySuccess
from oco.testing import SyncFaults


async def test_sync_url_follows_the_js_client():
    assert sync_url("https://x.convex.cloud") == "https://x.convex.cloud/api/1.48.0/sync"
    assert sync_url("http://127.0.0.1:3210/", "9") == "http://127.0.0.1:3210/api/9/sync"


async def test_subscription_yields_the_first_result_then_each_change(autojump_clock):
    db = ToyDatabase()
    async with in_process(db) as (endpoint, subs):
        with subs.subscribe("toy:count", {"who": "w1"}) as sub:
            with trio.fail_after(5):
                it = aiter(sub)
                assert await anext(it) == {"count": 0.0, "args": {"who": "w1"}}
                await subs.connected.wait_value(True)
                db.write(count=1.0)
                assert (await anext(it))["count"] == 1.0
    assert endpoint.connects[0].connection_count == 0
    assert endpoint.connects[0].last_close_reason == "InitialConnect"


async def test_slow_consumer_sees_the_newest_value_not_a_backlog(autojump_clock):
    db = ToyDatabase()
    async with in_process(db) as (endpoint, subs):
        with subs.subscribe("toy:count") as sub:
            with trio.fail_after(5):
                assert (await sub.next_result()) == QuerySuccess({"count": 0.0, "args": {}})
                sent = endpoint.transitions_sent
                for n in (1.0, 2.0, 3.0):
                    db.write(count=n)
                    await trio.testing.wait_all_tasks_blocked()
                assert endpoint.transitions_sent == sent + 3
                assert (await sub.next_result()).value["count"] == 3.0
            with trio.move_on_after(10) as idle:
                await sub.next_result()
            assert idle.cancelled_caught  # nothing older is queued behind the newest


async def test_unchanged_results_send_no_transition(autojump_clock):
    db = ToyDatabase()
    async with in_process(db) as (endpoint, subs):
        with subs.subscribe("toy:count") as sub:
            await sub.next_result()
            sent = endpoint.transitions_sent
            db.write(unrelated=1)
            await trio.testing.wait_all_tasks_blocked()
            assert endpoint.transitions_sent == sent


async def test_failed_query_raises_and_the_subscription_recovers(autojump_clock):
    db = ToyDatabase()
    db.tables["broken"] = True
    async with in_process(db) as (_, subs):
        with subs.subscribe("toy:fails") as sub:
            with trio.fail_after(5):
                with pytest.raises(SyncQueryError, match=r"toy:fails: .*table is broken"):
                    await anext(aiter(sub))
                assert isinstance(sub.latest, QueryError)
                db.write(broken=False)
                assert (await anext(aiter(sub)))["count"] == 0.0


async def test_leaving_the_with_block_removes_the_query_on_the_server(autojump_clock):
    db = ToyDatabase()
    async with in_process(db) as (_, subs):
        with subs.subscribe("toy:gone") as sub:
            await sub.next_result()
        with subs.subscribe("toy:kept") as kept:
            await kept.next_result()
            db.runs.clear()
            db.write(count=5.0)
            assert (await kept.next_result()).value["count"] == 5.0
            assert db.runs == ["toy:kept"]
        with pytest.raises(trio.EndOfChannel):
            await sub.next_result()


async def test_dropped_socket_reconnects_and_resubscribes_from_scratch(autojump_clock):
    db = ToyDatabase()
    async with in_process(db) as (endpoint, subs):
        with subs.subscribe("toy:count", {"k": 1}) as sub:
            await sub.next_result()
            await subs.connected.wait_value(True)
            start = trio.current_time()
            assert endpoint.drop_sockets() == 1
            await subs.connected.wait_value(False)
            db.write(count=7.0)  # missed while down: the resubscription brings it
            with trio.fail_after(5):
                assert (await sub.next_result()).value["count"] == 7.0
            assert trio.current_time() - start == pytest.approx(1.0)  # server-close backoff
            assert subs.connected.value
    second = endpoint.connects[1]
    assert (second.connection_count, second.last_close_reason) == (1, "InternalServerError")
    assert second.session_id == endpoint.connects[0].session_id
    assert second.max_observed_timestamp is not None


async def test_sixty_silent_seconds_mean_a_dead_socket(autojump_clock):
    db = ToyDatabase()
    faults = SyncFaults()
    async with in_process(db, faults) as (endpoint, subs):
        with subs.subscribe("toy:count"):
            await subs.connected.wait_value(True)
            faults.mute = True
            start = trio.current_time()
            await subs.connected.wait_value(False)
            assert trio.current_time() - start == pytest.approx(60.0)
            faults.mute = False
            await subs.connected.wait_value(True)
    assert endpoint.connects[1].last_close_reason == "InactiveServer"


async def test_server_pings_keep_an_idle_socket_alive(autojump_clock):
    db = ToyDatabase()
    async with in_process(db) as (endpoint, subs):
        with subs.subscribe("toy:count"):
            await subs.connected.wait_value(True)
            await trio.sleep(600)
            assert subs.connected.value
    assert len(endpoint.connects) == 1


async def test_transition_from_the_wrong_version_forces_a_reconnect(autojump_clock, caplog):
    db = ToyDatabase()
    faults = SyncFaults()
    async with in_process(db, faults) as (endpoint, subs):
        with subs.subscribe("toy:count") as sub:
            await sub.next_result()
            faults.skew_next_transition = True
            db.write(count=2.0)
            with trio.fail_after(5):
                assert (await sub.next_result()).value["count"] == 2.0
            start = trio.current_time()
    assert start == pytest.approx(1.0, abs=0.01)  # the server is inconsistent: 1 s, not 0.1
    assert endpoint.connects[1].last_close_reason == "VersionMismatch"


async def test_chunked_transitions_are_joined(autojump_clock):
    db = ToyDatabase()
    async with in_process(db, SyncFaults(chunk_size=20)) as (endpoint, subs):
        with subs.subscribe("toy:count", {"pad": "x" * 100}) as sub:
            with trio.fail_after(5):
                assert (await sub.next_result()).value["args"]["pad"] == "x" * 100
            db.write(count=4.0)
            assert (await sub.next_result()).value["count"] == 4.0
    assert len(endpoint.connects) == 1


async def test_refused_upgrade_retries_with_backoff_and_logs_once(autojump_clock, caplog):
    caplog.set_level(logging.DEBUG, logger="oco.convex.sync")
    db = ToyDatabase()
    faults = SyncFaults(refuse_upgrade=403)
    async with in_process(db, faults) as (endpoint, subs):
        with subs.subscribe("toy:count") as sub:
            await trio.sleep(1 + 2 + 4 + 8 + 16 + 16 - 0.01)
            assert endpoint.attempts.value == 6 and not subs.connected.value
            assert sub.latest is None
            faults.refuse_upgrade = None
            with trio.fail_after(17):
                await subs.connected.wait_value(True)
                assert (await sub.next_result()).value["count"] == 0.0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "cannot subscribe" in warnings[0].getMessage()


async def test_closing_the_client_ends_every_iteration(autojump_clock):
    db = ToyDatabase()
    seen: list[Any] = []

    async def consume(sub):
        async for value in sub:
            seen.append(value)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:  # exits only once consume() ended
            async with in_process(db) as (_, subs):
                lingering = subs.subscribe("toy:count")
                sub = lingering.__enter__()
                nursery.start_soon(consume, sub)
                await subs.connected.wait_value(True)
                await trio.testing.wait_all_tasks_blocked()
    lingering.__exit__(None, None, None)
    assert seen == [{"count": 0.0, "args": {}}]


# -- real loopback ----------------------------------------------------------------------


async def test_loopback_subscription_survives_a_server_drop():
    db = ToyDatabase()
    async with on_loopback(db) as (endpoint, url), httpx.AsyncClient() as client:
        async with ConvexSubscriptions(url, client=client, jitter=lambda: 0.0) as subs:
            with subs.subscribe("toy:count", {"w": "1"}) as sub:
                with trio.fail_after(10):
                    assert (await sub.next_result()).value["count"] == 0.0
                    db.write(count=1.0)
                    assert (await sub.next_result()).value["count"] == 1.0
                    endpoint.drop_sockets()
                    await subs.connected.wait_value(False)
                    db.write(count=2.0)
                    assert (await sub.next_result()).value["count"] == 2.0
    assert [c.connection_count for c in endpoint.connects] == [0, 1]


async def test_loopback_refused_upgrade_leaves_the_client_disconnected_until_allowed():
    db = ToyDatabase()
    faults = SyncFaults(refuse_upgrade=404)
    async with on_loopback(db, faults) as (endpoint, url):
        async with ConvexSubscriptions(url, jitter=lambda: 0.0) as subs:
            with subs.subscribe("toy:count") as sub:
                with trio.fail_after(10):
                    await endpoint.attempts.wait_value(lambda n: n >= 2)
                    assert not subs.connected.value and endpoint.connects == []
                    faults.refuse_upgrade = None
                    await subs.connected.wait_value(True)
                    assert (await sub.next_result()).value["count"] == 0.0
