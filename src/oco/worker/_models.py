"""The model list a worker publishes on connect, shared between workers that would list the same.

Listing models costs an OpenCode start (about a second and a few hundred MB), so workers whose
OpenCode configuration is the same share one listing, and at most a few listings run at once:
start-up does not grow with the number of workers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import trio

from oco.domain import ModelInfo

log = logging.getLogger(__name__)

Lister = Callable[[Path, Mapping[str, str] | None], Awaitable[list[ModelInfo]]]

# Files in the project directory that can change which providers and models OpenCode offers.
_PROJECT_CONFIG_FILES = (
    "opencode.json",
    "opencode.jsonc",
    ".opencode/opencode.json",
    ".opencode/opencode.jsonc",
)
_GLOBAL_CONFIG_FILES = ("config.json", "opencode.json", "opencode.jsonc")  # in $XDG_CONFIG_HOME/opencode
_CONFIG_ENV_KEYS = (
    "OPENCODE_CONFIG",
    "OPENCODE_CONFIG_CONTENT",
    "OPENCODE_CONFIG_DIR",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
)


def config_identity(directory: Path, env: Mapping[str, str] | None) -> str:
    """A digest of everything known to change what OpenCode offers in `directory`: the config
    variables, the project's and the global config files, the `OPENCODE_CONFIG` file and the
    stored provider logins (`auth.json`, only ever digested: it holds keys)."""
    env = os.environ if env is None else env
    digest = hashlib.sha256()
    for key in _CONFIG_ENV_KEYS:
        digest.update(f"{key}={env.get(key, '')}\0".encode())
    for name in _PROJECT_CONFIG_FILES:
        digest.update(name.encode() + b"\0")
        _digest_file(digest, directory / name)
    for path in _global_config_files(env):
        digest.update(str(path).encode("utf-8", "surrogateescape") + b"\0")
        _digest_file(digest, path)
    return digest.hexdigest()


def _global_config_files(env: Mapping[str, str]) -> list[Path]:
    """OpenCode's files outside the project that change its providers and models (1.18.33)."""
    home = Path(env.get("HOME") or "~").expanduser()
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "opencode"
    data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share") / "opencode"
    files = [config / name for name in _GLOBAL_CONFIG_FILES] + [data / "auth.json"]
    if env.get("OPENCODE_CONFIG"):
        files.append(Path(env["OPENCODE_CONFIG"]).expanduser())
    return files


def _digest_file(digest: hashlib._Hash, path: Path) -> None:
    """Feed a regular file's bytes to `digest` in pieces (memory stays bounded whatever its
    size); anything else (missing, a directory, a FIFO that would block) counts as absent."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise OSError("not a regular file")
        with open(path, "rb") as config:
            while piece := config.read(65536):
                digest.update(piece)
        digest.update(b"\0")
    except OSError:
        digest.update(b"-\0")


class ModelCatalog:
    """Caches model listings by configuration identity; bounds how many run at once."""

    def __init__(self, lister: Lister, *, concurrency: int = 2) -> None:
        self._lister = lister
        self._limiter = trio.CapacityLimiter(concurrency)
        self._cache: dict[str, list[ModelInfo]] = {}
        self._locks: dict[str, trio.Lock] = {}

    async def models(
        self, directory: Path, env: Mapping[str, str] | None, *, refresh: bool = False
    ) -> list[ModelInfo]:
        key = config_identity(directory, env)
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:
            if refresh or key not in self._cache:
                async with self._limiter:
                    self._cache[key] = await self._lister(directory, env)
            return self._cache[key]
