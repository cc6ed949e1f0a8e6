"""`trio-oco check --online` as a subprocess against the fake Convex on loopback (dev and prod
deployments): an approved, an unapproved and an unknown worker, and a deployment that cannot be
reached, each in one line; opencode found with its version; no secret anywhere."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import trio

from oco.opencode._binary import VERIFIED_VERSION
from oco.testing import CONVEX_MODES, oco_command, serve_fake_convex

SECRET = "online-secret-5c4b3a29"


def fake_opencode(directory: Path, version: str) -> Path:
    """An `opencode` that only answers `--version` (check never starts a server)."""
    path = directory / "opencode"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


async def check_online(tmp_path: Path, workers: list[dict], opencode: Path, *extra: str):
    config = tmp_path / "workers.json"
    config.write_text(json.dumps({"workers": workers}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCO_", "XDG_"))}
    env.update(OCO_OPENCODE_BIN=str(opencode), XDG_STATE_HOME=str(tmp_path / "state"), HOME=str(tmp_path))
    done = await trio.run_process(
        oco_command("check", "--config", str(config), "--online", *extra),
        env=env,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert SECRET not in stdout + stderr
    assert "Traceback" not in stderr, stderr
    return done.returncode, stdout, stderr


def entry(url: str, machine: str, worker: str, name: str, directory: Path) -> dict:
    return {
        "token": f"machine_{machine}:worker_{worker}:secret_{SECRET}",
        "convex_url": url,
        "working_directory": str(directory),
        "name": name,
    }


@pytest.mark.parametrize("mode", CONVEX_MODES)
async def test_check_online_says_per_worker_what_its_deployment_knows(tmp_path: Path, mode: str) -> None:
    async with serve_fake_convex(prod=mode == "prod") as convex:
        fake = convex.fake
        approved = fake.create_worker()
        pending = fake.create_worker(approved=False)
        workers = [
            entry(convex.url, approved.machine_id, approved.worker_id, "good", tmp_path),
            entry(convex.url, pending.machine_id, pending.worker_id, "waiting", tmp_path),
            entry(convex.url, approved.machine_id, "nosuchworker", "gone", tmp_path),
            entry("http://127.0.0.1:9", "m1", "w1", "nowhere", tmp_path),
        ]
        opencode = fake_opencode(tmp_path, VERIFIED_VERSION)
        code, stdout, _ = await check_online(tmp_path, workers, opencode)
        assert fake.counts["workers:register"] == 0 and fake.counts["workers:heartbeat"] == 0
    assert code == 1, stdout
    online = stdout.split("online:\n", 1)[1].splitlines()
    assert len(online) == 5, stdout
    good, waiting, gone, nowhere, found = online
    assert good.split()[:2] == ["good", "approved"]
    assert waiting.split()[:2] == ["waiting", "pending"] and "approve it in the web app" in waiting
    assert gone.split()[:2] == ["gone", "missing"] and "deleted in the web app, or a wrong token" in gone
    assert nowhere.split()[:2] == ["nowhere", "unreachable"] and "cannot reach http://127.0.0.1:9" in nowhere
    assert found.split()[:2] == ["opencode", "found"] and f"opencode {VERIFIED_VERSION} ({opencode})" in found
    assert "differs" not in found


async def test_check_online_exits_0_when_every_worker_is_approved_and_json_says_so(tmp_path: Path) -> None:
    async with serve_fake_convex(prod=True) as convex:
        created = convex.fake.create_worker()
        workers = [entry(convex.url, created.machine_id, created.worker_id, "good", tmp_path)]
        code, stdout, _ = await check_online(tmp_path, workers, fake_opencode(tmp_path, VERIFIED_VERSION))
        assert code == 0, stdout
        code, stdout, _ = await check_online(
            tmp_path, workers, fake_opencode(tmp_path, VERIFIED_VERSION), "--json"
        )
    assert code == 0
    online = json.loads(stdout)["online"]
    assert [(w["name"], w["state"], w["ok"]) for w in online["workers"]] == [("good", "approved", True)]
    assert online["opencode"]["version"] == VERIFIED_VERSION


async def test_check_online_names_a_different_opencode_version_and_a_missing_one(tmp_path: Path) -> None:
    async with serve_fake_convex() as convex:
        created = convex.fake.create_worker()
        workers = [entry(convex.url, created.machine_id, created.worker_id, "good", tmp_path)]
        code, stdout, _ = await check_online(tmp_path, workers, fake_opencode(tmp_path, "0.9.1"))
        assert code == 0, stdout  # a warning, not a refusal
        assert (
            f"opencode 0.9.1 ({tmp_path / 'opencode'}); opencode 0.9.1 differs from {VERIFIED_VERSION}"
            in stdout
        )
        code, stdout, _ = await check_online(tmp_path, workers, tmp_path / "no-opencode-here")
    assert code == 1
    assert "opencode not found" in stdout.split("online:\n", 1)[1]


def test_the_verified_version_is_the_one_package_json_pins() -> None:
    package = json.loads((Path(__file__).parents[1] / "package.json").read_text())
    assert package["dependencies"]["opencode-ai"] == VERIFIED_VERSION


def test_the_version_is_cached_per_binary(tmp_path: Path) -> None:
    """Asked once per binary: same path, size and mtime answer from the cache (no node start);
    an upgrade (another mtime) is asked again."""
    from oco.opencode._binary import cached_opencode_version

    opencode = fake_opencode(tmp_path, "1.0.0")
    assert cached_opencode_version(str(opencode), tmp_path / "state") == "1.0.0"
    cache = tmp_path / "state" / "opencode-version.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    stamp = opencode.stat().st_mtime_ns
    fake_opencode(tmp_path, "9.9.9")  # same size; the same mtime below: the cache answers
    os.utime(opencode, ns=(stamp, stamp))
    assert cached_opencode_version(str(opencode), tmp_path / "state") == "1.0.0"
    os.utime(opencode, ns=(stamp + 10**9, stamp + 10**9))
    assert cached_opencode_version(str(opencode), tmp_path / "state") == "9.9.9"
