"""`trio-oco` as a user runs it: a subprocess, its exit code, its output, and no secret in it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from oco.testing import run_oco

SECRET = "cli-secret-9f8e7d6c5b4a"


def token(worker: str) -> str:
    return f"machine_m1:worker_{worker}:secret_{SECRET}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / "proj").mkdir(parents=True)
    return tmp_path / "home"


def oco(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCO_", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "xdg"), PYTHONIOENCODING="utf-8")
    done = run_oco(*args, input=stdin, env=env, cwd=home)
    assert SECRET not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done


def write(home: Path, workers: list[object]) -> Path:
    path = home / "workers.json"
    path.write_text(json.dumps({"workers": workers}))
    return path


def good(worker: str, **extra: object) -> dict[str, object]:
    return {
        "token": token(worker),
        "working_directory": "proj",
        "convex_url": "http://127.0.0.1:3210",
        **extra,
    }


def test_version_and_help() -> None:
    home = Path("/")
    assert oco(home, "--version").stdout.startswith("trio-oco ")
    done = oco(home, "--help")
    assert done.returncode == 0 and "check" in done.stdout and "init" in done.stdout


def test_check_on_a_good_file_exits_0_and_shows_a_table(home: Path) -> None:
    path = write(home, [good("w1", name="Front"), good("w2", enabled=False)])
    done = oco(home, "check", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert "Front" in done.stdout and "ok (disabled)" in done.stdout
    assert str((home / "proj").resolve()) in done.stdout


def test_check_with_bad_entries_exits_1_naming_each_problem(home: Path) -> None:
    path = write(home, [good("w1"), good("w2", convex_url="http://example.com"), good("w1")])
    done = oco(home, "check", "--config", str(path))
    assert done.returncode == 1
    assert "skipped: convex_url: must use https (got http://example.com)" in done.stdout
    assert "skipped: duplicate of workers[0]" in done.stdout


def test_check_json_output(home: Path) -> None:
    path = write(home, [good("w1"), {"token": token("w2")}])
    done = oco(home, "check", "--config", str(path), "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert [w["worker_id"] for w in result["workers"]] == ["w1"]
    assert {p["json_path"] for p in result["problems"]} == {
        "workers[1].working_directory",
        "workers[1].convex_url",
    }


def test_check_with_no_valid_entry_exits_2(home: Path) -> None:
    path = write(home, [good("w1", working_directory="missing")])
    done = oco(home, "check", "--config", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"trio-oco: {path}: no valid worker")
    assert "skipped: working_directory: does not exist" in done.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [("{workers: [", "not valid JSON5"), ("[]", "top level must be an object"), ("", "is empty")],
)
def test_check_on_a_broken_file_exits_2_with_one_line(home: Path, content: str, message: str) -> None:
    (home / "w.json").write_text(content)
    done = oco(home, "check", "--config", str(home / "w.json"))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_check_without_a_file_only_reads_and_exits_2_naming_init(home: Path) -> None:
    done = oco(home, "check")
    path = home / "xdg" / "opencode-orchestrator" / "workers.json"
    assert done.returncode == 2
    assert f"{path}: not found; `trio-oco init` writes a template there" in done.stderr
    assert not path.exists() and not path.parent.exists()  # it wrote the template before
    mistyped = oco(home, "check", "--config", str(home / "wrokers.json"))
    assert mistyped.returncode == 2 and not (home / "wrokers.json").exists()


def test_oco_config_environment_variable_is_used(home: Path) -> None:
    path = write(home, [good("w1")])
    env_home = home
    done = run_oco("check", cwd=env_home, env={**os.environ, "HOME": str(home), "OCO_CONFIG": str(path)})
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_init_writes_the_template_and_never_overwrites_without_force(home: Path) -> None:
    path = home / "conf" / "workers.json"
    done = oco(home, "init", "--config", str(path))
    assert done.returncode == 0 and f"wrote a template to {path}" in done.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("mine")
    refused = oco(home, "init", "--config", str(path))
    assert refused.returncode == 2 and "already exists; run `trio-oco init` on a terminal" in refused.stderr
    assert path.read_text() == "mine"
    assert oco(home, "init", "--config", str(path), "--force").returncode == 0
    assert path.read_text() == (Path(__file__).parents[1] / "workers.template.jsonc").read_text()


def test_unknown_option_is_a_usage_error(home: Path) -> None:
    done = run_oco("check", "--nope")
    assert done.returncode == 2 and "unrecognized arguments: --nope" in done.stderr


def test_init_wizard_reasks_until_each_answer_is_valid_and_its_file_loads(home: Path) -> None:
    from oco.commands.init import wizard_text
    from oco.config import load_workers_file

    secrets = iter(["machine_m1:worker_w1", token("w1")])
    answers = iter(["missing-dir", "proj", "", "http://example.com", "http://127.0.0.1:3210/"])
    text = wizard_text(home, ask=lambda _: next(answers), ask_secret=lambda _: next(secrets))
    path = home / "workers.json"
    path.write_text(text)
    loaded = load_workers_file(path)
    assert [(w.worker_id, w.convex_url) for w in loaded.workers] == [("w1", "http://127.0.0.1:3210")]
    assert loaded.workers[0].name == "proj"  # the name asked for defaults to the directory's
    assert loaded.workers[0].working_directory == (home / "proj").resolve()


def test_global_options_work_after_the_command_too(home: Path) -> None:
    path = write(home, [good("w1", name="Front")])
    done = oco(home, "check", "--config", str(path), "--log-level", "debug", "--log-format", "json")
    assert done.returncode == 0, done.stderr  # was 2: "unrecognized arguments"
    assert "Front" in done.stdout


def test_a_global_option_after_the_command_wins_and_one_before_it_stays() -> None:
    from oco.cli import build_parser

    parser = build_parser()
    before = parser.parse_args(["--log-level", "warning", "check"])
    assert (before.log_level, before.log_format) == ("WARNING", "text")
    after = parser.parse_args(["--log-level", "warning", "check", "--log-level", "debug"])
    assert after.log_level == "DEBUG"
    neither = parser.parse_args(["check"])
    assert (neither.log_level, neither.log_format) == (None, "text")
