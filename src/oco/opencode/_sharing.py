"""What makes two workers able to share one `opencode serve`, and how a shared server's events
find their worker (pure: no trio, no httpx).

One server serves many project directories (every route takes `?directory=`; verified on
opencode-ai 1.18.33: sessions, tools and per-project config follow it), but its process has one
environment: the binary, and the environment variables, which hold the global config
(`OPENCODE_CONFIG_CONTENT`, `XDG_CONFIG_HOME`, provider keys). Workers whose OpenCode
environment is the same share a server (`ServerKey`); any difference means another server.
The key holds a digest of the environment, never its values (they can be provider keys), so
it can appear in log lines and error messages.

On the shared server one stream (`/global/event`) carries the events of every directory, each
wrapped as `{"directory": ..., "payload": <event>}` (`unwrap_global`); they are routed to the
worker's turn by OpenCode session id, exactly as one directory's `/event` is.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class ServerKey:
    """One OpenCode environment: the binary and a digest of the environment variables."""

    bin: str
    environment: str  # sha256 hex of the sorted NAME=value pairs

    @property
    def label(self) -> str:
        """A short name for status and logs: `shared <first 8 hex digits>`."""
        return f"shared {self.environment[:8]}"

    def __str__(self) -> str:
        return f"{self.bin} (environment {self.environment[:8]})"


def server_key(bin: str, env: Mapping[str, str]) -> ServerKey:
    """The key of the server that `bin` started with environment `env` would be."""
    digest = hashlib.sha256()
    for name, value in sorted(env.items()):
        digest.update(name.encode("utf-8", "surrogateescape") + b"=")
        digest.update(value.encode("utf-8", "surrogateescape") + b"\0")
    return ServerKey(os.path.realpath(bin), digest.hexdigest())


def same_directory(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same directory as OpenCode reports it (symlinks resolved)."""
    return os.path.realpath(a) == os.path.realpath(b)


def unwrap_global(data: Any) -> Any:
    """A `/global/event` item → the event inside it (the same shape `/event` sends); anything
    else unchanged, so the parser decides."""
    if isinstance(data, dict) and "payload" in data and "type" not in data:
        return data["payload"]
    return data


def wrong_directory_message(asked: str, got: object) -> str:
    """What to say when OpenCode created a session outside the directory we asked for."""
    return (
        f"the shared OpenCode server created a session in {got!s} instead of {asked} (this OpenCode"
        ' ignores ?directory=); set "opencode_server": "per-worker" in the settings'
    )
