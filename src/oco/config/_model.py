"""The configuration's data: frozen attrs classes, built once at the edge and trusted inside.

This module is the contract the other packages code against; parsing and validation live
beside it (`_token.py`, `_workers_file.py`, `_dotenv.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs


@attrs.frozen(repr=False)
class Token:
    """A worker token `machine_<id>:worker_<id>:secret_<s>`; `str`/`repr` never show the secret."""

    machine_id: str
    worker_id: str
    secret: str = attrs.field(repr=False)

    def reveal(self) -> str:
        """The full token text, secret included: only for writing it back to a 0600 file."""
        return f"machine_{self.machine_id}:worker_{self.worker_id}:secret_{self.secret}"

    def __str__(self) -> str:
        return f"machine_{self.machine_id}:worker_{self.worker_id}:secret_***"

    def __repr__(self) -> str:
        return f"Token({str(self)!r})"


PermissionPolicy = Literal["allow", "reject"]
ConvexTransport = Literal["subscribe", "poll"]
# "shared": one `opencode serve` per distinct OpenCode environment (binary, environment
# variables, hence global config) serves every worker with that environment, each through a
# view bound to its own directory; "per-worker": each worker runs its own server.
OpenCodeServerMode = Literal["shared", "per-worker"]
DEFAULT_OPENCODE_SERVER: OpenCodeServerMode = "shared"


@attrs.frozen
class Settings:
    """Process-wide knobs (`settings` in workers.json); every field has a sensible default."""

    shutdown_timeout_s: float = 30.0
    heartbeat_interval_s: float = 30.0
    approval_poll_interval_s: float = 5.0
    poll_active_interval_s: float = 0.5
    poll_idle_interval_s: float = 3.0
    stale_message_age_s: float = 900.0
    opencode_bin: str | None = None
    opencode_start_timeout_s: float = 15.0
    opencode_idle_timeout_s: float = 600.0
    opencode_server: OpenCodeServerMode = DEFAULT_OPENCODE_SERVER
    turn_timeout_s: float = 900.0
    permission_policy: PermissionPolicy = "reject"
    max_concurrent_sessions: int = 4
    chunk_interval_s: float = 0.2
    convex_transport: ConvexTransport = "subscribe"
    log_level: str = "INFO"


@attrs.frozen
class WorkerConfig:
    """One worker: who it is (token), where its backend is, and which directory it serves."""

    token: Token
    convex_url: str  # normalised: https (http only for loopback), no trailing slash
    working_directory: Path  # absolute, exists, is a directory
    name: str  # display label; defaults to the worker id
    enabled: bool = True

    @property
    def machine_id(self) -> str:
        return self.token.machine_id

    @property
    def worker_id(self) -> str:
        return self.token.worker_id

    @property
    def secret(self) -> str:
        return self.token.secret

    @property
    def key(self) -> str:
        """Identity of a worker in the process: `machineId:workerId`."""
        return f"{self.machine_id}:{self.worker_id}"
