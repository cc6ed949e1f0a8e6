"""Which model listing a worker can share is decided from its config files without blocking."""

from __future__ import annotations

import os
import threading

from oco.worker._models import config_identity


def test_a_fifo_named_like_a_config_file_does_not_block_the_worker(tmp_path):
    os.mkfifo(tmp_path / "opencode.json")  # reading it would wait for a writer for ever
    found: list[str] = []
    thread = threading.Thread(target=lambda: found.append(config_identity(tmp_path, {})), daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert found, "config_identity blocked on a FIFO"
    assert found[0] == config_identity(tmp_path / "elsewhere", {})  # it counts as absent


def test_a_config_change_changes_the_identity(tmp_path):
    before = config_identity(tmp_path, {"HOME": "/home/u"})
    (tmp_path / "opencode.json").write_text('{"model": "a/b"}')
    changed = config_identity(tmp_path, {"HOME": "/home/u"})
    assert changed != before
    assert config_identity(tmp_path, {"HOME": "/home/other"}) != changed


def test_the_global_config_and_the_stored_logins_count_and_nothing_else_beside_them(tmp_path):
    home, project = tmp_path / "home", tmp_path / "project"
    project.mkdir()
    env = {"HOME": str(home)}
    config, data = home / ".config" / "opencode", home / ".local" / "share" / "opencode"
    config.mkdir(parents=True)
    data.mkdir(parents=True)
    seen = {config_identity(project, env)}
    for changed in (config / "opencode.jsonc", config / "config.json", data / "auth.json"):
        changed.write_text("{}")
        seen.add(config_identity(project, env))
    (config / "tui.json").write_text("{}")  # not OpenCode's configuration of providers
    (data / "notes.txt").write_text("x")
    assert config_identity(project, env) in seen
    assert len(seen) == 4
    # $XDG_CONFIG_HOME and $OPENCODE_CONFIG name where the files are.
    elsewhere = tmp_path / "xdg" / "opencode"
    elsewhere.mkdir(parents=True)
    moved = {**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    before = config_identity(project, moved)
    (elsewhere / "opencode.json").write_text("{}")
    assert config_identity(project, moved) != before
    named = tmp_path / "custom.json"
    pointed = {**env, "OPENCODE_CONFIG": str(named)}
    before = config_identity(project, pointed)
    named.write_text('{"model": "a/b"}')
    assert config_identity(project, pointed) != before
