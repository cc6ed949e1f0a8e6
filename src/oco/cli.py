"""The `trio-oco` command line: argument parsing, logging set-up and exit codes.

Exit codes everywhere: 0 ok, 1 runtime failure, 2 usage or configuration error.
An expected error (`OcoError`) is printed as one line, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
from collections.abc import Sequence

from oco.commands import COMMANDS
from oco.errors import OcoError


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in `argv` (None: every command) gets its module
    imported and its options added, the others are listed with their help alone."""
    parser = argparse.ArgumentParser(
        prog="trio-oco",
        description="Run OpenCode Orchestrator workers under one Trio supervisor.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    _add_global_options(parser, defaults={"log_level": None, "log_format": "text"})
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _chosen_command(argv)
    for name, module_name in COMMANDS:
        if argv is not None and name != chosen:
            # Listed by name; its help is only shown by `trio-oco --help` (no command chosen).
            help_text = _help_of(module_name) if chosen is None else None
            sub.add_parser(name, help=help_text, description=help_text)
            continue
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        # Also after the command (`trio-oco check --log-level DEBUG`): given there, they win;
        # not given, the value before the command stays (SUPPRESS sets nothing).
        _add_global_options(command, defaults=None)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


_HELP_LINE = re.compile(r"""^HELP = (["'])(.+?)\1$""", re.MULTILINE)


def _help_of(module_name: str) -> str:
    """A command module's `HELP`, read from its source without importing it (an import costs
    what the command imports); imported after all when the line is not a plain literal."""
    spec = importlib.util.find_spec(module_name)
    found = None
    if spec is not None and spec.origin is not None:
        try:
            with open(spec.origin, encoding="utf-8") as source:
                found = _HELP_LINE.search(source.read())
        except OSError:
            pass
    if found is not None and "\\" not in found.group(2):
        return found.group(2)
    return str(importlib.import_module(module_name).HELP)


def _chosen_command(argv: Sequence[str] | None) -> str | None:
    """The command `argv` names: its first word that is a command (option values are never
    command names: `--log-level` and `--log-format` take fixed words)."""
    names = {entry[0] for entry in COMMANDS}
    for word in sys.argv[1:] if argv is None else argv:
        if word in names:
            return word
    return None


class _Version(argparse.Action):
    """`--version`, reading the installed version only when asked (importlib.metadata is slow)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from oco import __version__

        print(f"trio-oco {__version__}")  # stdout, as argparse's own version action
        parser.exit()


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
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
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
    except BrokenPipeError:
        # `trio-oco status | head`: the reader left early; no traceback, and none at exit either.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
