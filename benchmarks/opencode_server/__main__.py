"""`python -m benchmarks.opencode_server [--quick] [--mode M] [--only S] [--json FILE] [--markdown]`.

Runs issue 16's scenarios once per `opencode_server` mode (per-worker, then shared when this
trio-oco has the setting) and prints one table with both side by side.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import attrs
import trio

from benchmarks.bench.__main__ import _opencode_bin, machine
from oco.config import Settings

from ._report import missed, table
from ._scenarios import SCENARIOS, ModeBench, Plan, derive, say
from ._timed_llm import serve_timed_llm

MODES = ("per-worker", "shared")


def supported_modes() -> list[str]:
    """Both modes once this trio-oco has the `opencode_server` setting; per-worker (today's
    behaviour, no setting written) before that."""
    return list(MODES) if "opencode_server" in attrs.fields_dict(Settings) else ["per-worker"]


def mode_settings(mode: str) -> dict[str, Any]:
    return {"opencode_server": mode} if "opencode_server" in attrs.fields_dict(Settings) else {}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench-opencode", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument("--mode", choices=MODES, action="append", help="only this mode (repeatable)")
    parser.add_argument("--only", choices=list(SCENARIOS), action="append", help="only this scenario")
    parser.add_argument("--busy-workers", type=int, help="workers streaming at once (10)")
    parser.add_argument("--cold-turns", type=int, help="first turns measured once a server is up (9)")
    parser.add_argument("--connect-workers", type=int, help="workers of the opened-first-turn run (7)")
    parser.add_argument("--throughput-workers", type=int, help="workers of the throughput run (20)")
    parser.add_argument("--throughput-messages", type=int, help="messages of the throughput run (100)")
    parser.add_argument("--burst-workers", type=int, help="workers of the cold burst (5)")
    parser.add_argument("--completion-samples", type=int, help="SLOW answers timed (3)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and its logs")
    return parser.parse_args(argv)


def _plan(args: argparse.Namespace) -> Plan:
    plan = Plan.quick() if args.quick else Plan()
    changes = {
        name: getattr(args, name)
        for name in (
            "busy_workers",
            "cold_turns",
            "connect_workers",
            "throughput_workers",
            "throughput_messages",
            "burst_workers",
            "completion_samples",
        )
        if getattr(args, name) is not None
    }
    plan = attrs.evolve(plan, **changes)
    return attrs.evolve(plan, cold_turns=min(plan.cold_turns, plan.busy_workers - 1))


async def _main(
    args: argparse.Namespace, plan: Plan, modes: list[str], opencode_bin: str, scratch: Path
) -> dict[str, ModeBench]:
    wanted = args.only or list(SCENARIOS)
    benches: dict[str, ModeBench] = {}
    async with serve_timed_llm() as (llm, timed):
        for mode in modes:
            bench = ModeBench(mode, mode_settings(mode), plan, llm, timed, opencode_bin, scratch)
            benches[mode] = bench
            for name in wanted:
                print(f"bench-opencode: {mode}: {name} ...", file=sys.stderr, flush=True)
                started = trio.current_time()
                try:
                    await SCENARIOS[name](bench)
                except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others
                    bench.results.errors[name] = f"{type(exc).__name__}: {exc}"
                    print(f"bench-opencode: {mode}: {name} failed:", file=sys.stderr, flush=True)
                    traceback.print_exception(exc, file=sys.stderr)
                    continue
                say(f"{name} done in {trio.current_time() - started:.0f} s")
            derive(bench.results)
    return benches


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="bench-opencode: %(levelname)s %(name)s: %(message)s")
    plan = _plan(args)
    available = supported_modes()
    modes = [m for m in (args.mode or MODES) if m in available]
    if not modes:
        print(
            "bench-opencode: this trio-oco has no opencode_server setting: only per-worker runs",
            file=sys.stderr,
        )
        return 2
    opencode_bin = _opencode_bin()
    info = machine(opencode_bin)
    scratch = tempfile.mkdtemp(prefix="oco-bench-opencode-")
    try:
        started = datetime.datetime.now()
        benches = trio.run(_main, args, plan, modes, opencode_bin, Path(scratch))
        elapsed = (datetime.datetime.now() - started).total_seconds()
    finally:
        if args.keep:
            print(f"bench-opencode: scratch directory kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    results: dict[str, dict[str, float] | None] = {
        m: (benches[m].results.figures if m in benches else None) for m in MODES
    }
    print(table(results, markdown=args.markdown))
    for name in missed(results):
        print(f"target missed: {name}", file=sys.stderr)
    if "shared" not in available:
        print("bench-opencode: shared: n/a (no opencode_server setting in this trio-oco)", file=sys.stderr)
    info.update(elapsed_s=round(elapsed), quick=args.quick, plan=attrs.asdict(plan))
    errors = {m: b.results.errors for m, b in benches.items() if b.results.errors}
    if args.json:
        document = {
            "figures": results,
            "details": {m: b.results.details for m, b in benches.items()},
            "errors": errors,
            "machine": info,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    details = {m: b.results.details for m, b in benches.items()}
    print(f"bench-opencode: {elapsed:.0f} s; details: {json.dumps(details)}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
