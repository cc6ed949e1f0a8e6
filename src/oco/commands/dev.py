"""`trio-oco dev`: one worker from `.env` in the current directory, in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs
import trio

HELP = "run one worker from .env in the current directory (first-run setup on a terminal)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, help="the .env file to read (default: ./.env)")
    parser.add_argument("--dir", type=Path, help="the project directory (default: the current directory)")
    parser.add_argument(
        "--shutdown-timeout", type=float, metavar="S", help="seconds a graceful stop may take (default 10)"
    )


def run(args: argparse.Namespace) -> int:
    from oco.config import DEV_SETTINGS, load_dotenv_config, state_dir
    from oco.opencode import find_opencode_bin
    from oco.orchestrator import Orchestrator, SystemdNotifier, worker_factory

    config = load_dotenv_config(Path.cwd(), args.env_file, working_directory=args.dir)
    settings = DEV_SETTINGS
    if args.shutdown_timeout is not None:
        settings = attrs.evolve(settings, shutdown_timeout_s=args.shutdown_timeout)
    opencode_bin = find_opencode_bin(settings.opencode_bin)
    orchestrator = Orchestrator(
        {config.key: config},
        settings,
        worker_factory=worker_factory(opencode_bin=opencode_bin, state_dir=state_dir()),
        status_dir=state_dir(),
        notifier=SystemdNotifier.from_env(),
    )
    return trio.run(orchestrator.run, restrict_keyboard_interrupt_to_checkpoints=True)
