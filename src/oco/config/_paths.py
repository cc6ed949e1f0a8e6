"""Where trio-oco's files live (XDG base directories); private files are written by `oco._private`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from oco._private import ensure_private_dir, write_private_file

__all__ = [
    "APP_DIR",
    "WORKERS_FILE",
    "ensure_private_dir",
    "state_dir",
    "workers_file_path",
    "write_private_file",
]

APP_DIR = "opencode-orchestrator"
WORKERS_FILE = "workers.json"


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def _xdg(env: Mapping[str, str], key: str, fallback: str) -> Path:
    # The XDG spec says relative values are invalid and must be ignored.
    value = env.get(key, "")
    if value and os.path.isabs(value):
        return Path(value)
    return _home(env) / fallback


def workers_file_path(cli_path: str | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The workers.json to use: `--config` > `$OCO_CONFIG` > XDG config home > ~/.config."""
    chosen = cli_path or env.get("OCO_CONFIG")
    if chosen:
        return Path(os.path.expanduser(chosen)).absolute()
    return _xdg(env, "XDG_CONFIG_HOME", ".config") / APP_DIR / WORKERS_FILE


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Status and state files: `$XDG_STATE_HOME/opencode-orchestrator` or ~/.local/state/..."""
    return _xdg(env, "XDG_STATE_HOME", ".local/state") / APP_DIR
