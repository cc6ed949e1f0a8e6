"""The control channel as a user drives it: `trio-oco run`/`dev` as child processes against the
fake Convex on loopback, and `restart`, `stop`, `start NAME`, `reload`, `status` as commands
over the real control socket. No chat is sent, so no OpenCode starts (the binary only has to
exist: `/bin/true`).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import trio

from oco.orchestrator._control_client import send, send_raw
from oco.orchestrator._instance import find_instances
from oco.testing import oco_command, open_oco, serve_fake_convex

SECRETS: list[str] = []


def user_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCO_", "XDG_", "NOTIFY_", "WATCHDOG_"))}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        OCO_OPENCODE_BIN="/bin/true",
    )
    return env


async def oco(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    """`trio-oco ARGS` to completion (bounded), checked for tracebacks and secrets."""
    with trio.fail_after(60):
        done = await trio.run_process(
            oco_command(*args), env=env, capture_stdout=True, capture_stderr=True, check=False
        )
    text = done.stdout.decode() + done.stderr.decode()
    assert "Traceback" not in text, text
    assert not any(secret in text for secret in SECRETS)
    return done


def out(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stdout.decode()


def err(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stderr.decode()


def write_workers(path: Path, convex_url: str, workers: list, *, directories: dict[str, Path]) -> None:
    entries = [
        {
            "name": name,
            "token": created.token,
            "working_directory": str(directories[name]),
            "convex_url": convex_url,
        }
        for name, created in workers
    ]
    path.write_text(json.dumps({"workers": entries}))


@asynccontextmanager
async def running(tmp_path: Path, names: tuple[str, ...] = ("alpha", "beta")):
    """A fake Convex with one worker per name and `trio-oco run` of them, every worker online."""
    async with serve_fake_convex() as convex:
        fake = convex.fake
        created = [(name, fake.create_worker(name=name)) for name in names]
        SECRETS.extend(c.secret for _, c in created)
        directories = {name: tmp_path / name for name in names}
        for directory in directories.values():
            directory.mkdir()
        workers_file = tmp_path / "workers.json"
        write_workers(workers_file, convex.url, created, directories=directories)
        env = user_env(tmp_path)
        async with open_oco("run", "--config", str(workers_file), env=env) as process:
            await fake.wait_for(
                lambda: all(fake.worker(c.worker_id).status == "online" for _, c in created), timeout=30
            )
            yield SimpleNamespace(
                fake=fake,
                created=dict(created),
                workers_file=workers_file,
                env=env,
                process=process,
                url=convex.url,
            )


def online(fake, created) -> bool:
    return fake.worker(created.worker_id).status == "online"


async def test_restart_stop_start_and_reload_one_worker_through_the_cli(tmp_path: Path) -> None:
    async with running(tmp_path) as scene:
        fake, created, workers_file, env, process = (
            scene.fake,
            scene.created,
            scene.workers_file,
            scene.env,
            scene.process,
        )
        restarted = await oco(env, "restart", "alpha")
        assert (restarted.returncode, out(restarted)) == (0, "alpha: restarted\n")
        await process.wait_for("restarting worker alpha", timeout=10)

        as_json = await oco(env, "restart", created["alpha"].worker_id, "--json")  # by worker id
        reply = json.loads(out(as_json))
        assert as_json.returncode == 0 and reply["ok"] is True and reply["v"] == 1
        assert reply["result"]["worker"]["name"] == "alpha" and reply["result"]["changed"] is True
        assert reply["result"]["worker"]["since"].endswith("+00:00")

        stopped = await oco(env, "stop", "beta")
        assert stopped.returncode == 0 and out(stopped).startswith("beta: stopped (offline;")
        await fake.wait_for(lambda: not online(fake, created["beta"]), timeout=10)  # set offline
        again = await oco(env, "stop", "beta")
        assert (again.returncode, out(again)) == (0, "beta: already stopped\n")

        # A reload that would restart beta (its directory changed) keeps it stopped.
        (tmp_path / "beta2").mkdir()
        directories = {"alpha": tmp_path / "alpha", "beta": tmp_path / "beta2"}
        write_workers(workers_file, scene.url, list(created.items()), directories=directories)
        reloaded = await oco(env, "reload")
        assert reloaded.returncode == 0
        assert out(reloaded).startswith(f"reloaded {workers_file}: ") and out(reloaded).count("\n") == 1
        assert "beta stay stopped (new config when started)" in out(reloaded)
        status = await oco(env, "status", "--json")
        rows = {w["name"]: w for w in json.loads(out(status))["orchestrators"][0]["workers"]}
        assert rows["beta"]["state"] == "stopped" and rows["beta"]["directory"] == str(tmp_path / "beta2")
        assert status.returncode == 1  # not every worker is ready
        assert not online(fake, created["beta"]) and online(fake, created["alpha"])

        started = await oco(env, "start", "beta")
        assert (started.returncode, out(started)) == (0, "beta: started\n")
        await fake.wait_for(lambda: online(fake, created["beta"]), timeout=10)
        already = await oco(env, "start", "beta")
        assert already.returncode == 0 and out(already).startswith("beta: already running (")

        everyone = await oco(env, "restart", "all")
        assert (everyone.returncode, out(everyone)) == (0, "restarted 2 worker(s): alpha, beta\n")

        unknown = await oco(env, "restart", "nope")
        assert unknown.returncode == 1 and out(unknown) == ""
        assert err(unknown) == "trio-oco: no worker named 'nope' (configured: alpha, beta)\n"
        unknown_json = await oco(env, "stop", "nope", "--json")
        assert unknown_json.returncode == 1
        assert json.loads(out(unknown_json))["error"]["code"] == "unknown_worker"

        workers_file.write_text("{ not json")
        broken = await oco(env, "reload")
        assert broken.returncode == 1 and len(err(broken).strip().splitlines()) == 1
        assert str(workers_file) in err(broken)

        assert process.process.returncode is None  # every command left it running
        process.process.send_signal(signal.SIGTERM)
        assert await process.wait(30) == 0


async def test_hostile_requests_get_an_error_reply_and_the_orchestrator_runs_on(tmp_path: Path) -> None:
    async with running(tmp_path, ("alpha",)) as scene:
        fake, created, process = scene.fake, scene.created, scene.process
        (instance,) = find_instances(tmp_path / "state" / "opencode-orchestrator")
        sock = instance.socket_path
        assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert stat.S_IMODE(instance.directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(instance.directory.parent.stat().st_mode) == 0o700

        def error_code(line: bytes) -> str:
            reply = json.loads(send_raw(sock, line, timeout=10))
            assert reply["ok"] is False and isinstance(reply["error"]["message"], str)
            return reply["error"]["code"]

        assert error_code(b"not json at all\n") == "bad_request"
        assert error_code(b"\xff\xfe garbage\n") == "bad_request"
        assert error_code(b"[1, 2, 3]\n") == "bad_request"
        assert error_code(b'{"cmd": "format-disk"}\n') == "bad_request"
        assert error_code(b'{"cmd": "restart"}\n') == "bad_request"  # no worker named
        assert error_code(b'{"v": 99, "cmd": "ping"}\n') == "bad_request"
        assert error_code(b'{"cmd": "ping", "pad": "' + b"x" * 10_000 + b'"}\n') == "too_large"
        assert error_code(b"x" * 100_000) == "too_large"  # no newline at all
        assert send_raw(sock, b"", timeout=10).startswith(b'{"v": 1, "ok": false')  # empty line

        reply = send(sock, "ping")
        assert reply["ok"] is True and reply["result"]["pid"] == process.pid
        assert reply["result"]["mode"] == "run"
        assert online(fake, created["alpha"]) and process.process.returncode is None
        assert "Traceback" not in process.text


async def test_without_an_orchestrator_the_commands_exit_7_and_status_3(tmp_path: Path) -> None:
    env = user_env(tmp_path)
    for args in (("restart", "alpha"), ("stop", "alpha"), ("start", "alpha"), ("reload",)):
        done = await oco(env, *args)
        assert done.returncode == 7, args
        assert (
            err(done)
            == "trio-oco: no orchestrator is running (start one with `trio-oco run` or `trio-oco dev`)\n"
        )
    as_json = await oco(env, "stop", "alpha", "--json")
    assert as_json.returncode == 7 and json.loads(out(as_json))["error"]["code"] == "not_running"
    status = await oco(env, "status")
    assert status.returncode == 3


async def test_dev_and_run_at_once_both_run_status_shows_both_and_names_find_their_orchestrator(
    tmp_path: Path,
) -> None:
    async with serve_fake_convex() as convex:
        fake = convex.fake
        run_worker, dev_worker = fake.create_worker(name="alpha"), fake.create_worker(name="devw")
        SECRETS.extend([run_worker.secret, dev_worker.secret])
        (tmp_path / "alpha").mkdir()
        workers_file = tmp_path / "workers.json"
        write_workers(
            workers_file, convex.url, [("alpha", run_worker)], directories={"alpha": tmp_path / "alpha"}
        )
        project = tmp_path / "project"
        project.mkdir()
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        (project / ".env").write_text(f"WORKER_TOKEN={dev_worker.token}\nCONVEX_URL={convex.url}\n")
        env = user_env(tmp_path)
        async with (
            open_oco("run", "--config", str(workers_file), env=env) as run_process,
            open_oco("dev", env=env, cwd=project) as dev_process,
        ):
            await fake.wait_for(lambda: online(fake, run_worker) and online(fake, dev_worker), timeout=30)

            second = await oco(env, "run", "--config", str(workers_file))
            assert second.returncode == 2
            assert err(second).strip().splitlines() == [
                f"trio-oco: trio-oco run of {workers_file} is already running (pid {run_process.pid}); "
                f"lock: {find_instances(tmp_path / 'state' / 'opencode-orchestrator')[0].directory}/orchestrator.lock"
            ]

            status = await oco(env, "status")
            text = out(status)
            assert status.returncode == 0, text
            # Each group's line: mode, source (cut on the left to fit), pid, since.
            lines = text.splitlines()
            run_line = next(n for n, line in enumerate(lines) if line.startswith("run "))
            dev_line = next(n for n, line in enumerate(lines) if line.startswith("dev "))
            assert lines[run_line].endswith("/workers.json") and lines[dev_line].endswith("/project/.env")
            assert lines[run_line + 1].startswith(f"  pid {run_process.pid}, since ")
            assert lines[dev_line + 1].startswith(f"  pid {dev_process.pid}, since ")
            assert "2 orchestrators; for one of them: --config PATH (run) or --env-file PATH (dev)" in text
            assert all(len(line) <= 80 for line in text.splitlines())
            data = json.loads(out(await oco(env, "status", "--json")))
            assert [(o["mode"], o["pid"]) for o in data["orchestrators"]] == [
                ("run", run_process.pid),
                ("dev", dev_process.pid),
            ]
            only_dev = json.loads(
                out(await oco(env, "status", "--json", "--env-file", str(project / ".env")))
            )
            assert [o["mode"] for o in only_dev["orchestrators"]] == ["dev"]

            # Found in the dev orchestrator (dev names its worker by its id).
            restarted = await oco(env, "restart", dev_worker.worker_id)
            assert (restarted.returncode, out(restarted)) == (0, f"{dev_worker.worker_id}: restarted\n")
            await dev_process.wait_for(f"restarting worker {dev_worker.worker_id}", timeout=10)
            assert "restarting worker" not in run_process.text

            ambiguous = await oco(env, "restart", "all")
            assert ambiguous.returncode == 2 and "--config PATH" in err(ambiguous)
            chosen = await oco(env, "restart", "all", "--config", str(workers_file))
            assert (chosen.returncode, out(chosen)) == (0, "restarted 1 worker(s): alpha\n")
            nowhere = await oco(env, "stop", "ghost")
            assert nowhere.returncode == 1 and "ghost" in err(nowhere) and "alpha" in err(nowhere)

            reloaded = await oco(env, "reload")  # the only run: no choice needed
            assert (reloaded.returncode, out(reloaded)) == (0, f"reloaded {workers_file}: nothing changed\n")
            dev_reload = await oco(env, "reload", "--env-file", str(project / ".env"))
            assert dev_reload.returncode == 3 and "not available" in err(dev_reload)

            for process in (run_process, dev_process):
                process.process.send_signal(signal.SIGTERM)
                assert await process.wait(30) == 0
