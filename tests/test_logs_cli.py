"""`trio-oco run` and `trio-oco logs` as a user runs them (subprocesses against the served fake
Convex), with an "opencode" that exits at once: the worker is degraded, its story is in its
own log file, the journal gets priorities, a terminal gets colours unless NO_COLOR, and a
read-only log directory costs only the files."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import trio

from oco.testing import oco_command, open_oco, run_oco, serve_fake_convex
from terminal import on_terminal

pytestmark = pytest.mark.slow

WORKERS = ("alpha", "beta")


def _failing_opencode(tmp_path: Path) -> Path:
    script = tmp_path / "bin" / "opencode"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho 'opencode: cannot start here' >&2\nexit 1\n")
    script.chmod(0o755)
    return script


def _environment(tmp_path: Path, opencode: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OCO_", "XDG_", "NO_COLOR", "FORCE_COLOR"))
    }
    env.pop("JOURNAL_STREAM", None)
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        OCO_OPENCODE_BIN=str(opencode),
    )
    return env


def _workers_file(tmp_path: Path, convex, names=WORKERS) -> tuple[Path, dict[str, object]]:
    created = {name: convex.fake.create_worker(name=name) for name in names}
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    entries = [
        {"name": name, "token": c.token, "working_directory": str(project), "convex_url": convex.url}
        for name, c in created.items()
    ]
    path = tmp_path / "workers.json"
    # Each worker its own OpenCode: one degraded worker beside a ready one (a shared server that
    # cannot start degrades all its workers: tests/orchestrator/test_shared_opencode_shares.py).
    settings = {"opencode_start_timeout_s": 10, "opencode_server": "per-worker"}
    path.write_text(json.dumps({"workers": entries, "settings": settings}))
    return path, created


def _logs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_oco("logs", *args, env=env, timeout=30)


async def _status(env: dict[str, str]) -> tuple[int, dict]:
    done = await trio.run_process(oco_command("status", "--json"), env=env, capture_stdout=True, check=False)
    return done.returncode, json.loads(done.stdout)


async def test_a_degraded_worker_tells_its_story_in_its_own_log_file(tmp_path) -> None:
    env = _environment(tmp_path, _failing_opencode(tmp_path))
    async with serve_fake_convex() as convex:
        fake = convex.fake
        path, created = _workers_file(tmp_path, convex)
        async with open_oco("run", "--config", str(path), env=env) as running:
            await fake.wait_for(
                lambda: all((fake.worker(c.worker_id).connected_at or 0) > 0 for c in created.values()), 30
            )
            code, status = await _status(env)
            assert code == 0, status  # both ready: neither has tried to start OpenCode yet

            chat = fake.start_session(created["alpha"].worker_id)
            reply = await fake.wait_reply(fake.send_message(chat, "hello"), timeout=30)
            assert reply.content.startswith("Error: OpenCode failed to start")
            code, status = await _status(env)
            (orchestrator,) = status["orchestrators"]  # status --json lists every orchestrator
            rows = {w["name"]: w for w in orchestrator["workers"]}
            assert code == 1, status  # was 0 with alpha "ready" while every answer is an error
            assert rows["alpha"]["state"] == "degraded"
            assert rows["alpha"]["last_error"].startswith("OpenCode failed to start: opencode did not start")
            assert rows["beta"]["state"] == "ready"

            alpha = _logs(env, "alpha", "-n", "5")
            assert alpha.returncode == 0, alpha.stderr
            lines = alpha.stdout.splitlines()
            assert len(lines) == 5, alpha.stdout
            text = alpha.stdout
            assert "ERROR OpenCode failed to start" in text
            assert "answered with an error in" in text
            everything = _logs(env, "alpha", "-n", "100").stdout
            assert "starting -> registering" in everything and "message picked up in chat" in everything
            assert "[beta]" not in everything and "beta" not in everything  # beta's lines are beta's

            merged = _logs(env)
            assert merged.returncode == 0
            prefixes = {line.split(" |", 1)[0].strip() for line in merged.stdout.splitlines()}
            assert prefixes <= {"alpha", "beta", "oco"} and {"alpha", "beta"} <= prefixes, merged.stdout
            stamps = [line.split("| ", 1)[1][:24] for line in merged.stdout.splitlines()]
            assert stamps == sorted(stamps)  # merged in time order

            unknown = _logs(env, "gamma")
            assert unknown.returncode == 2
            assert unknown.stderr.strip().count("\n") == 0
            assert "(known: alpha, beta" in unknown.stderr
            by_id = _logs(env, created["beta"].worker_id, "-n", "3")
            assert by_id.returncode == 0 and len(by_id.stdout.splitlines()) == 3

            # -f sees what is written after it started, and Ctrl+C ends it with exit 0.
            async with open_oco("logs", "alpha", "-f", "-n", "1", env=env) as follow:
                first = await follow.first_line()  # printed: it follows from here on
                assert "picked up" not in first
                second = fake.send_message(chat, "again")
                await fake.wait_reply(second, timeout=30)
                await follow.wait_for("message picked up in chat", timeout=30)
                await follow.wait_for("answered with an error in", timeout=30)
                assert "beta" not in follow.text
                follow.process.send_signal(signal.SIGINT)
                assert await follow.wait(timeout=10) == 0
                assert "Traceback" not in follow.text
            running.process.send_signal(signal.SIGTERM)
            assert await running.wait(timeout=30) == 0

    logs = tmp_path / "state" / "opencode-orchestrator" / "logs"
    assert oct(logs.stat().st_mode & 0o777) == "0o700"
    for file in logs.iterdir():
        assert oct(file.stat().st_mode & 0o777) == "0o600", file
    for c in created.values():
        assert c.secret not in "".join(f.read_text() for f in logs.iterdir())
    index = json.loads((logs / "index.json").read_text())["workers"]
    assert index == {created["alpha"].worker_id: "alpha", created["beta"].worker_id: "beta"}


async def test_under_systemd_lines_carry_syslog_priorities_and_no_timestamp(tmp_path) -> None:
    env = _environment(tmp_path, _failing_opencode(tmp_path))
    async with serve_fake_convex() as convex:
        fake = convex.fake
        path, created = _workers_file(tmp_path, convex, names=("alpha",))
        stderr_path = tmp_path / "journal.txt"
        with open(stderr_path, "wb") as journal:  # noqa: ASYNC230 - a local file, opened once
            stat = os.fstat(journal.fileno())
            env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}"
            env["FORCE_COLOR"] = "1"  # the journal wins: never colours there
            process = await trio.lowlevel.open_process(
                oco_command("run", "--config", str(path)), env=env, stdout=journal, stderr=journal
            )
            try:
                worker = created["alpha"].worker_id
                await fake.wait_for(lambda: (fake.worker(worker).connected_at or 0) > 0, 30)
                chat = fake.start_session(worker)
                await fake.wait_reply(fake.send_message(chat, "hello"), timeout=30)
                # The outcome line follows the completion's answer: wait until it is written.
                async with open_oco("logs", "alpha", "-f", "-n", "50", env=env) as follow:
                    await follow.wait_for("answered with an error", timeout=30)
                process.send_signal(signal.SIGTERM)
                with trio.fail_after(30):
                    assert await process.wait() == 0
            finally:
                if process.returncode is None:
                    process.kill()
    lines = stderr_path.read_text().splitlines()
    assert lines and all(re.match(r"^<[2-7]>", line) for line in lines), lines
    assert not any(re.match(r"^<\d>\d{4}-", line) for line in lines)  # the journal keeps the time
    assert any(line.startswith("<3>ERROR [alpha] OpenCode failed to start") for line in lines), lines
    assert any(line.startswith("<6>INFO [alpha] starting -> registering") for line in lines)
    assert any(line.startswith("<4>WARNING [alpha]") and "answered with an error" in line for line in lines)
    assert "\x1b" not in stderr_path.read_text()


def _logged_warning(tmp_path: Path, env: dict[str, str], *, tty: bool) -> str:
    """Stderr of a `run` that logs one WARNING (a skipped entry) and exits 2, on a pty or a pipe."""
    path = tmp_path / "bad.json"
    (tmp_path / "project").mkdir(exist_ok=True)
    disabled = {
        "token": "machine_m1:worker_w1:secret_s1",
        "working_directory": str(tmp_path / "project"),
        "convex_url": "http://127.0.0.1:9",
        "enabled": False,
    }
    path.write_text(json.dumps({"workers": [{"name": "x", "token": "nope"}, disabled]}))
    if not tty:
        return run_oco("run", "--config", str(path), env=env).stderr
    code, shown = on_terminal("run", "--config", str(path), env=env, only="stderr")
    assert code == 2, shown
    return shown


def test_colours_on_a_terminal_unless_no_color_and_never_in_a_pipe(tmp_path) -> None:
    env = _environment(tmp_path, _failing_opencode(tmp_path))
    coloured = _logged_warning(tmp_path, env, tty=True)
    assert "\x1b[33mWARNING\x1b[0m" in coloured, coloured
    assert "\x1b" not in _logged_warning(tmp_path, {**env, "NO_COLOR": "1"}, tty=True)
    piped = _logged_warning(tmp_path, env, tty=False)
    assert "WARNING" in piped and "\x1b" not in piped
    forced = _logged_warning(tmp_path, {**env, "FORCE_COLOR": "1"}, tty=False)
    assert "\x1b[33mWARNING" in forced
    assert "\x1b" not in _logged_warning(tmp_path, {**env, "FORCE_COLOR": "1", "NO_COLOR": "1"}, tty=False)


def test_a_read_only_log_directory_keeps_the_worker_answering(tmp_path) -> None:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs unshare and mount")
    logs = tmp_path / "state" / "opencode-orchestrator" / "logs"
    logs.mkdir(parents=True, mode=0o700)
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind '{logs}' '{logs}' && mount -o remount,bind,ro '{logs}'"],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount: {probe.stderr.decode()[:200]}")
    script = tmp_path / "child.py"
    script.write_text(_READ_ONLY_CHILD)
    env = _environment(tmp_path, _failing_opencode(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH")])
    )
    command = [*oco_command()[:1], str(script), str(tmp_path), str(logs)]
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f"mount --bind '{logs}' '{logs}' && mount -o remount,bind,ro '{logs}' && exec \"$@\"",
            "sh",
            *command,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["answers"] == ["Error: OpenCode failed to start"] * 2, result
    warnings = [line for line in done.stderr.splitlines() if "cannot write the log files" in line]
    assert len(warnings) == 1, done.stderr
    assert "Read-only file system" in warnings[0] and "logging to stderr only" in warnings[0]
    assert "Traceback" not in done.stderr and "Logging error" not in done.stderr
    assert "answered with an error" in done.stderr  # the lines still reach stderr
    assert list(logs.iterdir()) == []


_READ_ONLY_CHILD = """
import json, os, signal, subprocess, sys
from pathlib import Path
import trio
from oco.testing import oco_command, open_oco, serve_fake_convex

