"""`trio-oco stop NAME`: stop one worker (set offline); it stays stopped, across reloads too,
until `trio-oco start NAME` (the orchestrator itself keeps running: Ctrl+C or SIGTERM stops it)."""

from __future__ import annotations

import argparse

from oco.commands import _control_cli

HELP = "stop one worker (or all) of the running orchestrator; it stays stopped until started"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _control_cli.add_worker_arguments(parser, "stop")


def run(args: argparse.Namespace) -> int:
    return _control_cli.worker_command(args, "stop")
