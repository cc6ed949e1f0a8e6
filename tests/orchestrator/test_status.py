"""status.json (atomic, private, no secrets), the single-instance lock, and the status table."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import attrs
import pytest

from oco.config import Token, WorkerConfig
from oco.orchestrator._status import (
    LOCK_FILE,
    AlreadyRunning,
    StatusFileError,
    StatusSnapshot,
    WorkerStatus,
    acquire_lock,
    format_status_table,
    pid_alive,
    read_status,
    status_exit_code,
    write_status,
)

SECRET = "s3cr3t-value-never-shown"
NOW = 1_700_000_000.0


def _config(n: int = 1) -> WorkerConfig:
    return WorkerConfig(
        token=Token(f"mach{n}", f"work{n}", SECRET),
        convex_url="https://example.convex.cloud",
        working_directory=Path(f"/srv/project{n}"),
        name=f"worker-{n}",
    )


def _snapshot(**changes) -> StatusSnapshot:
    workers = [
        WorkerStatus.for_config(
            _config(1),
            state="ready",
            since=NOW - 120,
            active_sessions=2,
            turns_in_flight=1,
            opencode_pid=4242,
        ),
        WorkerStatus.for_config(
            _config(2),
            state="parked",
            since=NOW - 7200,
            restarts=3,
            last_error="the backend rejected the worker\nsecond line",
        ),
    ]
    return attrs.evolve(
        StatusSnapshot(pid=1234, started_at=NOW - 90_000, updated_at=NOW - 2, workers=workers),
        **changes,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- status.json ------------------------------------------------------------------------


def test_a_written_snapshot_reads_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "state" / "status.json"
    write_status(path, _snapshot())
    assert read_status(path) == _snapshot()


def test_status_file_is_0600_in_a_0700_directory_with_no_temp_left(tmp_path: Path) -> None:
    path = tmp_path / "state" / "status.json"
    write_status(path, _snapshot())
    write_status(path, _snapshot(updated_at=NOW))  # an overwrite goes through a temp too
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["status.json"]
    assert read_status(path).updated_at == NOW


def test_the_snapshot_never_holds_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    write_status(path, _snapshot())
    text = path.read_text()
    assert SECRET not in text
    assert "mach1" in text and "work1" in text and "/srv/project1" in text
    fields = {f.name for f in attrs.fields(WorkerStatus)} | {f.name for f in attrs.fields(StatusSnapshot)}
    assert not {name for name in fields if "secret" in name or "token" in name}


def test_a_missing_status_file_reads_as_none(tmp_path: Path) -> None:
    assert read_status(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 99, "pid": 1}',
        '{"version": 1, "pid": "abc", "started_at": 1, "updated_at": 1, "workers": []}',
        '{"version": 1, "pid": 1}',
    ],
)
def test_a_broken_status_file_is_one_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "status.json"
    path.write_text(content)
    with pytest.raises(StatusFileError) as info:
        read_status(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    error = info.value  # no chained traceback reaches the CLI
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_an_unreadable_status_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "status.json").mkdir()
    with pytest.raises(StatusFileError, match="cannot read"):
        read_status(tmp_path / "status.json")


# --- pid and exit code ------------------------------------------------------------------


def test_pid_alive_knows_this_process_and_not_a_reaped_child() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    assert not pid_alive(0) and not pid_alive(-5)


def test_status_exit_codes() -> None:
    ready = _snapshot(workers=[_snapshot().workers[0]])
    assert status_exit_code(ready, alive=True) == 0
    assert status_exit_code(_snapshot(), alive=True) == 1
    assert status_exit_code(ready, alive=False) == 3
    assert status_exit_code(None, alive=False) == 3
    assert status_exit_code(_snapshot(workers=[]), alive=True) == 0


# --- the lock ---------------------------------------------------------------------------


def test_a_second_lock_on_the_same_directory_names_the_holder(tmp_path: Path) -> None:
    with acquire_lock(tmp_path / "state"):
        assert (tmp_path / "state" / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        assert _mode(tmp_path / "state" / LOCK_FILE) == 0o600
        assert _mode(tmp_path / "state") == 0o700
        with pytest.raises(AlreadyRunning) as info:
            acquire_lock(tmp_path / "state")
        assert info.value.pid == os.getpid()
        assert f"pid {os.getpid()}" in str(info.value)
    assert (tmp_path / "state" / LOCK_FILE).read_text() == ""  # released
    with acquire_lock(tmp_path / "state"):  # released: free again
        pass


def test_release_is_idempotent(tmp_path: Path) -> None:
    lock = acquire_lock(tmp_path)
    lock.release()
    lock.release()
    assert (tmp_path / LOCK_FILE).read_text() == ""


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from oco.orchestrator._status import acquire_lock, AlreadyRunning
    try:
        lock = acquire_lock(sys.argv[1])
    except AlreadyRunning as exc:
        print("busy", exc.pid, flush=True)
        sys.exit(7)
    print("locked", flush=True)
    sys.stdin.readline()  # hold until the test closes stdin or kills us
    """
)


def _holder(directory: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_another_process_is_refused_while_we_hold_the_lock(tmp_path: Path) -> None:
    with acquire_lock(tmp_path):
        proc = _holder(tmp_path)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 7
    assert out.split() == ["busy", str(os.getpid())]


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(AlreadyRunning) as info:
            acquire_lock(tmp_path)
        assert info.value.pid == proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=30)
    with acquire_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"  # ours now


# --- the table --------------------------------------------------------------------------


def test_the_table_shows_one_aligned_row_per_worker_and_first_error_lines() -> None:
    table = format_status_table(_snapshot(), now=NOW)
    lines = table.splitlines()
    started = time.strftime("%b %d", time.localtime(NOW - 90_000))
    assert lines[0] == f"orchestrator: pid 1234, since {started}, 1d (updated 2s ago)"
    header, ready, parked = lines[1:4]
    assert header.split() == [
        "NAME",
        "STATE",
        "SINCE",
        "RESTARTS",
        "TURNS",
        "SESSIONS",
        "OPENCODE",
        "DIRECTORY",
    ]
    two_minutes_ago = time.strftime("%H:%M", time.localtime(NOW - 120))
    assert ready.split() == [
        "worker-1",
        "ready",
        f"{two_minutes_ago},",
        "2m",
        "0",
        "1",
        "2",
        "4242",
        "/srv/project1",
    ]
    assert parked.split()[:2] == ["worker-2", "parked"]
    assert parked.split()[-5:] == ["3", "0", "0", "-", "/srv/project2"]
    assert header.index("STATE") == ready.index("ready") == parked.index("parked")
    assert lines[4:] == ["worker-2: last error: the backend rejected the worker"]
    assert SECRET not in table


def test_the_table_says_when_there_are_no_workers() -> None:
    table = format_status_table(_snapshot(workers=[]), now=NOW)
    assert table.splitlines()[1:] == ["no workers"]
