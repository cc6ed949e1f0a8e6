"""`trio-oco run` as a real subprocess against the in-process fakes, plus what the bench asks of it.

Each `RunProcess` gets its own HOME and XDG dirs (so its lock, status file and OpenCode data are
private), one git project directory per worker, and a generated workers.json; the workers are
created and approved in the fake Convex first, as the web app would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio_util

from oco.testing import CreatedWorker, FakeConvexServer, FakeLLMServer, oco_command, opencode_env

from ._proc import cpu_seconds, descendants, tree_rss_bytes

# How often /proc is re-read while waiting for the process tree to settle (bounded by a deadline).
_PROC_POLL_S = 0.2


class RunProcess:
    """A running `trio-oco run`: its workers, its output, and measurements of its process tree."""

    def __init__(
        self,
        convex: FakeConvexServer,
        workers: list[CreatedWorker],
        workers_file: Path,
        entries: list[dict[str, Any]],
        process: trio.Process,
    ) -> None:
        self.convex = convex
        self.fake = convex.fake
        self.workers = workers
        self.workers_file = workers_file
        self.entries = entries
        self.process = process
        self.output = trio_util.AsyncValue(b"")
        self.warm: set[str] = set()  # worker ids known to have their OpenCode up
        # run_process sets the moment before the spawn (trio clock, and wall clock for Convex calls)
        self.started_at, self.started_wall = trio.current_time(), time.time()

    @property
    def pid(self) -> int:
        return self.process.pid

    async def collect_output(self) -> None:
        assert self.process.stdout is not None
        async for chunk in self.process.stdout:
            self.output.value += chunk

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output.value.decode(errors="replace").splitlines()[-lines:])

    def connected(self, worker: CreatedWorker) -> bool:
        record = self.fake.worker(worker.worker_id)
        return bool(record and record.status != "offline" and (record.connected_at or 0) > 0)

    async def wait_connected(self, timeout: float) -> None:
        """Until every worker is registered and marked connected in Convex."""
        await self.fake.wait_for(lambda: all(self.connected(w) for w in self.workers), timeout)

    async def wait_models(self, timeout: float) -> None:
        """Until every worker published its model list."""
        ids = {w.worker_id for w in self.workers}

        def published() -> bool:
            updates = [c for c in self.fake.calls if c.function == "workerModels:updateModels"]
            done = {c.args.get("workerId") for c in updates}
            return ids <= done

        await self.fake.wait_for(published, timeout)

    async def wait_no_children(self, timeout: float) -> None:
        """Until the orchestrator has no child process left (the model listing has exited)."""
        with trio.fail_after(timeout):
            while descendants(self.pid):
                await trio.sleep(_PROC_POLL_S)

    async def settled_rss(self, samples: int = 5, spacing: float = 0.5) -> int:
        """The median of a few RSS readings of the whole tree."""
        readings = []
        for n in range(samples):
            if n:
                await trio.sleep(spacing)
            readings.append(tree_rss_bytes(self.pid))
        return sorted(readings)[len(readings) // 2]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rewrite(self, entries: list[dict[str, Any]]) -> None:
        """Replace workers.json (0600, as trio-oco expects of a file holding tokens)."""
        self.workers_file.write_text(json.dumps({"workers": entries}))

    def reload(self) -> None:
        self.process.send_signal(signal.SIGHUP)

    async def stop(self, timeout: float) -> int:
        """SIGTERM, then wait for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        with trio.fail_after(timeout):
            return await self.process.wait()


@asynccontextmanager
async def run_process(
    convex: FakeConvexServer,
    llm: FakeLLMServer,
    root: Path,
    count: int,
    *,
    opencode_bin: str,
    settings: Mapping[str, Any] | None = None,
) -> AsyncIterator[RunProcess]:
    """Create `count` approved workers, start `trio-oco run` for them, kill its group at the end."""
    root.mkdir(mode=0o700)
    workers, entries = [], []
    for n in range(count):
        project = root / "projects" / f"p{n:02d}"
        project.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        created = convex.fake.create_worker(name=f"w{n:02d}")
        workers.append(created)
        entries.append(
            {
                "name": f"w{n:02d}",
                "token": created.token,
                "working_directory": str(project),
                "convex_url": convex.url,
            }
        )
    workers_file = root / "workers.json"
    workers_file.touch(mode=0o600)
    document: dict[str, Any] = {"workers": entries}
    if settings:
        document["settings"] = dict(settings)
    workers_file.write_text(json.dumps(document))
    env = opencode_env(root / "home", llm.base_url, base=os.environ)
    env["OCO_OPENCODE_BIN"] = opencode_bin
    spawned, spawned_wall = trio.current_time(), time.time()
    process = await trio.lowlevel.open_process(
        oco_command("run", "--config", str(workers_file)),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so its OpenCode servers die with it
    )
    handle = RunProcess(convex, workers, workers_file, entries, process)
    handle.started_at, handle.started_wall = spawned, spawned_wall
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(handle.collect_output)
            try:
                yield handle
            finally:
                nursery.cancel_scope.cancel()
                (root / "orchestrator.log").write_bytes(handle.output.value)
    finally:
        # Runs during cancellation too: nothing of this run may outlive the bench.
        with trio.move_on_after(5, shield=True):
            await _kill_tree(process)


async def _kill_tree(process: trio.Process) -> None:
    """SIGKILL the orchestrator and every process below it, by pid.

    OpenCode servers run in their own process groups, so a group kill would miss them, and once
    the orchestrator is gone they are no longer its descendants: list them first.
    """
    tree = descendants(process.pid) if process.returncode is None else []
    for pid in [process.pid, *tree] if process.returncode is None else tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    await process.wait()
