"""`opencode models` runs in its own process group, bounded, and never holds up a server start.

A fake `opencode` script that spawns a child and hangs (or floods its output) plays the
misbehaving listing; the real opencode plays the server that must not wait for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import trio
import trio.testing

from oco.opencode import OpenCodeError, list_models_cli, open_opencode_server
from oco.opencode._binary import LISTING_NICE
from oco.opencode._startup import GATE_PATIENCE_S
from oco.testing import opencode_env
from real_opencode import opencode_bin


def _alive(pid: int) -> bool:
    """Running (a killed process is a zombie until init reaps it: that counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def _gone(pid: int) -> bool:
    """True once `pid` has died: SIGKILL takes effect asynchronously, so wait a little."""
    with trio.move_on_after(5):
        while _alive(pid):
            await trio.sleep(0.02)  # polling /proc under a deadline
    return not _alive(pid)


def _fake_opencode(tmp_path: Path, body: str) -> tuple[str, Path]:
    """A script standing in for `opencode`; it writes the pid of a child it spawns."""
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "fake-opencode"
    script.write_text(
        f"#!/bin/sh\nsleep 300 &\necho $! > {pid_file}.tmp\nmv {pid_file}.tmp {pid_file}\n{body}\n"
    )
    script.chmod(0o700)
    return str(script), pid_file


async def _child_pid(pid_file: Path) -> int:
    with trio.fail_after(10):
        while not pid_file.exists():
            await trio.sleep(0.02)  # polling the file the script writes, under a deadline
    return int(pid_file.read_text())


async def test_a_hung_listing_is_killed_with_its_children_at_the_deadline(tmp_path):
    bin, pid_file = _fake_opencode(tmp_path, "exec sleep 300")
    with trio.fail_after(20):
        with pytest.raises(OpenCodeError) as info:
            await list_models_cli(
                bin, tmp_path, opencode_env(tmp_path / "home", "http://127.0.0.1:9/v1"), timeout=1
            )
    assert "gave no answer within 1 s" in str(info.value)
    assert await _gone(await _child_pid(pid_file))


async def test_a_cancelled_listing_leaves_no_child_behind(tmp_path):
    bin, pid_file = _fake_opencode(tmp_path, "exec sleep 300")
    env = opencode_env(tmp_path / "home", "http://127.0.0.1:9/v1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(list_models_cli, bin, tmp_path, env, 60.0)
        child = await _child_pid(pid_file)
        assert _alive(child)
        nursery.cancel_scope.cancel()
    assert await _gone(child)


async def test_a_listing_that_exits_takes_what_it_left_running_with_it(tmp_path):
    bin, pid_file = _fake_opencode(tmp_path, "echo fake/model-a\nexit 0")
    models = await list_models_cli(
        bin, tmp_path, opencode_env(tmp_path / "home", "http://127.0.0.1:9/v1"), timeout=20
    )
    assert [m.id for m in models] == ["fake/model-a"]
    assert await _gone(await _child_pid(pid_file))


async def test_a_listing_that_floods_its_output_is_stopped_at_the_bound(tmp_path):
    bin, pid_file = _fake_opencode(tmp_path, "exec yes fake/model")
    with trio.fail_after(20):
        with pytest.raises(OpenCodeError) as info:
            await list_models_cli(
                bin,
                tmp_path,
                opencode_env(tmp_path / "home", "http://127.0.0.1:9/v1"),
                timeout=15,
                max_output=1024 * 1024,
            )
    assert "printed more than 1 MiB; stopped it" in str(info.value)
    assert await _gone(await _child_pid(pid_file))


@pytest.mark.opencode
async def test_a_hung_listing_does_not_hold_up_a_server_start(tmp_path):
    opencode = opencode_bin()
    hung, _ = _fake_opencode(tmp_path, "exec sleep 300")
    project = tmp_path / "project"
    project.mkdir()
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(project)], check=True)
    env = opencode_env(tmp_path / "home", "http://127.0.0.1:9/v1")  # a fresh home

    async def start_server() -> float:
        began = trio.current_time()
        async with open_opencode_server(opencode, project, env=env, start_timeout=30):
            return trio.current_time() - began

    async with trio.open_nursery() as nursery:
        # Fresh home: the listing goes first and hangs; the server waits at most the gate's
        # patience for it, not the listing's 120 s timeout.
        nursery.start_soon(list_models_cli, hung, project, env, 120.0)
        await trio.testing.wait_all_tasks_blocked()
        took = await start_server()
        assert took < GATE_PATIENCE_S + 20
        # Now the home is migrated: a second hung listing does not delay a start at all.
        nursery.start_soon(list_models_cli, hung, project, env, 120.0)
        await trio.testing.wait_all_tasks_blocked()
        took = await start_server()
        assert took < GATE_PATIENCE_S
        nursery.cancel_scope.cancel()


async def test_a_listing_runs_below_our_priority_and_so_does_what_it_starts(tmp_path):
    # A connect re-lists the models while the chat's first turn runs: the listing (an OpenCode
    # start's worth of CPU) must not take the cores from the turn. The stand-in prints its own
    # nice value and a child's (started after it was lowered) as model ids.
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    script = tmp_path / "fake-opencode"
    script.write_text(
        "#!/bin/sh\n"
        "nice_of() { cut -d' ' -f19 /proc/$1/stat; }\n"
        # The priority is lowered just after the start: wait for it (bounded; unchanged prints it).
        f'i=0; while [ "$(nice_of $$)" = "{ours}" ] && [ $i -lt 500 ]; do i=$((i+1)); sleep 0.01; done\n'
        'echo "self/$(nice_of $$)"\n'
        'sh -c \'echo "child/$(cut -d" " -f19 /proc/$$/stat)"\'\n'
    )
    script.chmod(0o700)
    with trio.fail_after(20):
        models = await list_models_cli(str(script), tmp_path, opencode_env(tmp_path / "home", "http://x"))
    expected = min(19, ours + LISTING_NICE)
    assert sorted(m.id for m in models) == [f"child/{expected}", f"self/{expected}"]
