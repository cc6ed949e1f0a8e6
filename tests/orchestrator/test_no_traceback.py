"""Whatever a Convex URL answers, the user reads one line; a traceback only for a bug, just one.

Real workers under their real supervisor: against a URL that is no Convex deployment (a tiny
ASGI app served by hypercorn on loopback), an unreachable one (a closed loopback port, on a
MockClock), a backend that answers outside the contract, and one whose error text carries
terminal escape sequences. A stub worker stands in for a bug.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from stubs import SETTINGS, Script, StubFactory, config, configs

from oco.config import WorkerConfig, parse_token
from oco.convex import ConvexClient
from oco.logs import setup_logging
from oco.orchestrator import Orchestrator, RestartPolicy
from oco.orchestrator._status import format_status_table, read_status
from oco.orchestrator._supervisor import WorkerSlot
from oco.testing import fake_models, in_process_convex, make_worker, serve_asgi, trio_ms
from oco.testing._asgi import read_body
from oco.worker import StopControl, Worker
from timed_records import Timed

TOKEN = "machine_m1:worker_w1:secret_s3cr3tvalue"


def worker_config(url: str) -> WorkerConfig:
    return WorkerConfig(token=parse_token(TOKEN), convex_url=url, working_directory=Path("/tmp"), name="w1")


def real_worker(cfg: WorkerConfig, convex: ConvexClient, stop: StopControl, tmp_path: Path) -> Worker:
    return make_worker(
        cfg, convex, tmp_path, stop=stop, models=fake_models(()), now_ms=trio_ms, convex_transport="poll"
    )


@pytest.fixture
def terminal() -> Any:
    """The text a user's terminal would show (the real handler and formatter)."""
    out = io.StringIO()
    handler = setup_logging("DEBUG", "text", stream=out)
    yield out
    logging.getLogger().removeHandler(handler)
    for name in ("httpx", "httpcore", "hypercorn", "hypercorn.error", "hypercorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)


def answering(status: int, body: bytes, content_type: bytes) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await read_body(receive)
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}
        )
        await send({"type": "http.response.body", "body": body})

    return app


def in_process(app: Any) -> Callable[[str], Any]:
    return partial(in_process_convex, app)


async def run_slot(slot: WorkerSlot, until: Callable[[WorkerSlot], bool], timeout: float) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(slot.run)
        with trio.fail_after(timeout):
            await slot.state.wait_value(lambda _: until(slot))
        nursery.cancel_scope.cancel()


# -- a URL that is no Convex deployment ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "ctype", "what"),
    [
        (404, b"Not Found", b"text/plain", "HTTP 404"),
        (
            200,
            b"<!doctype html><html><body>My blog</body></html>",
            b"text/html",
            "HTTP 200 with a non-JSON body",
        ),
    ],
    ids=["404", "html-200"],
)
async def test_a_url_that_is_no_convex_deployment_parks_with_that_reason(
    status: int, body: bytes, ctype: bytes, what: str, tmp_path: Path, timed: Timed
) -> None:
    async with serve_asgi(answering(status, body, ctype)) as url:
        cfg = worker_config(url)
        slot = WorkerSlot(
            cfg,
            lambda convex: real_worker(cfg, convex, StopControl(), tmp_path),
            ConvexClient,
            RestartPolicy(),
        )
        await run_slot(slot, lambda s: s.state.value == "parked", timeout=30)
    expected = f"{url} is not a Convex deployment ({what} from /api/mutation, calling workers:register): check convex_url"
    assert slot.last_error == expected
    loud = [r.getMessage() for _, r in timed.records if r.levelno >= logging.WARNING]
    assert loud == [f"parked: {expected} (retrying in 600 s, or on reload)"]
    assert slot.attempts == 1 and not any(r.exc_info for _, r in timed.records)


