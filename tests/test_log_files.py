"""The per-worker log files: routing by worker, bounded size, the name index, a failing disk,
and `trio-oco logs -f` following them across rotation (a real subprocess)."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

import pytest

from oco._log_files import INDEX_FILE, LogFiles, open_log_files
from oco.commands.logs import Follower, Source, last_lines, merged
from oco.logs import bind_worker, register_secret, relabel
from oco.testing import open_oco, run_oco
from terminal import on_terminal

log = logging.getLogger("oco.test.files")


@pytest.fixture(autouse=True)
def _info() -> None:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    yield
    root.setLevel(level)


def test_each_workers_lines_go_to_its_own_file_and_the_rest_to_oco_log(tmp_path: Path) -> None:
    secret = "files-secret-0123456789abcdef"
    register_secret(secret)
    with open_log_files(tmp_path):
        log.info("orchestrator line")
        with bind_worker("alpha", "w_alpha"):
            log.info("alpha line with %s", secret)
            with bind_worker("alpha (again)", "w_alpha"):  # the worker inside its supervisor
                relabel("Alpha")
                log.warning("renamed")
        with bind_worker("beta", "w_beta"):
            log.info("beta line")
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == [INDEX_FILE, "oco.log", "w_alpha.log", "w_beta.log"]
    alpha = (logs / "w_alpha.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in alpha] == ["INFO alpha line with ***", "WARNING renamed"]
    assert "beta" not in (logs / "w_alpha.log").read_text()
    assert "orchestrator line" in (logs / "oco.log").read_text()
    # The supervisor's tag was renamed too: one tag per worker, whoever bound it first.
    assert json.loads((logs / INDEX_FILE).read_text())["workers"] == {"w_alpha": "Alpha", "w_beta": "beta"}
    for path in logs.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
    assert logs.stat().st_mode & 0o777 == 0o700
    assert secret not in "".join(p.read_text() for p in logs.iterdir())


def test_the_directories_it_makes_are_private(tmp_path: Path) -> None:
    with open_log_files(tmp_path / "state" / "oco"), bind_worker("alpha", "w_alpha"):
        log.info("hello")
    for directory in (tmp_path / "state", tmp_path / "state" / "oco", tmp_path / "state" / "oco" / "logs"):
        assert directory.stat().st_mode & 0o777 == 0o700, directory


def test_rotation_keeps_each_workers_files_bounded(tmp_path: Path) -> None:
    with open_log_files(tmp_path, max_bytes=4000, backups=2):
        with bind_worker("alpha", "w_alpha"):
            for n in range(2000):
                log.info("line %05d %s", n, "x" * 40)
    files = sorted((tmp_path / "logs").glob("w_alpha.log*"))
    assert [p.name for p in files] == ["w_alpha.log", "w_alpha.log.1", "w_alpha.log.2"]
    assert all(p.stat().st_size <= 4000 for p in files)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    assert last_lines(files[0], 1)[0].endswith(f"line 01999 {'x' * 40}")


def test_a_full_disk_turns_the_files_off_with_one_warning_and_stderr_goes_on(tmp_path: Path, caplog) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "w_alpha.log").symlink_to("/dev/full")  # every write: ENOSPC, for root too
    with open_log_files(tmp_path) as files:
        with bind_worker("alpha", "w_alpha"):
            for n in range(3):
                log.info("turn %d", n)
    assert files.failed == "No space left on device"
    warnings = [r for r in caplog.records if "cannot write the log files" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert [r.getMessage() for r in caplog.records].count("turn 2") == 1  # still logged elsewhere


def test_a_log_directory_that_cannot_be_made_costs_only_the_files(tmp_path: Path, caplog) -> None:
    (tmp_path / "logs").write_text("a file where the directory should be")
    handler = LogFiles(tmp_path / "logs")
    logging.getLogger().addHandler(handler)
    try:
        log.info("one")
        log.info("two")
    finally:
        logging.getLogger().removeHandler(handler)
    assert handler.failed is not None
    assert sum("cannot write the log files" in r.getMessage() for r in caplog.records) == 1


def _write(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def test_the_follower_reads_on_across_rotation_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "w.log"
    _write(path, "old\n")
    follower = Follower(Source("w", path))
    assert follower.poll() == []
    _write(path, "one\ntw")
    assert follower.poll() == ["one"]  # "tw" is not complete yet
    _write(path, "o\n")
    path.rename(tmp_path / "w.log.1")  # rotated; the old file's rest comes first
    _write(tmp_path / "w.log.1", "three\n")
    _write(path, "four\n")
    assert follower.poll() == ["two", "three", "four"]
    path.write_text("5\n")  # truncated in place (shorter than what was read: tail -F's rule too)
    assert follower.poll() == ["5"]
    follower.close()


def test_merged_lines_are_in_time_order_and_a_traceback_stays_with_its_line() -> None:
    a = Source("alpha", Path("a"))
    b = Source("beta", Path("b"))
    batches = [
        (a, ["2026-12-02T00:00:01.000Z INFO a1", "2026-12-02T00:00:03.000Z ERROR a2", "Traceback", "  x"]),
        (b, ["2026-12-02T00:00:02.000Z INFO b1", "2026-12-02T00:00:04.000Z INFO b2"]),
    ]
    assert [line.split(" ")[-1] for _, line in merged(batches)] == ["a1", "b1", "a2", "Traceback", "x", "b2"]


async def test_logs_follow_reads_every_line_across_rotation(tmp_path: Path) -> None:
    state = tmp_path / "state" / "opencode-orchestrator"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    with open_log_files(state, max_bytes=3000, backups=1):
        with bind_worker("alpha", "w_alpha"):
            log.info("before following")
            async with open_oco("logs", "alpha", "-f", "-n", "1", env=env) as follow:
                assert "before following" in await follow.first_line()
                for n in range(200):  # ~11 KB: a rotation every ~55 lines
                    log.info("line %03d %s", n, "y" * 20)
                    if n % 50 == 49:  # at most one rotation between two looks of the follower
                        await follow.wait_for(f"line {n:03d}", timeout=20)
                follow.process.send_signal(signal.SIGINT)
                assert await follow.wait(timeout=10) == 0
    numbers = [int(line.split("line ")[1][:3]) for line in follow.text.splitlines() if " line " in line]
    assert numbers == list(range(200))  # every line once, in order, across the rotations
    assert len(list((state / "logs").glob("w_alpha.log*"))) == 2  # it did rotate (one backup kept)


def test_logs_colours_names_and_levels_on_a_terminal_unless_no_color(tmp_path: Path) -> None:
    state = tmp_path / "state" / "opencode-orchestrator"
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    with open_log_files(state), bind_worker("alpha", "w_alpha"):
        log.warning("careful")
    code, coloured = on_terminal("logs", env=env, only="stdout")
    assert code == 0 and "\x1b[" in coloured and "\x1b[33mWARNING\x1b[0m careful" in coloured, coloured
    code, plain = on_terminal("logs", env={**env, "NO_COLOR": "1"}, only="stdout")
    assert code == 0 and "\x1b" not in plain, plain
    piped = run_oco("logs", env=env)
    assert piped.stdout.startswith("alpha | ") and "\x1b" not in piped.stdout
