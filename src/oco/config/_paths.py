"""Where trio-oco's files live (XDG base directories) and how private files are written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

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


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing; a directory we create is mode 0700."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    return path


def write_private_file(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically (temp file + rename), file mode 0600.

    Readers never see a half-written file, and the secret is never briefly world-readable:
    mkstemp creates the temp file 0600 before a byte is written.
    """
    path = Path(path)
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    done = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        done = True
    finally:
        if not done:  # leave no temp file behind, whatever went wrong
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path
