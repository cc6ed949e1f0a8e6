"""Where files live (XDG rules) and how private files are written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from oco.config import ensure_private_dir, state_dir, workers_file_path, write_private_file


def test_workers_file_precedence(tmp_path: Path) -> None:
    env = {"HOME": "/home/u", "XDG_CONFIG_HOME": "/xdg", "OCO_CONFIG": "/env/w.json"}
    assert workers_file_path("/cli/w.json", env) == Path("/cli/w.json")
    assert workers_file_path(None, env) == Path("/env/w.json")
    del env["OCO_CONFIG"]
    assert workers_file_path(None, env) == Path("/xdg/opencode-orchestrator/workers.json")
    del env["XDG_CONFIG_HOME"]
    assert workers_file_path(None, env) == Path("/home/u/.config/opencode-orchestrator/workers.json")


def test_relative_xdg_values_are_ignored_as_the_spec_says() -> None:
    env = {"HOME": "/home/u", "XDG_CONFIG_HOME": "rel", "XDG_STATE_HOME": "rel"}
    assert workers_file_path(None, env) == Path("/home/u/.config/opencode-orchestrator/workers.json")
    assert state_dir(env) == Path("/home/u/.local/state/opencode-orchestrator")


def test_cli_path_is_made_absolute_and_tilde_expanded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert workers_file_path("w.json", {}) == tmp_path / "w.json"
    assert workers_file_path("~/w.json", {}) == Path(os.path.expanduser("~/w.json"))


def test_state_dir() -> None:
    assert state_dir({"HOME": "/h", "XDG_STATE_HOME": "/s"}) == Path("/s/opencode-orchestrator")
    assert state_dir({"HOME": "/h"}) == Path("/h/.local/state/opencode-orchestrator")


def test_write_private_file_is_0600_in_a_0700_dir_and_atomic(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a typical umask, which would give 0644 files
    try:
        path = tmp_path / "a" / "b" / "state.json"
        write_private_file(path, "one")
        write_private_file(path, "two")
    finally:
        os.umask(old_umask)
    assert path.read_text() == "two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]  # no temp file left


def test_failed_write_leaves_no_temp_file_and_keeps_the_old_content(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_private_file(path, "old")
    with pytest.raises(UnicodeEncodeError):
        write_private_file(path, "\udcff")  # a lone surrogate cannot be encoded
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_ensure_private_dir_leaves_an_existing_dir_alone(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir(mode=0o755)
    os.chmod(tmp_path / "mine", 0o755)
    ensure_private_dir(tmp_path / "mine")
    assert stat.S_IMODE((tmp_path / "mine").stat().st_mode) == 0o755
    ensure_private_dir(tmp_path / "new")
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


def test_every_directory_a_private_write_creates_is_0700_not_only_the_last(tmp_path: Path) -> None:
    # Path.mkdir(parents=True, mode=0o700) gave the parents 0755: a fresh state directory
    # (~/.local/state/opencode-orchestrator) was world-listable once instances/ was made in it.
    old = os.umask(0o022)
    try:
        ensure_private_dir(tmp_path / "state" / "opencode-orchestrator" / "instances")
        write_private_file(tmp_path / "cache" / "opencode" / "version.json", "{}")
    finally:
        os.umask(old)
    for made in (
        "state",
        "state/opencode-orchestrator",
        "state/opencode-orchestrator/instances",
        "cache",
        "cache/opencode",
    ):
        assert stat.S_IMODE((tmp_path / made).stat().st_mode) == 0o700, made
    assert stat.S_IMODE((tmp_path / "cache" / "opencode" / "version.json").stat().st_mode) == 0o600
