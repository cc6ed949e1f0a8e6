"""`trio-oco restart NAME|all`: stop a worker of the running orchestrator and start it afresh."""

from __future__ import annotations

import argparse

from oco.commands import _control_cli

HELP = "restart one worker (or all) of the running orchestrator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _control_cli.add_worker_arguments(parser, "restart")


def run(args: argparse.Namespace) -> int:
    return _control_cli.worker_command(args, "restart")
