"""Shared pieces of the reliability tests: `trio-oco dev` as a subprocess, and what it leaves."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio

from oco.testing import (
    CreatedWorker,
    FakeConvexServer,
    FakeLLMServer,
    collect_output,
    kill_leftovers,
    opencode_env,
    processes_in,
)

REPO = Path(__file__).resolve().parents[2]
OPENCODE = os.environ.get("OCO_OPENCODE_BIN") or str(REPO / "node_modules" / ".bin" / "opencode")

needs_opencode = pytest.mark.skipif(
    not Path(OPENCODE).exists() and not shutil.which("opencode"), reason="opencode not installed"
)


def secret_of(created: CreatedWorker) -> str:
    return created.token.split(":secret_", 1)[1]


async def kill_groups_in(directory: Path, timeout: float = 10) -> None:
    """SIGKILL the process group of every process working in `directory` (a machine crash).

    Returns once each of them has exited (a pidfd turns readable at exit: no polling).
    """
    pidfds = []
    for pid in processes_in(directory):
        try:
            group = os.getpgid(pid)
            pidfds.append(os.pidfd_open(pid))
            # trio-oco itself shares the test's group: signal it, never the group.
            if group == os.getpgrp():
                os.kill(pid, signal.SIGKILL)
            else:
                os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            continue
    try:
        with trio.fail_after(timeout):
            for fd in pidfds:
                await trio.lowlevel.wait_readable(fd)
    finally:
        for fd in pidfds:
            os.close(fd)


@attrs.define
class DevSetup:
    """A project directory with a `.env` for one fake-Convex worker, and its environment."""

    project: Path
    env: dict[str, str]
    created: CreatedWorker

    @classmethod
    def make(
        cls, tmp_path: Path, convex: FakeConvexServer, llm: FakeLLMServer, name: str = "dev-worker"
    ) -> DevSetup:
        project = tmp_path / "project"
        project.mkdir()
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        created = convex.fake.create_worker(name=name)
        (project / ".env").write_text(f"WORKER_TOKEN={created.token}\nCONVEX_URL={convex.url}\n")
        env = {
            **opencode_env(tmp_path / "home", llm.base_url, base=os.environ),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "OCO_OPENCODE_BIN": OPENCODE,
        }
        env.pop("WORKER_TOKEN", None)
        env.pop("CONVEX_URL", None)
        return cls(project, env, created)


@attrs.define
class DevProcess:
    process: trio.Process
    output: bytearray

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def summary(self, limit: int = 6000) -> str:
        """The output without DEBUG lines, for failure messages."""
        lines = [line for line in self.text.splitlines() if " DEBUG " not in line]
        return "\n".join(lines)[-limit:]


@asynccontextmanager
async def run_dev(setup: DevSetup, *, log_level: str = "DEBUG") -> AsyncIterator[DevProcess]:
    """`trio-oco dev` in the project; on exit it is SIGKILLed if still running (output kept)."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "oco", "--log-level", log_level, "dev"],
        cwd=setup.project,
        env=setup.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    dev = DevProcess(process, bytearray())
    try:
        async with trio.open_nursery() as nursery:
            assert process.stdout is not None
            nursery.start_soon(collect_output, process.stdout, dev.output)
            try:
                yield dev
            finally:
                killed = process.returncode is None
                if killed:
                    process.kill()
                # Reaping after a kill is immediate; shielded so a cancelled test still reaps.
                with trio.move_on_after(10, shield=True):
                    await process.wait()
                if killed:  # its OpenCode lives on in its own process group
                    kill_leftovers(setup.project)
                nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
