"""Two real workers in two git projects sharing one real OpenCode (`opencode_server: "shared"`).

`two_workers` runs an orchestrator on the in-process fake Convex with a real fake LLM and
`opencode serve`, both workers ready and a chat open with each; `Running` reads their slots.
The probes below tell whether the shared server's process group is gone.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from oco.config import Settings, WorkerConfig, parse_token
from oco.orchestrator import ConvexConnections, Orchestrator, RestartPolicy, worker_factory
from oco.testing import FakeConvex, fake_models, in_process_connections, opencode_env, serve_fake_llm
from oco.worker import WorkerReport
from real_opencode import opencode_bin


def _state(pid: int) -> str | None:
    """The process's state letter (`T` stopped, `Z` zombie), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


def group_alive(group: int) -> bool:
    """Whether anything of the process group lives on (zombies awaiting their reaper do not)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == group and _state(int(entry.name)) not in (None, "Z"):
                    return True
            except OSError:
                continue
    return False


async def wait_gone(pid: int, timeout: float = 30) -> None:
    """Until nothing of the group `pid` lives on (or `timeout` fails the test)."""
    with trio.fail_after(timeout):
        while group_alive(pid):
            await trio.sleep(0.1)  # polling /proc for the death, under a deadline


def _project(root: Path, name: str) -> Path:
    """A git project `name` holding a file of its own, `only_<name>.txt`."""
    project = root / name
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / f"only_{name}.txt").write_text(f"content of {name}\n")
    return project


@attrs.define
class Running:
    """The running orchestrator with its two workers (alpha, beta) and a chat with each."""

    fake: FakeConvex
    orch: Orchestrator
    connections: ConvexConnections
    configs: list[WorkerConfig]
    chats: list[str]

    def report(self, n: int) -> WorkerReport:
        worker = self.orch.slots[self.configs[n].key].worker
        assert worker is not None
        return worker.report.value

    def pids(self) -> set[int | None]:
        return set(self.reported())

    def reported(self) -> list[int | None]:
        """The OpenCode server each worker reports, None for one that has none (or has left)."""
        return [self.orch.slots[c.key].opencode_pid for c in self.configs]

    def restarts(self) -> list[tuple[int, int, str]]:
        slots = [self.orch.slots[c.key] for c in self.configs]
        return [(s.attempts, s.restarts, s.state.value) for s in slots]


@asynccontextmanager
async def two_workers(
    tmp_path: Path,
    codes: list[int] | None = None,
    bin: str | None = None,
    names: tuple[str, str] = ("alpha", "beta"),
    **settings: object,
) -> AsyncIterator[Running]:
    """Two workers in the git projects alpha and beta (`names`: the same name twice puts both in
    one) sharing one OpenCode (`bin`, default the real one), both ready. `codes` gets `run()`'s
    exit code; without it the run must end cleanly."""
    made = {name: _project(tmp_path, name) for name in dict.fromkeys(names)}
    projects = [made[name] for name in names]
    fake = FakeConvex()
    labels = list(names) if len(made) == len(names) else [f"{name}-{n}" for n, name in enumerate(names)]
    created = [fake.create_worker(name=label) for label in labels]
    configs = [
        WorkerConfig(
            token=parse_token(c.token),
            convex_url="http://fake.convex",
            working_directory=p.resolve(),
            name=label,
        )
        for c, p, label in zip(created, projects, labels, strict=True)
    ]
    config = Settings(**{"opencode_server": "shared", **settings})  # type: ignore[arg-type]
    exits: list[int] = [] if codes is None else codes
    async with serve_fake_llm() as llm, in_process_connections(fake) as connections:
        orch = Orchestrator(
            {c.key: c for c in configs},
            config,
            worker_factory=worker_factory(
                opencode_bin=bin or opencode_bin(),
                state_dir=tmp_path / "state",
                opencode_env=opencode_env(tmp_path / "home", llm.base_url),
                catalog=fake_models(),
            ),
            connections=connections,
            policy=RestartPolicy(jitter=0.0),
            handle_signals=False,
            hard_exit=None,
        )

        async def main() -> None:
            exits.append(await orch.run())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(main)
            await orch.started.wait()
            with trio.fail_after(60):
                for c in configs:
                    await orch.slots[c.key].state.wait_value("ready")
            chats = [fake.start_session(c.worker_id) for c in created]
            try:
                yield Running(fake, orch, connections, configs, chats)
            finally:
                orch.request_stop("test")
        if codes is None:
            assert exits == [0]
        # Stopped with its workers: nothing of the shared server is left.
        assert connections.opencode.hosts.open_count.value == 0
