"""`trio-oco start`: `run` when a workers file exists, else `dev` when `./.env` exists.
`trio-oco start NAME`: start a stopped worker of the running orchestrator.

Why one command for both: pm2, supervisorctl and systemctl users type `start NAME` to start
one thing; `start` without a name keeps choosing the mode, so nothing a user typed before
changes meaning (a name is never needed to start the orchestrator itself).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "start the orchestrator (run, else dev), or with NAME start a stopped worker of a running one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from oco.commands import _control_cli

    parser.add_argument(
        "name",
        metavar="NAME",
        nargs="?",
        help="a stopped worker of the running orchestrator to start (its name or worker id, or `all`)",
    )
    parser.add_argument(
        "--shutdown-timeout", type=float, metavar="S", help="seconds a graceful stop may take"
    )
    _control_cli.add_choice_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.name is not None:
        from oco.commands import _control_cli

        return _control_cli.worker_command(args, "start")
    from oco.commands import dev
    from oco.commands import run as run_command
    from oco.commands._options import shutdown_timeout
    from oco.config import workers_file_path
    from oco.errors import UsageError

    shutdown_timeout(args.shutdown_timeout)  # said before choosing the mode, as dev and run say it
    workers_file = workers_file_path(args.config)
    if workers_file.is_file() and not args.env_file:
        return run_command.run(
            run_command.namespace(
                config=args.config,
                shutdown_timeout=args.shutdown_timeout,
                log_level=getattr(args, "log_level", None),
            )
        )
    env_file = Path(args.env_file) if args.env_file else Path.cwd() / ".env"
    if env_file.is_file():
        dev_args = argparse.Namespace(
            env_file=Path(args.env_file) if args.env_file else None,
            dir=None,
            shutdown_timeout=args.shutdown_timeout,
        )
        return dev.run(dev_args)
    raise UsageError(
        f"nothing to start: no workers file at {workers_file} (create it with `trio-oco init`, "
        f"then `trio-oco run`) and no .env in {Path.cwd()} (WORKER_TOKEN and CONVEX_URL, for `trio-oco dev`)"
    )
