"""`trio-oco run`, `start` and `status` as a user runs them: subprocess, exit code, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from oco.config import Token, WorkerConfig
from oco.orchestrator import StatusSnapshot, WorkerStatus
from oco.orchestrator._instance import claim_instance
from oco.orchestrator._status import write_status
from oco.testing import NO_OPENCODE, run_oco
from real_opencode import OPENCODE

SECRET = "cmd-secret-1a2b3c4d5e"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / "proj").mkdir(parents=True)
    return tmp_path / "home"


def state_dir(home: Path) -> Path:
    return home / "state" / "opencode-orchestrator"


def oco(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCO_", "XDG_", "NOTIFY_", "WATCHDOG_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "xdg"),
        XDG_STATE_HOME=str(home / "state"),
        OCO_OPENCODE_BIN=OPENCODE or NO_OPENCODE,
    )
    done = run_oco(*args, env=env, cwd=home)
    assert SECRET not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done


def write_workers(home: Path, *, enabled: bool = True) -> Path:
    path = home / "xdg" / "opencode-orchestrator" / "workers.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "token": f"machine_m1:worker_w1:secret_{SECRET}",
        "working_directory": str(home / "proj"),
        "convex_url": "http://127.0.0.1:9",
        "enabled": enabled,
    }
    path.write_text(json.dumps({"workers": [entry]}))
    return path


def test_status_without_an_orchestrator_exits_3(home: Path) -> None:
    done = oco(home, "status")
    assert done.returncode == 3
    assert "no orchestrator is running" in done.stdout
    done = oco(home, "status", "--json")
    assert done.returncode == 3
    assert json.loads(done.stdout) == {"version": 2, "running": False, "orchestrators": []}


def test_status_shows_the_running_orchestrators_table_and_json(home: Path) -> None:
    config = WorkerConfig(Token("m1", "w1", SECRET), "https://x.convex.cloud", home / "proj", "alpha")
    now = time.time()
    workers_file = write_workers(home)
    # This test process plays the orchestrator: alive, and holding its instance's lock.
    instance = claim_instance(state_dir(home), "run", workers_file)
    snapshot = StatusSnapshot(
        pid=os.getpid(),
        started_at=now - 60,
        updated_at=now,
        workers=[WorkerStatus.for_config(config, state="parked", since=now - 5, last_error="rejected")],
        mode="run",
        source=str(workers_file),
    )
    write_status(instance.directory / "status.json", snapshot)
    try:
        table = oco(home, "status")
        assert table.returncode == 1  # a worker is not ready
        assert "alpha" in table.stdout and "parked" in table.stdout and "last error: rejected" in table.stdout
        first, second = table.stdout.splitlines()[:2]  # a long source gets a line of its own
        assert first.startswith("run …") and first.endswith("/opencode-orchestrator/workers.json")
        assert second.startswith(f"  pid {os.getpid()}, since ")
        assert all(len(line) <= 80 for line in table.stdout.splitlines())
        as_json = oco(home, "status", "--json")
        data = json.loads(as_json.stdout)
        assert as_json.returncode == 1 and data["running"] is True and data["version"] == 2
        (entry,) = data["orchestrators"]
        assert entry["mode"] == "run" and entry["source"] == str(workers_file) and entry["pid"] == os.getpid()
        assert entry["workers"][0]["state"] == "parked"
        assert entry["workers"][0]["since"].endswith("+00:00")  # ISO 8601
    finally:
        instance.release()
    # Lock released (the orchestrator is gone although this pid lives on): not running.
    after = oco(home, "status")
    assert after.returncode == 3 and "has stopped" in after.stdout


def test_start_with_nothing_to_start_explains_both_modes(home: Path) -> None:
    done = oco(home, "start")
    assert done.returncode == 2
    assert "trio-oco init" in done.stderr and ".env" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_start_prefers_the_workers_file_then_dotenv(home: Path) -> None:
    (home / ".env").write_text("CONVEX_URL=http://127.0.0.1:9\n")  # no WORKER_TOKEN: dev refuses
    via_dev = oco(home, "start")
    assert via_dev.returncode == 2 and "WORKER_TOKEN" in via_dev.stderr
    write_workers(home, enabled=False)
    via_run = oco(home, "start")
    assert via_run.returncode == 2 and "no enabled worker" in via_run.stderr


def test_run_refuses_a_second_orchestrator_of_the_same_workers_file_before_starting(home: Path) -> None:
    workers_file = write_workers(home)
    instance = claim_instance(state_dir(home), "run", workers_file)
    try:
        done = oco(home, "run")
    finally:
        instance.release()
    assert done.returncode == 2
    assert f"trio-oco run of {workers_file} is already running (pid {os.getpid()})" in done.stderr
    assert "starting" not in done.stderr  # refused before it said it starts anything
    assert len(done.stderr.strip().splitlines()) == 1


def test_run_rejects_a_bad_shutdown_timeout(home: Path) -> None:
    write_workers(home)
    done = oco(home, "run", "--shutdown-timeout", "0")
    assert done.returncode == 2 and "--shutdown-timeout" in done.stderr
