"""What one shared `opencode serve` pays for each project directory it has not served yet.

OpenCode alone, without trio-oco's workers or Convex: one server in an empty directory, the fake
LLM, fresh git projects. Per round (a new server each): the server's first turn, warm turns, a
directory's first turn one at a time, the same after `OpenCodeClient.prepare()` (what a worker
does when the web app opens it), and N directories' first turns at the same moment. It shows the
floor OpenCode sets under `scripts/bench-opencode`'s `cold_turn_over_warm` and
`cold_burst_5_over_1` in shared mode: a directory's first turn costs about a second of OpenCode's
CPU, and N of them at once take nearly N times as long, whatever the worker does. It also
reads the server's memory (PSS) with one directory and with all of them, right after the burst
and after a quiet pause: what a directory costs the server for good, against what was garbage.
Usage: `.venv/bin/python scripts/bench_opencode_dirs.py [--rounds N] [--burst N] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import trio

from oco.demo._setup import locate_opencode
from oco.opencode import open_opencode_server, run_turn, view
from oco.testing import FAKE_MODEL, opencode_env, serve_fake_llm

ALONE = 3  # directories whose first turn is timed one at a time (and as many primed ones)
SETTLE_S = 5.0  # a quiet pause before a "settled" memory reading: OpenCode's collector catches up


async def _project(root: Path, name: str) -> Path:
    project = root / name
    project.mkdir()
    await trio.run_process(["git", "init", "-q", str(project)])
    (project / "README.md").write_text(f"{name}\n")
    return project.resolve()


async def _turn(server, directory: Path, text: str = "ECHO hi") -> float:
    """Seconds from creating a session in `directory` to the end of an `ECHO` turn."""
    backend = view(server, directory)
    start = time.perf_counter()
    session = await backend.client.create_session("bench")
    result = await run_turn(backend, session, text, FAKE_MODEL, timeout=120)
    if result.error is not None:
        raise RuntimeError(f"turn in {directory} failed: {result.error}")
    return time.perf_counter() - start


async def _round(root: Path, llm_url: str, burst: int, n: int) -> dict[str, float | list[float]]:
    here = root / f"round-{n}"
    here.mkdir()
    neutral = here / "neutral"
    neutral.mkdir()
    projects = [await _project(here, f"p{i}") for i in range(1 + 2 * ALONE + burst)]
    first, alone, primed, together = (
        projects[0],
        projects[1 : 1 + ALONE],
        projects[1 + ALONE : 1 + 2 * ALONE],
        projects[1 + 2 * ALONE :],
    )
    env = opencode_env(root / "home", llm_url)  # one home: its database is migrated once
    async with open_opencode_server(locate_opencode(None), neutral, env=env, global_events=True) as server:
        out: dict[str, float | list[float]] = {"server_first_turn_s": await _turn(server, first)}
        out["warm_turn_s"] = statistics.median([await _turn(server, first) for _ in range(3)])
        await trio.sleep(SETTLE_S)
        out["pss_one_dir_settled_mb"] = _pss_mb(server.pid)
        out["dir_first_turn_s"] = statistics.median(singles := [await _turn(server, p) for p in alone])
        out["dir_first_turns_s"] = singles
        prepares, after = [], []
        for p in primed:
            start = time.perf_counter()
            await view(server, p).client.prepare()
            prepares.append(time.perf_counter() - start)
            after.append(await _turn(server, p))
        out["prepare_s"] = statistics.median(prepares)
        out["dir_first_turn_after_prepare_s"] = statistics.median(after)
        times: list[float] = []
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for p in together:

                async def one(p: Path = p) -> None:
                    times.append(await _turn(server, p))

                nursery.start_soon(one)
        out[f"dir_first_turns_{burst}_at_once_s"] = time.perf_counter() - start
        out["pss_all_dirs_now_mb"] = _pss_mb(server.pid)
        await trio.sleep(SETTLE_S)
        out["pss_all_dirs_settled_mb"] = _pss_mb(server.pid)
        out["pss_per_extra_dir_settled_mb"] = (
            out["pss_all_dirs_settled_mb"] - out["pss_one_dir_settled_mb"]
        ) / (len(projects) - 1)
    return out


def _pss_mb(pid: int) -> float:
    """The server's proportional set size (its own pages, shared ones split), in MiB."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no Pss for pid {pid}")


async def measure(rounds: int, burst: int, root: Path) -> dict[str, float]:
    async with serve_fake_llm() as llm:
        results = [await _round(root, llm.base_url, burst, n) for n in range(rounds)]
    figures = {
        name: round(statistics.median(float(r[name]) for r in results), 3)  # type: ignore[arg-type]
        for name in results[0]
        if not isinstance(results[0][name], list)
    }
    single, warm = figures["dir_first_turn_s"], figures["warm_turn_s"]
    figures["dir_first_turn_over_warm"] = round(single / warm, 2)
    figures["dir_first_turn_after_prepare_over_warm"] = round(
        figures["dir_first_turn_after_prepare_s"] / warm, 2
    )
    figures[f"dir_first_turns_{burst}_at_once_over_1"] = round(
        figures[f"dir_first_turns_{burst}_at_once_s"] / single, 2
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--json", type=Path, metavar="FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oco-bench-dirs-") as tmp:
        figures = trio.run(measure, args.rounds, args.burst, Path(tmp))
    width = max(map(len, figures))
    print(f"{'name':<{width}}  value  (median of {args.rounds} rounds)")
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:g}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