# -- an unreachable deployment -------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.real_backoff()  # the worker's retries, each with the client's inside
async def test_an_unreachable_deployment_is_named_once_then_every_five_minutes_and_in_status(
    tmp_path: Path, autojump_clock: object, timed: Timed
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    cfg = worker_config(url)
    orch = Orchestrator(
        {cfg.key: cfg},
        SETTINGS,
        worker_factory=lambda c, link, stop, settings: real_worker(c, link.client, stop, tmp_path),
        handle_signals=False,
        hard_exit=None,
        status_dir=tmp_path / "status",
    )
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(orch.run)
        await trio.sleep(16 * 60)
        snapshot = read_status(tmp_path / "status" / "status.json")
        orch.request_stop("test")
    about_url = [(t - start, r) for t, r in timed.records if url in r.getMessage()]
    warnings = [t for t, r in about_url if r.levelno == logging.WARNING]
    assert warnings and warnings[0] < 60  # said at once
    assert all(b - a >= 300 for a, b in itertools.pairwise(warnings)), warnings
    assert 3 <= len(warnings) <= 4, warnings  # 16 min: at 0, 5, 10 (and 15) min
    assert sum(1 for _, r in about_url if r.levelno == logging.DEBUG) >= 10  # the retries in between
    first = next(r.getMessage() for t, r in about_url if r.levelno == logging.WARNING)
    assert first.startswith(f"cannot reach {url} (") and "calling workers:register" in first
    assert all(r.levelno <= logging.WARNING and not r.exc_info for _, r in timed.records)
    assert snapshot is not None
    row = snapshot.workers[0]
    assert row.state == "registering" and row.last_error and row.last_error.startswith(f"cannot reach {url}")
    assert f"w1: last error: cannot reach {url}" in format_status_table(snapshot)


# -- answers outside the contract ----------------------------------------------------------


async def test_a_wrong_typed_result_is_one_line_and_a_restart_not_a_crash(
    tmp_path: Path, autojump_clock: object, timed: Timed
) -> None:
    body = json.dumps({"status": "success", "value": {"approved": "yes", "approvalStatus": 7}}).encode()
    cfg = worker_config("https://wrong.convex.cloud")
    slot = WorkerSlot(
        cfg,
        lambda convex: real_worker(cfg, convex, StopControl(), tmp_path),
        in_process(answering(200, body, b"application/json")),
        RestartPolicy(jitter=0.0),
    )
    await run_slot(slot, lambda s: s.attempts >= 3, timeout=600)
    loud = [r.getMessage() for _, r in timed.records if r.levelno >= logging.WARNING]
    assert loud[:2] == [
        "unexpected response at $.approved: invalid value for type, expected bool (calling "
        "workers:register on https://wrong.convex.cloud): check that convex_url is the OpenCode "
        f"Orchestrator backend, and its version; restarting in {delay} s"
        for delay in ("1.0", "2.0")
    ]
    assert not any(r.exc_info for _, r in timed.records)


async def test_escape_sequences_in_a_convex_error_never_reach_the_terminal(
    tmp_path: Path, autojump_clock: object, terminal: io.StringIO
) -> None:
    evil = (
        "Uncaught Error: \x1b]0;owned\x07\x1b[2J\x1b[31mboom\x1b[0m\n2026-01-01T00:00:00Z ERROR [w2] forged"
    )
    body = json.dumps({"status": "error", "errorMessage": evil, "logLines": ["\x1b[5mblink\x1b[0m"]}).encode()
    cfg = worker_config("https://evil.convex.cloud")
    slot = WorkerSlot(
        cfg,
        lambda convex: real_worker(cfg, convex, StopControl(), tmp_path),
        in_process(answering(560, body, b"application/json")),
        RestartPolicy(jitter=0.0),
    )
    await run_slot(slot, lambda s: s.attempts >= 2, timeout=600)
    text = terminal.getvalue()
    assert "boom" in text and "blink" in text
    assert "\x1b" not in text and "\x07" not in text
    assert not any(line.startswith("2026-01-01T00:00:00Z") for line in text.splitlines())
    assert "Traceback" not in text
    assert slot.last_error and "\x1b" not in slot.last_error and "\n" not in slot.last_error


# -- a bug: exactly one traceback, its own ---------------------------------------------------


def nested_bug(attempt: int) -> BaseException:
    try:
        {}["missing"]
    except KeyError as bug:
        leaf = bug
    return ExceptionGroup("outer nursery", [ExceptionGroup("inner nursery", [leaf])])


async def test_a_bug_prints_exactly_one_traceback_of_the_leaf(
    autojump_clock: object, terminal: io.StringIO
) -> None:
    key = config(1).key
    factory = StubFactory({key: Script(fail_with=nested_bug)})
    orch = Orchestrator(
        configs(1),
        SETTINGS,
        worker_factory=factory,
        handle_signals=False,
        hard_exit=None,
        policy=RestartPolicy(jitter=0.0),
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(orch.run)
        await orch.started.wait()
        await orch.slots[key].state.wait_value("backoff")
        orch.request_stop("test")
    text = terminal.getvalue()
    assert text.count("Traceback (most recent call last)") == 1, text
    assert "ExceptionGroup" not in text and "KeyError: 'missing'" in text
    assert "worker crashed (a bug in trio-oco): KeyError: 'missing'" in text


# -- the status table ----------------------------------------------------------------------


def test_the_status_table_never_prints_an_escape_sequence_or_a_huge_error() -> None:
    from oco.orchestrator._status import StatusSnapshot, WorkerStatus

    row = WorkerStatus(
        name="w\x1b[31m1",
        machine_id="m",
        worker_id="w",
        directory="/tmp/\x1b]0;title\x07dir",
        state="backoff",
        since=0.0,
        last_error="\x1b[2Jboom " + "x" * 1_000_000,
    )
    table = format_status_table(StatusSnapshot(pid=1, started_at=0.0, updated_at=0.0, workers=[row]), now=1.0)
    assert "\x1b" not in table and "\x07" not in table
    assert "boom" in table and len(table) < 2000
