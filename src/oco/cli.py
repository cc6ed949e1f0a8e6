"""The `trio-oco` command line: argument parsing, logging set-up and exit codes.

Exit codes everywhere: 0 ok, 1 runtime failure, 2 usage or configuration error.
An expected error (`OcoError`) is printed as one line, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from oco import __version__
from oco.commands import COMMANDS
from oco.errors import OcoError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-oco",
        description="Run OpenCode Orchestrator workers under one Trio supervisor.",
    )
    parser.add_argument("--version", action="version", version=f"trio-oco {__version__}")
    _add_global_options(parser, defaults={"log_level": None, "log_format": "text"})
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS:
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        # Also after the command (`trio-oco check --log-level DEBUG`): given there, they win;
        # not given, the value before the command stays (SUPPRESS sets nothing).
        _add_global_options(command, defaults=None)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: dict[str, object] | None) -> None:
    def default(name: str) -> object:
        return argparse.SUPPRESS if defaults is None else defaults[name]

    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        default=default("log_level"),
        help="log level (default: the settings' log_level, else INFO)",
    )
    parser.add_argument(
        "--log-format", choices=["text", "json"], default=default("log_format"), help="log line format"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    from oco.logs import setup_logging

    setup_logging(level=args.log_level or "INFO", fmt=args.log_format)
    try:
        return int(args._run(args))
    except OcoError as exc:
        print(f"trio-oco: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
