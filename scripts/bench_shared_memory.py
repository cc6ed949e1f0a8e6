"""RSS of one shared `opencode serve` serving N project directories (one tool turn each), against
one per-worker server that served one. A quick check beside docs/benchmarks.md's busy-memory rows.
Usage: `.venv/bin/python scripts/bench_shared_memory.py [N]` (default 5).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import trio

from oco.demo._setup import locate_opencode
from oco.opencode import open_opencode_server, run_turn, view
from oco.testing import FAKE_MODEL, opencode_env, serve_fake_llm


def rss_of_group(pgid: int) -> int:
    """MB of resident memory of every process in the group (the server and what it spawned)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{pid}/status") as status:
                total += sum(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        except OSError:
            continue
    return total // 1024


async def main(count: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="oco-bench-shared-"))
    projects = []
    for n in range(count):
        project = root / f"project{n}"
        project.mkdir()
        await trio.run_process(["git", "init", "-q", str(project)])
        projects.append(project)
    neutral = root / "neutral"
    neutral.mkdir()
    opencode = locate_opencode(None)
    async with serve_fake_llm() as llm:
        env = opencode_env(root / "home", llm.base_url)
        async with open_opencode_server(opencode, neutral, env=env, global_events=True) as server:
            views = [view(server, p) for p in projects]
            sessions = [await v.client.create_session("memory") for v in views]
            async with trio.open_nursery() as nursery:
                for v, s in zip(views, sessions, strict=True):
                    nursery.start_soon(lambda v=v, s=s: run_turn(v, s, "BASH ls", FAKE_MODEL, timeout=60))
            print(
                f"one shared server, {count} directories, one tool turn each: {rss_of_group(server.pid)} MB"
            )
        async with open_opencode_server(opencode, projects[0], env=env) as own:
            session = await own.client.create_session("memory")
            await run_turn(own, session, "BASH ls", FAKE_MODEL, timeout=60)
            print(f"one per-worker server, one directory, one tool turn: {rss_of_group(own.pid)} MB")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 5)
