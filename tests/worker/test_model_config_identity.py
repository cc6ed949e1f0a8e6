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
