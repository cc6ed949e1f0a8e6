"""A state directory that cannot be written costs context, never a message (issue 13).

A read-only or full state directory used to crash the worker at every turn (the state file's
write raised out of the relay), a restart loop in which the message got neither an answer nor
an error. Tests run as root, where chmod is not enforced, so the failures here are real ones
the kernel gives root too: a state directory whose path runs through a regular file (ENOTDIR),
a state file that is a directory (EISDIR), and a full file system (ENOSPC: a 64 KiB tmpfs in
a private mount namespace of a child process, filled up; `/dev/full` cannot stand in for it,
since the state file is written to a fresh temp file made with O_EXCL beside it and renamed,
so no symlink to /dev/full can be planted on its path).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oco.testing import running_worker
from oco.worker import NO_MODEL_NOTE, State
from oco.worker._session_map import SessionLink, SessionMap

SRC = Path(__file__).resolve().parents[2] / "src"


def _warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "oco.worker._session_map" and r.levelno >= logging.WARNING]


def test_a_state_directory_under_a_regular_file_costs_only_context(tmp_path, caplog):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the state directory should be")
    path = blocker / "state" / "w.json"
    caplog.set_level(logging.DEBUG, logger="oco.worker._session_map")
    links = SessionMap(path)
    links.set("chat1", SessionLink("ses_1", "Title"))
    assert links.begin_reply("reply1").rerun is False
    links.reserve("reply1", 250)
    links.end_reply("reply1")
    assert links.get("chat1") == SessionLink("ses_1", "Title")  # kept in memory
    warnings = _warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert str(path) in warnings[0].getMessage() and "Not a directory" in warnings[0].getMessage()
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 4  # each failed write


def test_a_state_file_that_became_writable_again_is_saved_and_a_new_failure_warns_again(tmp_path, caplog):
    path = tmp_path / "w.json"
    path.mkdir()  # reading it, or os.replace onto it: EISDIR
    caplog.set_level(logging.DEBUG, logger="oco.worker._session_map")
    links = SessionMap(path)
    links.set("chat1", SessionLink("ses_1"))
    assert len(_warnings(caplog)) == 1
    path.rmdir()
    links.set("chat2", SessionLink("ses_2"))
    assert json.loads(path.read_text())["sessions"]["chat2"]["opencode"] == "ses_2"
    path.unlink()
    path.mkdir()
    links.set("chat3", SessionLink("ses_3"))
    assert len(_warnings(caplog)) == 2


async def test_a_worker_with_an_unwritable_state_directory_still_answers_every_message(
    fake, new_worker, tmp_path, caplog
):
    # Real time: the turn's (failing) OpenCode start goes through a thread.
    (tmp_path / "state").write_text("not a directory")  # make_worker puts its state here
    created = fake.create_worker()
    async with running_worker(new_worker(created)) as worker:
        chat = fake.start_session(created.worker_id)
        answered = fake.send_message(chat, "hello")  # begins a reply: writes the state file
        answer = await fake.wait_reply(answered, timeout=30)
        closed = fake.send_message(chat, "no model", model="")
        note = await fake.wait_reply(closed, timeout=30)
        assert worker.state.value is State.READY  # no crash, no restart
    assert answer.content.startswith("Error: OpenCode failed to start")
    assert note.content == NO_MODEL_NOTE
    assert len(_warnings(caplog)) == 1


_FULL_DISK_CHILD = textwrap.dedent(
    """
    import json, logging, os, sys
    from pathlib import Path
    import trio
    from oco.testing import FakeConvex, in_process_convex, make_worker, running_worker, trio_ms

    root = Path(sys.argv[1])
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("oco.worker._session_map").addHandler(handler)
    logging.getLogger("oco.worker._session_map").setLevel(logging.DEBUG)
    (root / "state" / "workers").mkdir(parents=True)
    try:  # fill the file system
        with open(root / "filler", "wb") as filler:
            while True:
                filler.write(b"x" * 4096)
                filler.flush()
    except OSError as exc:
        assert exc.errno == 28, exc  # ENOSPC

    async def main():
        fake = FakeConvex()
        created = fake.create_worker()
        async with in_process_convex(fake) as convex:
            worker = make_worker(created, convex, root, convex_transport="poll", now_ms=trio_ms)
            async with running_worker(worker):
                chat = fake.start_session(created.worker_id)
                reply = await fake.wait_reply(fake.send_message(chat, "hello"), timeout=30)
        return reply.content

    content = trio.run(main)
    print(json.dumps({
        "content": content,
        "warnings": [r.getMessage() for r in records if r.levelno >= logging.WARNING],
    }))
    """
)


def test_a_full_state_file_system_costs_only_context(tmp_path):
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs unshare and mount")
    mountpoint = tmp_path / "full"
    mountpoint.mkdir()
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{mountpoint}'"],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace: {probe.stderr.decode()[:200]}")
    script = tmp_path / "child.py"
    script.write_text(_FULL_DISK_CHILD)
    command = f"mount -t tmpfs -o size=64k tmpfs '{mountpoint}' && exec '{sys.executable}' '{script}' '{mountpoint}'"
    child = subprocess.run(
        ["unshare", "-m", "sh", "-c", command],
        capture_output=True,
        timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert child.returncode == 0, child.stderr.decode()[-3000:]
    result = json.loads(child.stdout.decode().strip().splitlines()[-1])
    assert result["content"].startswith("Error: OpenCode failed to start")
    assert len(result["warnings"]) == 1, result["warnings"]
    assert "No space left on device" in result["warnings"][0]
    assert not any(mountpoint.iterdir())  # the tmpfs lived only in the child's namespace
