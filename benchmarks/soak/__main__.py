"""`python -m benchmarks.soak [--quick] [--prod] [--json FILE] [--messages N]`: the fault soak; exit 1 on a failed check."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import trio

from oco.testing import serve_fake_llm

from ._checks import evaluate
from ._scenario import SoakPlan, run_soak

REPO = Path(__file__).resolve().parents[3]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="at least 50 messages, under 10 minutes")
    parser.add_argument(
        "--prod",
        action="store_true",
        help="serve the fake Convex as a production deployment (errors redacted)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON here")
    parser.add_argument(
        "--messages", type=int, metavar="N", help="messages to send (default 100, 50 with --quick)"
    )
    args = parser.parse_args(argv)
    if args.messages is not None and args.messages < 10:
        parser.error("--messages must be at least 10")
    return args


async def _main(plan: SoakPlan, opencode_bin: str, root: Path) -> tuple[object, dict]:
    async with serve_fake_llm() as llm:
        return await run_soak(plan, llm, opencode_bin, root)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="soak: %(levelname)s %(name)s: %(message)s")
    opencode_bin = os.environ.get("OCO_OPENCODE_BIN") or str(REPO / "node_modules" / ".bin" / "opencode")
    if not Path(opencode_bin).exists():
        print(
            f"soak: no opencode at {opencode_bin}; run scripts/setup or set OCO_OPENCODE_BIN", file=sys.stderr
        )
        return 2
    if args.quick:
        plan = SoakPlan.quick(args.messages or 50, prod=args.prod)
    else:
        plan = SoakPlan(messages=args.messages or 100, prod=args.prod)
    with tempfile.TemporaryDirectory(prefix="oco-soak-") as scratch:
        facts, extra = trio.run(_main, plan, opencode_bin, Path(scratch) / "run")
    figures, failed = evaluate(facts)  # type: ignore[arg-type]
    output = extra.pop("output", "")
    if args.json:
        # The run's whole log, for reading a failure (checked for secrets above).
        args.json.with_suffix(".log").write_text(output)
    figures.update(extra)
    figures["quick"] = args.quick
    figures["passed"] = not failed
    width = max(map(len, figures))
    for name, value in figures.items():
        if name != "output_tail":
            print(f"{name:>{width}}: {value}")
    if extra.get("output_tail"):
        print(f"last lines of trio-oco run:\n{extra['output_tail']}", file=sys.stderr)
    for sentence in failed:
        print(f"soak: FAILED: {sentence}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
