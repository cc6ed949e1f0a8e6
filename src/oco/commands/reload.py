"""`trio-oco reload`: the running `run` orchestrator re-reads its workers file (as on SIGHUP) and
prints what it changed in one line."""

from __future__ import annotations

import argparse

from oco.commands import _control_cli

HELP = "re-read the workers file of the running orchestrator (like SIGHUP) and say what changed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _control_cli.add_choice_arguments(parser)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        candidates = _control_cli.running_instances(args)
        runs = [found for found in candidates if found.mode == "run"] or candidates
        if len(runs) > 1:
            shown = "; ".join(_control_cli.describe(f) for f in runs)
            raise _control_cli.Outcome(
                _control_cli.USAGE,
                f"{len(runs)} orchestrators run ({shown}); {_control_cli.CHOOSE}",
                error_code="ambiguous",
            )
        found = runs[0]
        reply = _control_cli.ask(found, "reload")
        summary = (reply.get("result") or {}).get("summary", "")
        return _control_cli.finish(args, reply, summary)

    return _control_cli.run_outcome(args, body)
