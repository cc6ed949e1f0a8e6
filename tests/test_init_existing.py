"""`trio-oco init` at a terminal (a real pty): it adds a worker to an existing commented file,
keeping the other workers and every comment; `--force` keeps a 0600 backup; the wizard asks
for a name, its default the project directory's name. No secret is ever shown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import json5

from oco.testing import run_oco
from terminal import on_terminal

SECRET = "init-secret-0a9b8c7d"
TOKEN = f"machine_m1:worker_new:secret_{SECRET}"
EXISTING = """// my workers: keep this comment
{
  "workers": [
    /* the front end */
    {"name": "front", "token": "machine_m1:worker_front:secret_SECRET", "working_directory": "front",
     "convex_url": "http://127.0.0.1:3210"}, // trailing comma below
  ],
  settings: {log_level: 'DEBUG'}, // JSON5
}
""".replace("SECRET", SECRET)


def user_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCO_", "XDG_"))}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg"), TERM="dumb")
    return env


def answers(project: Path, name: str = "") -> list[tuple[str, str]]:
    return [
        ("Add a worker", ""),
        ("Worker token", TOKEN),
        ("Project directory", str(project)),
        (f"Name [{project.name}]", name),
        ("Convex URL", "http://127.0.0.1:3210"),
    ]


def setup(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "front").mkdir()
    project = tmp_path / "my-project"
    project.mkdir()
    path = tmp_path / "workers.json"
    path.write_text(EXISTING)
    path.chmod(0o600)
    return path, project


def test_init_adds_a_worker_to_an_existing_file_keeping_comments_and_workers(tmp_path: Path) -> None:
    path, project = setup(tmp_path)
    code, shown = on_terminal(
        "init", "--config", str(path), dialogue=answers(project), env=user_env(tmp_path), cwd=tmp_path
    )
    assert code == 0, shown
    assert SECRET not in shown and "Traceback" not in shown
    assert "added worker my-project" in shown and "1 other valid worker(s) kept" in shown
    text = path.read_text()
    assert text.startswith(EXISTING.split("  ],")[0])  # everything before the new entry, as written
    for comment in (
        "// my workers: keep this comment",
        "/* the front end */",
        "// trailing comma below",
        "// JSON5",
    ):
        assert comment in text
    data = json5.loads(text)
    assert [w["name"] for w in data["workers"]] == ["front", "my-project"]
    assert data["workers"][1]["token"] == TOKEN and data["settings"] == {"log_level": "DEBUG"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    checked = run_oco("check", "--config", str(path), env=user_env(tmp_path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "front" in checked.stdout and "my-project" in checked.stdout


def test_the_wizard_takes_a_name_given(tmp_path: Path) -> None:
    path, project = setup(tmp_path)
    code, shown = on_terminal(
        "init",
        "--config",
        str(path),
        dialogue=answers(project, "Backend"),
        env=user_env(tmp_path),
        cwd=tmp_path,
    )
    assert code == 0, shown
    assert [w["name"] for w in json5.loads(path.read_text())["workers"]] == ["front", "Backend"]


def test_init_refuses_to_add_the_same_worker_twice(tmp_path: Path) -> None:
    path, project = setup(tmp_path)
    dialogue = answers(project)
    dialogue[1] = ("Worker token", f"machine_m1:worker_front:secret_{SECRET}")
    code, shown = on_terminal(
        "init", "--config", str(path), dialogue=dialogue, env=user_env(tmp_path), cwd=tmp_path
    )
    assert code == 2, shown
    assert "already has worker front of machine m1; nothing written" in shown
    assert path.read_text() == EXISTING


def test_init_without_a_terminal_writes_nothing_into_an_existing_file(tmp_path: Path) -> None:
    path, _ = setup(tmp_path)
    done = run_oco("init", "--config", str(path), env=user_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert "already exists; run `trio-oco init` on a terminal to add a worker to it" in done.stderr
    assert path.read_text() == EXISTING


def test_init_force_keeps_a_private_backup_before_replacing(tmp_path: Path) -> None:
    path, _ = setup(tmp_path)
    done = run_oco("init", "--config", str(path), "--force", env=user_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    backups = list(tmp_path.glob("workers.json.bak-*"))
    assert len(backups) == 1 and f"kept the previous file as {backups[0]}" in done.stdout
    assert backups[0].read_text() == EXISTING
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    assert "workers" in json5.loads(path.read_text())  # the template
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = run_oco("init", "--config", str(path), "--force", env=user_env(tmp_path), cwd=tmp_path)
    assert again.returncode == 0 and len(list(tmp_path.glob("workers.json.bak-*"))) == 2  # never overwritten
