"""ConvexSubscriptions against a hostile sync server, in process on a MockClock: every frame
the server sends may be malformed. None raises out of the client, none makes it storm, and
the subscriptions get their results back (issue 13, "the sync websocket")."""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any

import httpx
import pytest
import trio
from sync_support import ToyDatabase, in_process, on_loopback

from oco.convex._sync_client import MAX_FRAME_BYTES, ConvexSubscriptions, SyncQueryError
from oco.convex._sync_state import QueryError
from oco.testing import SyncFaults

_VERSION = {"querySet": 1, "identity": 0, "ts": "AQAAAAAAAAA="}

# Frames that are not a protocol message we can read: each closes the socket.
HOSTILE_FRAMES: dict[str, str | bytes] = {
    "garbage text": "}{ not json",
    "binary": b"\x00\xffbinary",
    "a JSON array": "[1, 2, 3]",
    "an object without a type": '{"hello": "world"}',
    "a non-string type": '{"type": 5}',
    "modifications not a list": json.dumps(
        {
            "type": "Transition",
            "startVersion": _VERSION,
            "endVersion": _VERSION,
            "modifications": {"queryId": 0},
        }
    ),
    "modifications a string": json.dumps(
        {
            "type": "Transition",
            "startVersion": _VERSION,
            "endVersion": _VERSION,
            "modifications": "QueryUpdated",
        }
    ),
    "versions as strings": json.dumps(
        {
            "type": "Transition",
            "startVersion": {"querySet": "1", "identity": "0", "ts": "x"},
            "endVersion": _VERSION,
            "modifications": [],
        }
    ),
    "a version as a bool": json.dumps(
        {
            "type": "Transition",
            "startVersion": {**_VERSION, "querySet": True},
            "endVersion": _VERSION,
            "modifications": [],
        }
    ),
    "a modification without a query id": json.dumps(
        {
            "type": "Transition",
            "startVersion": _VERSION,
            "endVersion": _VERSION,
            "modifications": [{"type": "QueryUpdated", "value": 1}],
        }
    ),
    "deeply nested JSON": "[" * 100_000 + "]" * 100_000,
    "a FatalError": '{"type": "FatalError", "error": "boom"}',
    "a FatalError without text": '{"type": "FatalError", "error": ["not", "text"]}',
    "an AuthError": '{"type": "AuthError", "error": "bad token", "baseVersion": 0,'
    ' "authUpdateAttempted": false}',
    "a bad TransitionChunk": '{"type": "TransitionChunk", "chunk": "{", "partNumber": 3,'
    ' "totalParts": 2, "transitionId": "t"}',
    "chunks that join into garbage": '{"type": "TransitionChunk", "chunk": "nope",'
    ' "partNumber": 0, "totalParts": 1, "transitionId": "t"}',
    "a frame over the size bound": "x" * (MAX_FRAME_BYTES + 1),
}


async def _synced(subs: Any, sub: Any) -> None:
    with trio.fail_after(5):
        await sub.next_result()
        await subs.connected.wait_value(True)


@pytest.mark.parametrize("frame", HOSTILE_FRAMES.values(), ids=HOSTILE_FRAMES.keys())
async def test_a_hostile_frame_closes_the_socket_and_the_client_resubscribes(frame, autojump_clock, caplog):
    caplog.set_level(logging.DEBUG, logger="oco.convex.sync")
    db = ToyDatabase()
    async with in_process(db) as (endpoint, subs):
        with subs.subscribe("toy:count") as sub:
            await _synced(subs, sub)
            assert await endpoint.inject_frame(frame) == 1
            with trio.fail_after(5):
                await subs.connected.wait_value(False)
            lost = trio.current_time()
            db.write(count=3.0)  # written while down: the resubscription brings it
            with trio.fail_after(30):
                assert (await sub.next_result()).value["count"] == 3.0
            # A server that sent something we cannot read gets at least the 1 s backoff.
            assert trio.current_time() - lost >= 1.0
            assert subs.connected.value
    assert endpoint.attempts.value == 2
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "sync socket to http://toy" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]  # one line, never a traceback


async def test_a_server_that_sends_garbage_on_every_socket_gets_growing_delays(autojump_clock, caplog):
    caplog.set_level(logging.DEBUG, logger="oco.convex.sync")
    db = ToyDatabase()
    opened: list[float] = []

    async def record_attempts(endpoint: Any) -> None:
        while True:
            seen = endpoint.attempts.value
            await endpoint.attempts.wait_value(lambda n: n > seen)  # noqa: B023 - the predicate is awaited in this iteration
            opened.append(trio.current_time())

    async with in_process(db, SyncFaults(frame_after_sync="garbage")) as (endpoint, subs):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(record_attempts, endpoint)
            with subs.subscribe("toy:count"):
                await trio.sleep(600)
            nursery.cancel_scope.cancel()
    # Was 130 reconnects in 20 s: the retry count reset on every Transition.
    assert 8 <= endpoint.attempts.value <= 15
    gaps = [b - a for a, b in itertools.pairwise(opened)]
    assert gaps == sorted(gaps)  # never shorter than the one before
    assert gaps[0] >= 1.0 and gaps[-1] == pytest.approx(60.0, abs=1.0)  # the cap
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    # The first reconnect with its cause, then one summary per 5 minutes at most.
    assert 1 <= len(warnings) <= 3, warnings
    assert "garbage" in warnings[0] or "not JSON" in warnings[0]
    assert any("reconnected" in w and "times in the last" in w for w in warnings[1:]), warnings


