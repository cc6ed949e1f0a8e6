"""A real worker subscribed to a hostile sync server, in process on a MockClock: whatever frame
or value the server sends, the worker does not crash, does not storm, and still answers (a
model-less message gets the NO_MODEL note, which needs no OpenCode). Issue 13."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio
import trio.testing
from subscription_support import SUBSCRIBE, ask_without_model, watch_calls

from oco.convex._sync_client import MAX_FRAME_BYTES
from oco.testing import FakeConvex, running_worker
from oco.worker import NO_MODEL_NOTE, State
from oco.worker._subscription_watch import MESSAGES_QUERY, SESSIONS_QUERY, WORKER_QUERY

_VERSION = {"querySet": 1, "identity": 0, "ts": "AQAAAAAAAAA="}
_HOSTILE = "\x1b[31mred\x1b[0m \x1b]0;pwned\x07 and\nforged"

HOSTILE_FRAMES: dict[str, str | bytes] = {
    "garbage text": "}{ not json",
    "binary": b"\x00\xff",
    "modifications not a list": json.dumps(
        {"type": "Transition", "startVersion": _VERSION, "endVersion": _VERSION, "modifications": 5}
    ),
    "versions as strings": json.dumps(
        {
            "type": "Transition",
            "startVersion": {"querySet": "1", "identity": "0", "ts": "1"},
            "endVersion": _VERSION,
            "modifications": [],
        }
    ),
    "deeply nested JSON": "[" * 50_000 + "]" * 50_000,
    "a FatalError": json.dumps({"type": "FatalError", "error": _HOSTILE}),
    "a frame over the size bound": "x" * (MAX_FRAME_BYTES + 1),
}


async def _ready(worker: Any, fake: FakeConvex) -> None:
    with trio.fail_after(10):
        await worker.state.wait_value(State.READY)
        await fake.sync.open_sockets.wait_value(1)
        while fake.sync.transitions_sent == 0:
            await trio.sleep(0.1)
    await trio.sleep(1)  # the first snapshot is out


@pytest.mark.parametrize("frame", HOSTILE_FRAMES.values(), ids=HOSTILE_FRAMES.keys())
async def test_a_hostile_frame_neither_crashes_the_worker_nor_stops_its_answers(
    frame, fake, new_worker, autojump_clock, caplog
):
    caplog.set_level(logging.DEBUG)
    created = fake.create_worker()
    async with running_worker(new_worker(created, **SUBSCRIBE), timeout=10) as worker:
        await _ready(worker, fake)
        assert await fake.sync.inject_frame(frame) == 1
        assert await ask_without_model(fake, created.worker_id, timeout=30) == NO_MODEL_NOTE
        assert worker.state.value is State.READY
        assert fake.sync.attempts.value == 2  # one reconnect, not a storm
    texts = [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if "\x1b" in t or "\x07" in t or "\n" in t]
    assert not [r for r in caplog.records if r.exc_info]  # one line each, no traceback


@pytest.mark.parametrize(
    ("query", "value"),
    [
        (MESSAGES_QUERY, "not a list"),
        (MESSAGES_QUERY, {"$weird": 1}),
        (SESSIONS_QUERY, {"sessions": []}),
        (WORKER_QUERY, 5),
        (WORKER_QUERY, {"approvalStatus": ["approved"]}),
    ],
    ids=[
        "messages a string",
        "messages undecodable",
        "sessions an object",
        "worker a number",
        "worker wrong fields",
    ],
)
async def test_a_wrong_typed_value_is_skipped_and_the_worker_answers_on(
    query, value, fake, new_worker, autojump_clock, caplog
):
    created = fake.create_worker()
    async with running_worker(new_worker(created, **SUBSCRIBE), timeout=10) as worker:
        await _ready(worker, fake)
        for _ in range(3):  # sent again and again: still logged once
            assert await fake.sync.inject_transition(values={query: value}) == 1
            await trio.sleep(1)
        assert worker.state.value is State.READY
        # The next real result replaces the bad one, and the worker acts on it.
        assert await ask_without_model(fake, created.worker_id, timeout=30) == NO_MODEL_NOTE
        assert fake.sync.attempts.value == 1  # a bad value is no reason to reconnect
    skipped = [r for r in caplog.records if r.levelno >= logging.WARNING and query in r.getMessage()]
    assert len(skipped) == 1, [r.getMessage() for r in skipped]
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_failed_query_text_is_logged_escaped(fake, new_worker, autojump_clock, caplog):
    created = fake.create_worker()
    async with running_worker(new_worker(created, **SUBSCRIBE), timeout=10) as worker:
        await _ready(worker, fake)
        failed = {
            "type": "QueryFailed",
            "queryId": 2,
            "errorMessage": _HOSTILE,
            "logLines": [],
            "errorData": None,
        }
        await fake.sync.inject_transition([failed])
        # Subscriptions keep only the latest value: let the watcher see the failure before the
        # next message's Transition replaces it (sending at once lost it about one run in ten).
        await trio.testing.wait_all_tasks_blocked()
        assert await ask_without_model(fake, created.worker_id, timeout=30) == NO_MODEL_NOTE
    logged = [r.getMessage() for r in caplog.records if "red" in r.getMessage()]
    assert logged and not [t for t in logged if "\x1b" in t or "\x07" in t or "\n" in t]


async def test_a_server_that_breaks_every_socket_costs_a_dozen_reconnects_in_ten_minutes(
    fake, new_worker, autojump_clock, caplog
):
    created = fake.create_worker()
    fake.sync.faults.frame_after_sync = "garbage"
    async with running_worker(new_worker(created, **SUBSCRIBE), timeout=10) as worker:
        started = trio.current_time()
        for _ in range(10):  # a message a minute, each answered
            assert await ask_without_model(fake, created.worker_id, timeout=60) == NO_MODEL_NOTE
            await trio.sleep_until(started + 60 * (_ + 1))
        assert worker.state.value is State.READY
        # Was 130 reconnects in 20 s, each re-running the whole message history. Backoff
        # 1, 2, 4 … 32 s, then 60 s: about 15 sockets in 10 min. The jitter is random (±50 %,
        # the JS client's rule); at its worst every delay is halved, which allows 25.
        assert fake.sync.attempts.value <= 25
        # Each socket re-runs the three queries (48 runs in all, measured; was 18 000).
        assert fake.sync.query_runs <= 100
        assert watch_calls(fake) > 0  # between sockets, the worker polled
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 6, warnings
