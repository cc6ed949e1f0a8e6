"""`python -m benchmarks.bench [--quick] [--json FILE]`: run issue 7's benchmarks, print the table."""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from oco.config import Settings
from oco.testing import serve_fake_llm

from ._report import missed, table
from ._scenarios import (
    Bench,
    Plan,
    fifty_workers_sequential_stop,
    fifty_workers_start_and_stop,
    one_worker,
    twenty_workers,
)

REPO = Path(__file__).resolve().parents[3]
SCENARIOS = ("one", "twenty", "fifty", "fifty-seq")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer samples")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--transport",
        choices=("subscribe", "poll"),
        help="convex_transport for every run (default: trio-oco's default)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and its logs")
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="only this (repeatable)")
    return parser.parse_args(argv)


def _opencode_bin() -> str:
    found = os.environ.get("OCO_OPENCODE_BIN") or str(REPO / "node_modules" / ".bin" / "opencode")
    if not Path(found).exists():
        raise SystemExit(f"bench: no opencode at {found}; run scripts/setup first")
    return found


def machine(opencode_bin: str) -> dict[str, object]:
    """What the figures were measured on."""
    version = subprocess.run(
        [opencode_bin, "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "npm_config_registry": "http://127.0.0.1:9/"},
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "opencode": version.stdout.strip() or "unknown",
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def _guarded(name: str, errors: dict[str, str], step: Callable[[], Awaitable[object]]) -> object:
    """Run one scenario; a failure is reported and the others still run."""
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    started = trio.current_time()
    try:
        value = await step()
    except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others' figures
        errors[name] = f"{type(exc).__name__}: {exc}"
        print(f"bench: {name} failed:", file=sys.stderr, flush=True)
        traceback.print_exception(exc, file=sys.stderr)  # a bench failure is a bug to look at
        return None
    seconds = trio.current_time() - started
    print(f"bench: {name} done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return value


async def _main(args: argparse.Namespace, opencode_bin: str, scratch: Path) -> tuple[Bench, dict[str, str]]:
    wanted = set(args.only or SCENARIOS)
    errors: dict[str, str] = {}
    async with serve_fake_llm() as llm:
        settings = {"convex_transport": args.transport} if args.transport else {}
        plan = Plan.quick(settings) if args.quick else Plan(settings=settings)
        bench = Bench(plan, llm, opencode_bin, scratch)
        rss_one = None
        if "one" in wanted:
            rss_one = await _guarded("one worker", errors, lambda: one_worker(bench))
        if "twenty" in wanted:
            one_rss = rss_one if isinstance(rss_one, int) else None
            await _guarded("twenty workers", errors, lambda: twenty_workers(bench, one_rss))
        if "fifty" in wanted:
            await _guarded("fifty workers: start, stop", errors, lambda: fifty_workers_start_and_stop(bench))
        if "fifty-seq" in wanted:
            await _guarded(
                "fifty workers: sequential stop", errors, lambda: fifty_workers_sequential_stop(bench)
            )
    return bench, errors


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="bench: %(levelname)s %(name)s: %(message)s")
    opencode_bin = _opencode_bin()
    info = machine(opencode_bin)
    scratch = tempfile.mkdtemp(prefix="oco-bench-")
    try:
        started = datetime.datetime.now()
        bench, errors = trio.run(_main, args, opencode_bin, Path(scratch))
        elapsed = (datetime.datetime.now() - started).total_seconds()
    finally:
        if args.keep:
            print(f"bench: scratch directory kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    figures = bench.results.figures
    info["elapsed_s"] = round(elapsed)
    info["quick"] = args.quick
    info["convex_transport"] = args.transport or Settings().convex_transport
    print(table(figures, markdown=args.markdown))
    for name in missed(figures):
        print(f"target missed: {name}", file=sys.stderr)
    if args.json:
        meta = {"machine": info, "details": bench.results.details, "errors": errors}
        document = {**figures, "_meta": meta}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"bench: {elapsed:.0f} s; details: {json.dumps(bench.results.details)}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
