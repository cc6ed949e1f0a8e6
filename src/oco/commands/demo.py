"""`trio-oco demo`: the whole product offline in one command (see `oco.demo`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "show the whole product offline: fake Convex and LLM, two workers, a real OpenCode"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the scripted chats, send each line of stdin to the first worker (until Ctrl+C/EOF)",
    )
    parser.add_argument(
        "--opencode-config",
        type=Path,
        metavar="FILE",
        help='an OpenCode config (JSON) with a real provider and a "model" to use instead of the fake LLM',
    )


def run(args: argparse.Namespace) -> int:
    from oco.demo import DemoOptions, run_demo
    from oco.testing import require_hypercorn

    require_hypercorn("trio-oco demo")

    if getattr(args, "log_level", None) is None:
        # The demo's own output is the show; logs stay on stderr for warnings unless asked.
        logging.getLogger().setLevel(logging.WARNING)
    return run_demo(DemoOptions(keep_running=args.keep_running, opencode_config=args.opencode_config))
