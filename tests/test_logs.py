"""Log lines: format, worker labels through trio tasks, redaction and noisy libraries."""

from __future__ import annotations

import io
import json
import logging
import os
import re

import pytest
import trio
import trio.lowlevel

from oco._retry import CONVEX_CALL
from oco.logs import bind_worker, register_secret, setup_logging, worker_label

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (\w+) \[([^\]]+)\] (.*)$")


@pytest.fixture
def stream() -> io.StringIO:
    out = io.StringIO()
    handler = setup_logging("INFO", "text", stream=out)
    yield out
    logging.getLogger().removeHandler(handler)


async def test_worker_label_follows_trio_tasks(stream: io.StringIO) -> None:
    log = logging.getLogger("oco.test")

    async def child() -> None:
        await trio.lowlevel.checkpoint()
        log.info("from the child")

    log.info("before")
    with bind_worker("alpha"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)
    log.info("after")
    lines = [LINE.match(line).groups() for line in stream.getvalue().splitlines()]
    assert lines == [("INFO", "oco", "before"), ("INFO", "alpha", "from the child"), ("INFO", "oco", "after")]
    assert worker_label.get() is None


def test_secrets_are_redacted_in_message_args_and_exception(stream: io.StringIO) -> None:
    secret = "Zq9-redact-me-in-logs"
    register_secret(secret)
    log = logging.getLogger("oco.test")
    log.warning("token machine_m:worker_w:secret_%s", secret)
    try:
        raise RuntimeError(f"boom {secret}")
    except RuntimeError:
        log.exception("failed with %r", {"secret": secret})
    text = stream.getvalue()
    assert secret not in text
    assert "secret_***" in text and "boom ***" in text and "'secret': '***'" in text


def test_short_secrets_do_not_eat_ordinary_words(stream: io.StringIO) -> None:
    register_secret("q7")
    logging.getLogger("oco.test").info("q7 aq7 q7b machine_m:worker_w:secret_q7")
    assert stream.getvalue().rstrip().endswith("*** aq7 q7b machine_m:worker_w:secret_***")


def test_json_lines(stream: io.StringIO) -> None:
    out = io.StringIO()
    handler = setup_logging("INFO", "json", stream=out)
    try:
        with bind_worker("beta"):
            logging.getLogger("oco.json").info("hello %s", "there")
    finally:
        logging.getLogger().removeHandler(handler)
    record = json.loads(out.getvalue())
    assert record["worker"] == "beta" and record["message"] == "hello there"
    assert record["level"] == "INFO" and record["logger"] == "oco.json"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["ts"])
    assert stream.getvalue() == ""  # a second setup replaced the first handler


def test_noisy_libraries_are_quiet_unless_debug(stream: io.StringIO) -> None:
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    logging.getLogger("httpcore").info("chatter")
    assert stream.getvalue() == ""
    handler = setup_logging("DEBUG", "text", stream=stream)
    try:
        assert logging.getLogger("hypercorn.error").getEffectiveLevel() == logging.DEBUG
    finally:
        logging.getLogger().removeHandler(handler)
        for name in ("httpx", "httpcore", "hypercorn", "hypercorn.error", "hypercorn.access"):
            logging.getLogger(name).setLevel(logging.WARNING)


@pytest.mark.real_backoff(CONVEX_CALL)
async def test_convex_retries_are_one_readable_debug_line(stream: io.StringIO, autojump_clock) -> None:
    from oco.testing import FakeConvex, in_process_convex

    fake = FakeConvex()
    fake.faults.add(function="workers:getByMachineAndWorker", status=503, times=1)
    async with in_process_convex(fake) as convex:
        await convex.query("workers:getByMachineAndWorker", {"machineId": "m", "workerId": "w"})
    assert "retry" not in stream.getvalue()  # a retry that worked is no news at INFO
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        fake.faults.add(function="workers:getByMachineAndWorker", status=503, times=1)
        async with in_process_convex(fake) as convex:
            await convex.query("workers:getByMachineAndWorker", {"machineId": "m", "workerId": "w"})
    finally:
        logging.getLogger().setLevel(logging.INFO)
    lines = [line for line in stream.getvalue().splitlines() if "retry 1" in line]
    assert len(lines) == 1
    assert "DEBUG" in lines[0] and "workers:getByMachineAndWorker failed" in lines[0]


def test_journal_lines_start_with_the_syslog_priority_and_carry_no_timestamp(tmp_path) -> None:
    with open(tmp_path / "journal", "w") as journal:
        stat = os.fstat(journal.fileno())
        env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}", "FORCE_COLOR": "1"}
        handler = setup_logging("DEBUG", "text", stream=journal, env=env)
        try:
            log = logging.getLogger("oco.test")
            with bind_worker("alpha", "w1"):
                log.debug("d")
                log.info("i")
                log.warning("w")
                try:
                    raise RuntimeError("boom")
                except RuntimeError:
                    log.exception("e")
        finally:
            logging.getLogger().removeHandler(handler)
            logging.getLogger().setLevel(logging.INFO)
            for name in ("httpx", "httpcore", "hypercorn", "hypercorn.error", "hypercorn.access"):
                logging.getLogger(name).setLevel(logging.WARNING)
    lines = (tmp_path / "journal").read_text().splitlines()
    assert lines[:4] == [
        "<7>DEBUG [alpha] d",
        "<6>INFO [alpha] i",
        "<4>WARNING [alpha] w",
        "<3>ERROR [alpha] e",
    ]
    assert lines[4] == "<3>Traceback (most recent call last):"  # journalctl -p err shows the traceback too
    assert all(line.startswith("<3>") for line in lines[4:])


def test_a_journal_stream_that_is_not_stderr_is_ignored(tmp_path) -> None:
    from oco.logs import Style, stderr_style

    with open(tmp_path / "a", "w") as a, open(tmp_path / "b", "w") as b:
        stat = os.fstat(b.fileno())
        env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert stderr_style(a, env) is Style.PLAIN  # e.g. a child of a unit, its stderr redirected
        assert stderr_style(b, env) is Style.JOURNAL
        assert stderr_style(a, {"JOURNAL_STREAM": "junk"}) is Style.PLAIN
        assert stderr_style(a, {"FORCE_COLOR": "1"}) is Style.COLOUR
        assert stderr_style(a, {"FORCE_COLOR": "0"}) is Style.PLAIN
        assert stderr_style(a, {"FORCE_COLOR": "1", "NO_COLOR": "1"}) is Style.PLAIN
