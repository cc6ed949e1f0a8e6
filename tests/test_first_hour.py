"""The first hour as a user lives it, through the real CLI: options checked the same way in
every command, a mistyped --env-file named, and the fakes' help listing what they do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oco.testing import run_oco


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCO_", "XDG_", "WORKER_", "CONVEX_"))}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg"), XDG_STATE_HOME=str(tmp_path / "st"))
    return env


@pytest.mark.parametrize("command", ["dev", "run", "start"])
@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf"])
def test_a_bad_shutdown_timeout_is_one_line_and_exit_2_in_every_command(
    command: str, value: str, tmp_path: Path
) -> None:
    done = run_oco(command, f"--shutdown-timeout={value}", env=clean_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.strip() == f"trio-oco: --shutdown-timeout must be a number of seconds > 0 (got {value})"
    )


def test_a_missing_env_file_is_named_in_one_line(tmp_path: Path) -> None:
    done = run_oco("dev", "--env-file", "missing.env", env=clean_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"trio-oco: {tmp_path / 'missing.env'}: does not exist (--env-file); create it, or leave"
        " --env-file out for ./.env"
    )
    assert not (tmp_path / "missing.env").exists()


async def test_dev_warns_once_when_opencode_is_not_the_verified_version(tmp_path: Path) -> None:
    """A warning at start, not a refusal: the worker still registers (here with a token the
    backend rejects, so the run ends by itself)."""
    from oco.opencode._binary import VERIFIED_VERSION
    from oco.testing import open_oco, serve_fake_convex

    opencode = tmp_path / "opencode"
    opencode.write_text("#!/bin/sh\necho 0.9.1\n")
    opencode.chmod(0o755)
    project = tmp_path / "project"
    project.mkdir()
    async with serve_fake_convex() as convex:
        created = convex.fake.create_worker()
        token = created.token_with_secret("WrongSecret123")
        (project / ".env").write_text(f"WORKER_TOKEN={token}\nCONVEX_URL={convex.url}\n")
        env = {**clean_env(tmp_path), "OCO_OPENCODE_BIN": str(opencode)}
        async with open_oco("dev", cwd=project, env=env, stderr_apart=True) as dev:
            assert await dev.wait(timeout=30) == 2
        assert convex.fake.counts["workers:register"] == 1
    warnings = [line for line in dev.errors.value.decode().splitlines() if " WARNING " in line]
    assert len(warnings) == 1, warnings
    assert (
        f"opencode 0.9.1 differs from {VERIFIED_VERSION}, the version trio-oco was verified with"
        in warnings[0]
    )
    assert str(opencode) in warnings[0]


def test_the_systemd_unit_finds_a_user_installed_opencode_and_keeps_only_what_works() -> None:
    unit = (Path(__file__).parents[1] / "docs" / "trio-oco.service").read_text()
    directives = [line for line in unit.splitlines() if line and not line.startswith(("#", "["))]
    keys = [line.split("=", 1)[0] for line in directives]
    path = next(line for line in directives if line.startswith("Environment=PATH="))
    for place in ("%h/.npm-global/bin", "%h/.local/bin", "/usr/local/bin", "/usr/bin"):
        assert place in path.split("=", 2)[2].split(":")
    assert "opencode_bin" in unit and "OCO_OPENCODE_BIN" in unit  # how to name another place
    # Nothing a user manager ignores or cannot do: system targets, privileged sandboxing.
    assert not {"After", "Wants", "ProtectSystem", "NoNewPrivileges", "PrivateTmp", "User"} & set(keys)
    assert {"Type", "ExecStart", "ExecReload", "WatchdogSec", "RestartPreventExitStatus"} <= set(keys)


def test_the_readme_works_as_a_pypi_description_and_the_package_says_where_it_lives() -> None:
    """PyPI shows README.md without the repository around it: every link must be absolute."""
    import re
    import tomllib

    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text()
    links = re.findall(r"\]\(([^)]*)\)", readme) + re.findall(r'(?:src|href)="([^"]*)"', readme)
    assert links and all(link.startswith(("https://", "http://", "#")) for link in links), links
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert {"Homepage", "Source", "Issues"} <= set(project["urls"])
    assert all(url.startswith("https://") for url in project["urls"].values())
    assert "Framework :: Trio" in project["classifiers"]
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # PEP 639: `license` says it
    from oco.opencode._binary import VERIFIED_VERSION

    assert f"opencode-ai@{VERIFIED_VERSION}" in readme


async def test_an_uncached_version_check_does_not_delay_the_start(tmp_path: Path) -> None:
    """`opencode --version` takes most of a second (node starts); not cached yet, it runs beside
    the start: here it answers only when the test lets it, after the worker is ready."""
    import json
    import signal

    from oco.testing import open_oco, serve_fake_convex

    gate = tmp_path / "gate"
    os.mkfifo(gate)
    opencode = tmp_path / "opencode"
    opencode.write_text(f"#!/bin/sh\nread answer < {gate}\necho $answer\n")
    opencode.chmod(0o755)
    (tmp_path / "project").mkdir()
    async with serve_fake_convex() as convex:
        fake = convex.fake
        created = fake.create_worker()
        config = tmp_path / "workers.json"
        worker = {"token": created.token, "convex_url": convex.url, "working_directory": "project"}
        config.write_text(json.dumps({"workers": [worker]}))
        env = {**clean_env(tmp_path), "OCO_OPENCODE_BIN": str(opencode)}
        async with open_oco("run", "--config", str(config), env=env, cwd=tmp_path) as run:
            await fake.wait_for(lambda: (fake.worker(created.worker_id).connected_at or 0) > 0, timeout=30)
            assert "differs" not in run.text  # ready while the version check still waits
            with open(gate, "w") as answer:  # noqa: ASYNC230 - a FIFO the child has open: no wait
                answer.write("0.9.1\n")
            await run.wait_for("opencode 0.9.1 differs from", timeout=30)
            run.process.send_signal(signal.SIGINT)
            assert await run.wait(timeout=20) == 0, run.text
    assert (
        tmp_path / "st" / "opencode-orchestrator" / "opencode-version.json"
    ).exists()  # next start: at once
