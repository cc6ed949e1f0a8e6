"""An OpenCode left running by a killed previous run is stopped when the worker starts again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from oco.worker._opencode_host import _sweep_orphan


def _spawn(directory: Path) -> subprocess.Popen:
    # Looks like `opencode serve` to the sweep: its own process group, "serve" in its arguments.
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "serve"],
        cwd=directory,
        start_new_session=True,
    )


def test_a_leftover_server_in_this_directory_is_killed(tmp_path):
    process = _spawn(tmp_path)
    pid_file = tmp_path / "w.opencode.pid"
    pid_file.write_text(f"{process.pid}\n")
    try:
        _sweep_orphan(pid_file, tmp_path)
        assert process.wait(timeout=10) == -9
        assert not pid_file.exists()
    finally:
        process.kill()
        process.wait()


def test_a_pid_now_used_by_something_else_is_left_alone(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    process = _spawn(elsewhere)
    pid_file = tmp_path / "w.opencode.pid"
    pid_file.write_text(f"{process.pid}\n")
    try:
        _sweep_orphan(pid_file, tmp_path)
        assert process.poll() is None
        assert not pid_file.exists()
    finally:
        process.kill()
        process.wait()