root, logs = Path(sys.argv[1]), Path(sys.argv[2])
probe = logs / "probe"
try:
    probe.write_text("x")
    raise SystemExit("the log directory is writable")
except OSError as exc:
    assert exc.errno == 30, exc  # EROFS, also for root

async def main():
    async with serve_fake_convex() as convex:
        fake = convex.fake
        created = fake.create_worker(name="alpha")
        (root / "project").mkdir(exist_ok=True)
        path = root / "workers.json"
        entry = {"name": "alpha", "token": created.token, "working_directory": str(root / "project"),
                 "convex_url": convex.url}
        path.write_text(json.dumps({"workers": [entry]}))
        async with open_oco("run", "--config", str(path), env=os.environ, stderr_apart=True) as running:
            await fake.wait_for(lambda: (fake.worker(created.worker_id).connected_at or 0) > 0, 30)
            chat = fake.start_session(created.worker_id)
            answers = []
            for text in ("one", "two"):
                reply = await fake.wait_reply(fake.send_message(chat, text), timeout=30)
                answers.append(reply.content.split(":")[0] + ":" + reply.content.split(":")[1])
            running.process.send_signal(signal.SIGTERM)
            code = await running.wait(timeout=30)
        sys.stderr.write(running.errors.value.decode())
        return {"answers": answers, "code": code}

print(json.dumps(trio.run(main)))
"""


async def test_dev_mode_labels_its_lines_with_the_workers_name_not_its_id(tmp_path) -> None:
    from oco.testing import DevProject, serve_fake_llm

    opencode = _failing_opencode(tmp_path)
    async with serve_fake_convex() as convex, serve_fake_llm() as llm:
        project = DevProject.make(tmp_path, convex, llm, str(opencode), name="dev-worker")
        worker_id = project.created.worker_id
        async with project.open_dev() as dev:
            await dev.wait_for("[dev-worker] registering -> connecting", timeout=30)
            chat = convex.fake.start_session(worker_id)
            await convex.fake.wait_reply(convex.fake.send_message(chat, "hello"), timeout=30)
            await dev.wait_for("[dev-worker] message picked up", timeout=30)
            dev.process.send_signal(signal.SIGINT)
            assert await dev.wait(timeout=30) == 0
    lines = dev.text.splitlines()
    with_id = [line for line in lines if f"[{worker_id}]" in line]
    # Only the line before registration (the name comes from Convex's answer) shows the id.
    assert [line.split("] ", 1)[1] for line in with_id] == ["starting -> registering"], with_id
    named = sum("[dev-worker]" in line for line in lines)
    assert named >= 4, dev.text
