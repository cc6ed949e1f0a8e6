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
    from oco.orchestrator._instance import claim_for_command

    config = load_dotenv_config(Path.cwd(), args.env_file, working_directory=args.dir)
    settings = DEV_SETTINGS
    if args.shutdown_timeout is not None:
        settings = attrs.evolve(settings, shutdown_timeout_s=args.shutdown_timeout)
    env_file = args.env_file if args.env_file is not None else Path.cwd() / ".env"
    instance = claim_for_command(state_dir(), "dev", env_file)  # one dev per project's .env
    opencode_bin = find_opencode_bin(settings.opencode_bin)
    orchestrator = Orchestrator(
        {config.key: config},
        settings,
        worker_factory=worker_factory(settings, opencode_bin=opencode_bin, state_dir=state_dir()),
        instance=instance,
        notifier=SystemdNotifier.from_env(),
    )
    return trio.run(orchestrator.run, restrict_keyboard_interrupt_to_checkpoints=True)
