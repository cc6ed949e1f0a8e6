"""`trio-oco start`: `run` when a workers file exists, else `dev` when `./.env` exists."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run workers.json if it exists, else the .env of the current directory (dev)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shutdown-timeout", type=float, metavar="S", help="seconds a graceful stop may take"
    )


def run(args: argparse.Namespace) -> int:
    from oco.commands import dev
    from oco.commands import run as run_command
    from oco.commands._options import shutdown_timeout
    from oco.config import workers_file_path
    from oco.errors import UsageError

    shutdown_timeout(args.shutdown_timeout)  # said before choosing the mode, as dev and run say it
    workers_file = workers_file_path()
    if workers_file.is_file():
        return run_command.run(
            run_command.namespace(
                shutdown_timeout=args.shutdown_timeout, log_level=getattr(args, "log_level", None)
            )
        )
    env_file = Path.cwd() / ".env"
    if env_file.is_file():
        dev_args = argparse.Namespace(env_file=None, dir=None, shutdown_timeout=args.shutdown_timeout)
        return dev.run(dev_args)
    raise UsageError(
        f"nothing to start: no workers file at {workers_file} (create it with `trio-oco init`, "
        f"then `trio-oco run`) and no .env in {Path.cwd()} (WORKER_TOKEN and CONVEX_URL, for `trio-oco dev`)"
    )