async def test_the_retry_count_resets_once_a_socket_stayed_healthy(autojump_clock):
    db = ToyDatabase()
    async with in_process(db) as (endpoint, subs):
        with subs.subscribe("toy:count") as sub:
            await _synced(subs, sub)
            for _ in range(4):  # four short-lived sockets: 1, 2, 4, 8 s
                await endpoint.inject_frame("garbage")
                await subs.connected.wait_value(False)
                await subs.connected.wait_value(True)
            await trio.sleep(31)  # healthy for a while: the next failure starts over
            await endpoint.inject_frame("garbage")
            await subs.connected.wait_value(False)
            lost = trio.current_time()
            await subs.connected.wait_value(True)
            assert trio.current_time() - lost == pytest.approx(1.0, abs=0.05)


async def test_a_malformed_result_fails_that_query_only(autojump_clock, caplog):
    db = ToyDatabase()
    async with in_process(db) as (endpoint, subs):
        with subs.subscribe("toy:count") as sub, subs.subscribe("toy:other") as other:
            await _synced(subs, sub)
            await other.next_result()
            bad = {"type": "QueryUpdated", "queryId": 0, "value": {"$integer": "??"}}
            assert await endpoint.inject_transition([bad]) == 1
            with trio.fail_after(5):
                result = await sub.next_result()
            assert isinstance(result, QueryError) and "malformed" in result.message
            assert other.latest is not None and not isinstance(other.latest, QueryError)
            db.write(count=2.0)  # the next real result replaces it
            with trio.fail_after(5):
                assert (await sub.next_result()).value["count"] == 2.0
            assert subs.connected.value
    assert endpoint.attempts.value == 1  # one query's bad value is no reason to reconnect


@pytest.mark.parametrize(
    "modification",
    [
        {"type": "QueryUpdated", "queryId": 77, "value": "for nobody"},
        {"type": "QueryFailed", "queryId": 77, "errorMessage": "nobody", "logLines": []},
        {"type": "QueryRemoved", "queryId": 77},
        {"type": "QuerySomethingNew", "queryId": 0},
    ],
    ids=["updated", "failed", "removed", "unknown kind"],
)
async def test_a_transition_for_an_unknown_query_or_kind_is_ignored(modification, autojump_clock):
    db = ToyDatabase()
    async with in_process(db) as (endpoint, subs):
        with subs.subscribe("toy:count") as sub:
            await _synced(subs, sub)
            assert await endpoint.inject_transition([modification]) == 1
            db.write(count=5.0)  # still chained: the next real Transition applies
            with trio.fail_after(5):
                assert (await sub.next_result()).value["count"] == 5.0
    assert endpoint.attempts.value == 1


async def test_server_texts_are_escaped_in_logs_and_errors(autojump_clock, caplog):
    caplog.set_level(logging.DEBUG, logger="oco.convex.sync")
    db = ToyDatabase()
    hostile = "\x1b[31mred\x1b[0m \x1b]0;pwned\x07title\nforged line"
    async with in_process(db) as (endpoint, subs):
        with subs.subscribe("toy:count") as sub:
            await _synced(subs, sub)
            failed = {
                "type": "QueryFailed",
                "queryId": 0,
                "errorMessage": hostile,
                "logLines": [hostile],
                "errorData": None,
            }
            await endpoint.inject_transition([failed])
            with pytest.raises(SyncQueryError) as raised, trio.fail_after(5):
                await anext(aiter(sub))
            await endpoint.inject_frame(json.dumps({"type": "FatalError", "error": hostile}))
            await subs.connected.wait_value(False)
            await subs.connected.wait_value(True)
    assert "\x1b" not in str(raised.value) and "\n" not in str(raised.value)
    assert "red" in str(raised.value)
    texts = [r.getMessage() for r in caplog.records]
    assert any("red" in t and "FatalError" in t for t in texts), texts
    assert not [t for t in texts if "\x1b" in t or "\x07" in t or "\n" in t]


async def test_the_size_bound_is_per_frame_and_chunks_join_beyond_it(autojump_clock):
    db = ToyDatabase()
    pad = "y" * 3000
    faults = SyncFaults(chunk_size=500)
    async with in_process(db, faults, max_frame_bytes=1000) as (endpoint, subs):
        with subs.subscribe("toy:count", {"pad": pad}) as sub:
            with trio.fail_after(5):
                assert (await sub.next_result()).value["args"]["pad"] == pad
            assert endpoint.attempts.value == 1
            faults.chunk_size = None  # the same 3 kB as one frame: over the bound
            db.write(count=1.0)
            with trio.fail_after(5):
                await subs.connected.wait_value(False)
    assert endpoint.attempts.value == 1


async def test_over_loopback_a_big_frame_is_refused_while_it_arrives(caplog):
    # Over a real socket wsproto hands the message over in pieces; the bound counts them.
    db = ToyDatabase()
    async with on_loopback(db) as (endpoint, url), httpx.AsyncClient() as client:
        async with ConvexSubscriptions(
            url, client=client, jitter=lambda: 0.0, max_frame_bytes=100_000
        ) as subs:
            with subs.subscribe("toy:count") as sub:
                with trio.fail_after(10):
                    await _synced(subs, sub)
                    await endpoint.inject_frame("y" * 3_000_000)
                    await subs.connected.wait_value(False)
                    await subs.connected.wait_value(True)
    assert any("frame over 100000 bytes" in r.getMessage() for r in caplog.records)
    assert endpoint.attempts.value == 2
