"""What `status` shows: human times, 80 columns whatever the names, errors and paths, states this
version does not know, `--watch` frames (on a MockClock), and instance directories (one per
source, stale ones swept, live ones never)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import trio

from oco.commands._watch import CLEAR, watch
from oco.orchestrator._instance import (
    STALE_AFTER_S,
    claim_instance,
    find_instances,
    instance_name,
    sweep_stale,
)
from oco.orchestrator._status import (
    AlreadyRunning,
    StatusSnapshot,
    WorkerStatus,
    status_exit_code,
    write_status,
)
from oco.orchestrator._status_table import format_status_table, human_since, iso_time, worker_json
from oco.testing import oco_command, open_oco

NOW = time.mktime((2026, 12, 2, 14, 5, 0, 0, 0, -1))  # local 14:05


def row(name: str = "alpha", state: str = "ready", **changes: object) -> WorkerStatus:
    fields: dict = {
        "name": name,
        "machine_id": "m" * 21,
        "worker_id": "w" * 21,
        "directory": "/srv/p",
        "state": state,
        "since": NOW - 180,
    }
    fields.update(changes)
    return WorkerStatus(**fields)


def test_human_times_say_the_clock_time_and_how_long_ago() -> None:
    assert human_since(NOW - 180, NOW) == "14:02, 3m"
    assert human_since(NOW - 5, NOW) == "14:04, 5s"
    yesterday = NOW - 86400 - 60
    assert human_since(yesterday, NOW) == f"{time.strftime('%b %d', time.localtime(yesterday))}, 1d"
    assert iso_time(0) == "1970-01-01T00:00:00+00:00"


def test_the_table_fits_80_columns_with_long_names_errors_states_and_paths() -> None:
    workers = [
        row("a-very-long-worker-name-that-goes-on-and-on", last_error="E" * 500, turns_in_flight=12345),
        row("b", state="a-state-nobody-has-heard-of-yet", directory="/very/" + "deep/" * 40 + "project"),
        row("c", restarts=99999, opencode_pid=4194304, directory="/srv/" + "x" * 300),
    ]
    snapshot = StatusSnapshot(
        pid=4194304,
        started_at=NOW - 3600,
        updated_at=NOW - 1,
        workers=workers,
        mode="run",
        source="/home/someone/" + "nested/" * 30 + "workers.json",
    )
    table = format_status_table(snapshot, now=NOW)
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines), [len(line) for line in lines]
    assert lines[0].startswith("run …") and lines[0].endswith("/nested/workers.json")  # its own line
    assert lines[1] == "  pid 4194304, since 13:05, 1h (updated 1s ago)"
    assert lines[3].startswith("a-very-long-worker-…")
    assert "a-state-nob…" in lines[4]  # shown as it is (cut), never dropped
    assert "DIRECTORY" not in lines[2]  # no room left for it with cells this wide
    assert lines[6].startswith("a-very-long-worker-name-that-goes-on-and-on: last error: EEE")
    assert lines[6].endswith("…")


def test_a_short_source_shares_its_line_with_the_pid() -> None:
    snapshot = StatusSnapshot(
        pid=7, started_at=NOW - 180, updated_at=NOW, workers=[row()], mode="dev", source="/p/.env"
    )
    assert (
        format_status_table(snapshot, now=NOW).splitlines()[0]
        == "dev /p/.env: pid 7, since 14:02, 3m (updated 0s ago)"
    )


def test_a_long_directory_is_cut_on_the_left_so_its_end_stays() -> None:
    workers = [row("b", directory="/very/" + "deep/" * 40 + "project")]
    table = format_status_table(
        StatusSnapshot(pid=1, started_at=NOW, updated_at=NOW, workers=workers), now=NOW
    )
    line = table.splitlines()[2]
    assert len(line) == 80 and line.endswith("/deep/deep/project") and "…" in line


def test_narrow_tables_drop_the_directory_before_anything_else() -> None:
    table = format_status_table(
        StatusSnapshot(pid=1, started_at=NOW, updated_at=NOW, workers=[row()]), now=NOW, width=60
    )
    assert "DIRECTORY" not in table and all(len(line) <= 60 for line in table.splitlines())
    assert table.splitlines()[2].split()[:4] == ["alpha", "ready", "14:02,", "3m"]


def test_an_unknown_state_is_shown_and_counts_as_not_ready() -> None:
    snapshot = StatusSnapshot(
        pid=1, started_at=NOW, updated_at=NOW, workers=[row(), row("b", state="degraded")]
    )
    assert "degraded" in format_status_table(snapshot, now=NOW)
    assert status_exit_code(snapshot, alive=True) == 1


def test_worker_json_has_iso_times_the_key_and_every_field() -> None:
    data = worker_json(row(opencode_pid=7))
    assert data["since"] == iso_time(NOW - 180) and data["key"] == f"{'m' * 21}:{'w' * 21}"
    assert data["opencode_pid"] == 7 and "restarts" in data


def test_a_status_file_with_fields_this_version_does_not_know_still_reads(tmp_path: Path) -> None:
    import json

    from oco.orchestrator._status import read_status

    path = tmp_path / "status.json"
    write_status(path, StatusSnapshot(pid=1, started_at=NOW, updated_at=NOW, workers=[row()]))
    data = json.loads(path.read_text())
    data["new_top_level"] = True
    data["workers"][0]["opencode_server"] = "shared:1"  # what a newer writer may add
    path.write_text(json.dumps(data))
    snapshot = read_status(path)
    assert snapshot is not None and snapshot.workers[0].name == "alpha"


# -- --watch ------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_watch_redraws_every_interval_in_place_on_a_terminal(autojump_clock) -> None:
    frames: list[float] = []

    def render() -> str:
        frames.append(trio.current_time())
        return f"frame {len(frames)}"

    out = _Terminal()
    await watch(render, out, 2.0, count=3)
    assert frames == [0.0, 2.0, 4.0]
    text = out.getvalue()
    assert text.count(CLEAR) == 3 and text.index(CLEAR) == 0
    assert text.rstrip().endswith("frame 3")


async def test_watch_prints_blocks_when_not_a_terminal_and_runs_until_cancelled(autojump_clock) -> None:
    out = io.StringIO()
    with trio.move_on_after(5.5):
        await watch(lambda: "body", out, 1.0)
    text = out.getvalue()
    assert CLEAR not in text and "\x1b" not in text
    assert text.count("Ctrl+C to quit") == 6 and text.count("\nbody\n") == 6  # frames at 0, 1, ... 5 s
    assert "body\n\ntrio-oco status --watch" in text  # a blank line between blocks


async def test_status_watch_in_a_child_ends_with_exit_0_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    async with open_oco("status", "--watch", "--interval", "60", env=env) as child:
        await child.wait_for("no orchestrator is running", timeout=30)
        child.process.send_signal(signal.SIGINT)
        assert await child.wait(30) == 0
    assert "Traceback" not in child.text and "trio-oco status --watch" in child.text


# -- instance directories --------------------------------------------------------------


def test_each_source_has_its_own_instance_and_the_same_source_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = claim_instance(state, "run", tmp_path / "a.json")
    other = claim_instance(state, "run", tmp_path / "b.json")
    dev = claim_instance(state, "dev", tmp_path / "a.json")  # another mode: another instance
    try:
        with pytest.raises(AlreadyRunning) as caught:
            claim_instance(state, "run", tmp_path / "sub" / ".." / "a.json")  # the same file
        assert caught.value.pid == os.getpid() and caught.value.exit_code == 2
        found = find_instances(state)
        assert [(f.mode, f.alive) for f in found] == [("run", True), ("run", True), ("dev", True)]
        assert {f.name for f in found} == {first.directory.name, other.directory.name, dev.directory.name}
    finally:
        for instance in (first, other, dev):
            instance.release()
    assert not any(f.alive for f in find_instances(state))
    assert instance_name("run", tmp_path / "a.json") == first.directory.name


def test_stale_instances_are_swept_live_and_recent_ones_never(tmp_path: Path) -> None:
    state = tmp_path / "state"
    live = claim_instance(state, "run", tmp_path / "live.json")
    old_dead = claim_instance(state, "run", tmp_path / "old.json")
    recent_dead = claim_instance(state, "dev", tmp_path / ".env")
    old_dead.release()
    recent_dead.release()
    long_ago = time.time() - STALE_AFTER_S - 60
    for directory in (live.directory, old_dead.directory):  # the live one looks old too
        for path in [directory, *directory.iterdir()]:
            os.utime(path, (long_ago, long_ago))
    try:
        removed = sweep_stale(state / "instances", keep="none")
        assert removed == [old_dead.directory.name]
        assert live.directory.is_dir() and recent_dead.directory.is_dir() and not old_dead.directory.exists()
        assert not any(p.name.startswith(".removing") for p in (state / "instances").iterdir())
    finally:
        live.release()


def test_status_into_a_pipe_that_closes_early_ends_quietly(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    with subprocess.Popen(
        oco_command("status", "--watch", "--interval", "0.01"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        assert child.stdout.readline().startswith(b"trio-oco status --watch")
        child.stdout.close()  # `| head -1`
        errors = child.stderr.read().decode()
        assert child.wait(timeout=30) == 0
    assert "Traceback" not in errors and "BrokenPipe" not in errors
