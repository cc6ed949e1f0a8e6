"""The process's shared OpenCode servers: one per OpenCode environment, lent to the workers using it.

With `opencode_server: "shared"`, workers whose OpenCode environment is the same (binary and
environment variables: `oco.opencode.server_key`) borrow one `OpenCodeHost` from here instead of
running one each. The host lives in a task of this lender's nursery (in the orchestrator's root
nursery), opens with its first borrowing worker and closes when the last one leaves (a stop, or
a reload removing it); between those it starts its `opencode serve` on the first turn of any
of them and stops it once none had a turn for `opencode_idle_timeout_s`, like a worker's own.
The server runs in a private, empty directory under the state directory; every worker reaches
it through a view bound to its own directory.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from oco.config import Settings, ensure_private_dir
from oco.opencode import ServerKey, opencode_environment, server_key
from oco.worker import OpenCodeHost, OpenCodeShare

from ._lending import Lender

SHARED_DIRECTORY = "opencode-shared"  # under the state directory: the shared servers' cwd


@attrs.frozen
class SharedServerSpec:
    """How to start the shared server of one key (the settings of its first borrower)."""

    bin: str
    env: Mapping[str, str]  # already without trio-oco's variables and the borrowers' secrets
    state_dir: Path
    start_timeout: float
    idle_timeout: float


class SharedOpenCode:
    """Lends one shared `OpenCodeHost` per `ServerKey`; `hosts` is the registry."""

    def __init__(self) -> None:
        self.hosts: Lender[ServerKey, OpenCodeHost] = Lender("OpenCode server")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the shared hosts until cancelled (in the root nursery)."""
        await self.hosts.run(task_status=task_status)

    def pids(self) -> set[int]:
        """The shared servers running now (each its process group), also one whose host is
        closing after its last borrower left: its workers no longer report it then."""
        return {pid for host in self.hosts.open_resources() if (pid := host.pid) is not None}

    def share(
        self,
        bin: str,
        env: Mapping[str, str] | None,
        *,
        secrets: Iterable[str],
        state_dir: Path,
        settings: Settings,
    ) -> OpenCodeShare:
        """One worker's share: the server of the environment OpenCode would get for it."""
        child_env = opencode_environment(os.environ if env is None else env, secrets)
        key = server_key(bin, child_env)
        spec = SharedServerSpec(
            bin, child_env, state_dir, settings.opencode_start_timeout_s, settings.opencode_idle_timeout_s
        )
        return OpenCodeShare(key.label, lambda: self.hosts.lend(key, lambda: _host(key, spec)))


@asynccontextmanager
async def _host(key: ServerKey, spec: SharedServerSpec) -> AsyncIterator[OpenCodeHost]:
    """The shared host of `key`, its task running until the last borrower leaves."""
    directory = spec.state_dir / SHARED_DIRECTORY
    ensure_private_dir(directory)
    host = OpenCodeHost(
        spec.bin,
        directory,
        env=spec.env,
        start_timeout=spec.start_timeout,
        idle_timeout=spec.idle_timeout,
        pid_file=directory / f"{key.environment[:16]}.pid",
        shared=True,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(host.run)
        yield host
        nursery.cancel_scope.cancel()  # the server stops (and is reaped) with the host's task
