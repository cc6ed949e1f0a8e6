"""The stale-pid sweep stops only an OpenCode a killed previous run left, never anything else.

Pids are reused and a command line proves nothing: a user's `python3 -m http.server` in the
worker's directory once looked like `opencode serve` to the sweep and was SIGKILLed. These
tests put such a process under the pid file, in the old format and with a wrong identity, and
leave a real opencode behind a SIGKILLed worker process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import attrs
import pytest

from oco.opencode import ProcessIdentity, encode_identity
from oco.opencode._identity import INSTANCE_VARIABLE, Observed, identify, same_process
from oco.testing import opencode_env
from oco.worker._opencode_host import _sweep_orphan
from real_opencode import OPENCODE, needs_opencode


def _user_server(directory: Path, **env: str) -> subprocess.Popen:
    """A user's own server in the worker's directory: its own group, "serve"-ish argv."""
    return subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=directory,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )


def _sweep_leaves_alone(tmp_path: Path, text_for) -> None:
    process = _user_server(tmp_path, **{INSTANCE_VARIABLE: "its-own-marker"})
    pid_file = tmp_path / "w.opencode.pid"
    try:
        pid_file.write_text(text_for(process.pid))
        _sweep_orphan(pid_file)
        assert process.poll() is None, "the sweep killed a process that is not ours"
        assert not pid_file.exists()
    finally:
        process.kill()
        process.wait()


def test_an_old_bare_pid_file_never_gets_a_process_killed(tmp_path):
    _sweep_leaves_alone(tmp_path, lambda pid: f"{pid}\n")


@pytest.mark.parametrize("wrong", ["start_time", "instance", "executable"])
def test_a_pid_whose_identity_differs_in_any_trait_is_left_alone(tmp_path, wrong):
    def record(pid: int) -> str:
        real = identify(pid, "its-own-marker")
        assert real is not None
        fields = {
            "pid": pid,
            "start_time": real.start_time + (1 if wrong == "start_time" else 0),
            "executable": "/usr/bin/opencode" if wrong == "executable" else real.executable,
            "instance": "another-marker" if wrong == "instance" else real.instance,
        }
        return encode_identity(ProcessIdentity(**fields))

    _sweep_leaves_alone(tmp_path, record)


def test_junk_in_the_pid_file_is_ignored(tmp_path):
    _sweep_leaves_alone(tmp_path, lambda pid: json.dumps({"pid": pid, "start_time": "x"}))


def test_a_process_that_no_longer_leads_its_group_is_not_ours():
    recorded = ProcessIdentity(pid=4321, start_time=99, executable="/bin/opencode", instance="m")
    assert same_process(recorded, Observed(99, "/bin/opencode", "m", process_group=4321))
    assert not same_process(recorded, Observed(99, "/bin/opencode", "m", process_group=1))
    assert not same_process(recorded, None)
    assert not same_process(attrs.evolve(recorded, instance=""), Observed(99, "/bin/opencode", "", 4321))


def test_a_missing_pid_file_is_nothing_to_do(tmp_path):
    _sweep_orphan(tmp_path / "missing" / "w.opencode.pid")


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


@pytest.mark.opencode
@needs_opencode
def test_a_real_opencode_left_by_a_killed_worker_is_stopped(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    pid_file = tmp_path / "state" / "w.opencode.pid"
    # A worker process that starts OpenCode through its host, says so, and is then SIGKILLed.
    script = textwrap.dedent(
        f"""
        import sys, trio
        from pathlib import Path
        from oco.testing import opencode_env
        from oco.worker._opencode_host import OpenCodeHost

        async def main():
            env = opencode_env(Path({str(tmp_path / "home")!r}), "http://127.0.0.1:9/v1")
            host = OpenCodeHost({OPENCODE!r}, Path({str(project)!r}), env=env, start_timeout=60,
                                idle_timeout=600, pid_file=Path({str(pid_file)!r}))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(host.run)
                async with host.lease() as server:
                    print(server.pid, flush=True)
                    await trio.sleep_forever()

        trio.run(main)
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    opencode_pid = None
    try:
        line = worker.stdout.readline()
        assert line.strip().isdigit(), f"the worker did not start OpenCode: {line!r}"
        opencode_pid = int(line)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert not _gone(opencode_pid), "OpenCode should outlive its SIGKILLed parent"
        assert json.loads(pid_file.read_text())["pid"] == opencode_pid

        _sweep_orphan(pid_file)
        deadline = time.monotonic() + 5  # SIGKILL takes effect asynchronously
        while not _gone(opencode_pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling /proc for the death, under a deadline
        assert _gone(opencode_pid)
        assert not pid_file.exists()
    finally:
        worker.kill()
        worker.wait()
        if opencode_pid is not None and not _gone(opencode_pid):
            os.killpg(opencode_pid, signal.SIGKILL)


@pytest.mark.opencode
@needs_opencode
async def test_a_pid_file_that_cannot_be_written_costs_the_sweep_not_the_server(tmp_path, caplog):
    import trio

    from oco.worker._opencode_host import OpenCodeHost

    project = tmp_path / "project"
    project.mkdir()
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")  # every write fails
    host = OpenCodeHost(
        OPENCODE,
        project,
        env=opencode_env(tmp_path / "home", "http://127.0.0.1:9/v1"),
        start_timeout=60,
        idle_timeout=600,
        pid_file=blocker / "workers" / "w.opencode.pid",
    )
    with caplog.at_level("WARNING", "oco.worker._opencode_host"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(host.run)
            with trio.fail_after(60):
                async with host.lease() as server:
                    first = server.pid
                    assert (await server.client.health())["healthy"] is True
                os.killpg(first, signal.SIGKILL)  # a second start writes the pid file again
                await server.crashed.wait()
                async with host.lease() as server:
                    assert server.pid != first
            nursery.cancel_scope.cancel()
    warnings = [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(warnings) == 1, warnings
