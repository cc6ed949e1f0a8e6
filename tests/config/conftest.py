"""Shared helpers for the config tests: a project directory and a workers-file writer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A directory holding workers.json and a `project/` directory beside it."""
    (tmp_path / "cfg" / "project").mkdir(parents=True)
    return tmp_path / "cfg"


@pytest.fixture
def write_config(config_dir: Path) -> Callable[..., Path]:
    def write(content: object, name: str = "workers.json") -> Path:
        path = config_dir / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            text = content if isinstance(content, str) else json.dumps(content)
            path.write_text(text, encoding="utf-8")
        return path

    return write
