"""What `restart`, `stop`, `start NAME` and `reload` share: find the orchestrator, ask it, say
what happened in one line, and exit like supervisorctl 4.x (its `LSBInitExitStatuses`).

Exit codes: 0 done (also when nothing had to change: already stopped, already running), 1 the
orchestrator refused or failed (unknown worker, a workers file that does not load, stopping),
2 usage (the choice is ambiguous: say which orchestrator with `--config` or `--env-file`),
3 not available in that mode (reload of `dev`: LSB's "unimplemented feature"), 7 no
orchestrator is running (LSB's "program is not running").

Standard library only at import time: these commands must answer fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

OK, FAILED, USAGE, UNIMPLEMENTED, NOT_RUNNING = 0, 1, 2, 3, 7

_EXIT_BY_ERROR = {"unknown_worker": FAILED, "unavailable": UNIMPLEMENTED, "stopping": FAILED}


def add_choice_arguments(parser: argparse.ArgumentParser) -> None:
    """`--config` / `--env-file`: which orchestrator, when several run."""
    parser.add_argument("--config", metavar="PATH", help="the orchestrator running this workers file (`run`)")
    parser.add_argument("--env-file", metavar="PATH", help="the orchestrator running this .env (`dev`)")
    parser.add_argument(
        "--json", action="store_true", help="print the machine-readable reply (one JSON line)"
    )


class Outcome(Exception):
    """The command ends here: `line` (stdout on success, stderr otherwise) and `code`."""

    def __init__(
        self, code: int, line: str, reply: dict[str, Any] | None = None, error_code: str = ""
    ) -> None:
        super().__init__(line)
        self.code = code
        self.line = line
        self.reply = reply or {
            "v": 1,
            "ok": False,
            "error": {"code": error_code or "not_running", "message": line},
        }


def _state_dir() -> Path:
    from oco.config import state_dir

    return state_dir()


def describe(found: Any) -> str:
    pid = f"pid {found.pid}" if found.pid is not None else "pid ?"
    return f"{found.mode} {found.source} ({pid})"


CHOOSE = "choose one with --config PATH (run) or --env-file PATH (dev)"


def running_instances(args: argparse.Namespace) -> list[Any]:
    """The running orchestrators `args` allows (all of them without `--config`/`--env-file`)."""
    from oco.orchestrator._instance import find_instances

    alive = [found for found in find_instances(_state_dir()) if found.alive]
    wanted = None
    if getattr(args, "config", None):
        wanted = ("run", str(Path(os.path.expanduser(args.config)).resolve()))
    elif getattr(args, "env_file", None):
        wanted = ("dev", str(Path(os.path.expanduser(args.env_file)).resolve()))
    if wanted is not None:
        chosen = [f for f in alive if (f.mode, f.source) == wanted]
        if not chosen:
            raise Outcome(NOT_RUNNING, f"no orchestrator is running {wanted[1]} ({wanted[0]})")
        return chosen
    if not alive:
        raise Outcome(
            NOT_RUNNING, "no orchestrator is running (start one with `trio-oco run` or `trio-oco dev`)"
        )
    return alive


def ask(found: Any, cmd: str, worker: str | None = None) -> dict[str, Any]:
    """The reply of `found`'s orchestrator; `Outcome(7)` when it has gone meanwhile."""
    from oco.orchestrator._control_client import ControlFailed, NotRunning, send

    try:
        return send(found.socket_path, cmd, worker)
    except NotRunning:
        raise Outcome(NOT_RUNNING, f"the orchestrator {describe(found)} does not answer (stopped?)") from None
    except ControlFailed as exc:
        raise Outcome(FAILED, str(exc), error_code="failed") from None


def _names(row: dict[str, Any]) -> set[str]:
    return {str(row.get("name")), str(row.get("worker_id")), str(row.get("key"))}


def holder_of(args: argparse.Namespace, worker: str) -> Any:
    """The one running orchestrator that has `worker` (or the only one, for `all`)."""
    candidates = running_instances(args)
    if len(candidates) == 1:
        return candidates[0]
    if worker == "all":
        shown = "; ".join(describe(f) for f in candidates)
        raise Outcome(
            USAGE,
            f"'all' is ambiguous: {len(candidates)} orchestrators run ({shown}); {CHOOSE}",
            error_code="ambiguous",
        )
    holders: list[Any] = []
    known: list[str] = []
    for found in candidates:
        reply = ask(found, "workers")
        rows = reply.get("result", {}).get("workers", []) if reply.get("ok") else []
        known.extend(str(row.get("name")) for row in rows)
        if any(worker in _names(row) for row in rows):
            holders.append(found)
    if not holders:
        names = ", ".join(sorted(set(known))) or "none"
        raise Outcome(
            FAILED,
            f"no worker named {worker!r} in any running orchestrator (workers: {names})",
            error_code="unknown_worker",
        )
    if len(holders) > 1:
        shown = "; ".join(describe(f) for f in holders)
        raise Outcome(
            USAGE,
            f"{worker!r} is a worker of {len(holders)} orchestrators ({shown}); {CHOOSE}",
            error_code="ambiguous",
        )
    return holders[0]


def finish(args: argparse.Namespace, reply: dict[str, Any], line: str) -> int:
    """Print the outcome of an answered request and return its exit code."""
    if args.json:
        print(json.dumps(reply, ensure_ascii=False))
    if reply.get("ok"):
        if not args.json:
            print(line)
        return OK
    error = reply.get("error") or {}
    if not args.json:
        print(
            f"trio-oco: {_one_line(str(error.get('message', 'the orchestrator refused')))}", file=sys.stderr
        )
    return _EXIT_BY_ERROR.get(str(error.get("code")), FAILED)


def _one_line(text: str) -> str:
    from oco._text import external

    return external(text.splitlines()[0] if text.strip() else text, 300)


def run_outcome(args: argparse.Namespace, body: Any) -> int:
    """Run `body()` (which returns an exit code) turning an `Outcome` into its line and code."""
    try:
        return int(body())
    except Outcome as outcome:
        if args.json:
            print(json.dumps(outcome.reply, ensure_ascii=False))
        else:
            print(f"trio-oco: {outcome.line}", file=sys.stderr)
        return outcome.code


# -- the worker commands ---------------------------------------------------------------------

_DONE = {"start": "started", "stop": "stopped", "restart": "restarted"}


def _change_line(cmd: str, result: dict[str, Any]) -> str:
    row = result.get("worker", {})
    name = _one_line(str(row.get("name", "?")))
    if cmd == "stop":
        if result.get("changed"):
            return f"{name}: stopped (offline; stays stopped, also across reloads, until `trio-oco start {name}`)"
        return f"{name}: already stopped"
    if cmd == "start" and not result.get("changed"):
        return f"{name}: already running ({_one_line(str(row.get('state', '?')))})"
    return f"{name}: {_DONE[cmd]}"


def worker_command(args: argparse.Namespace, cmd: str) -> int:
    """`trio-oco start|stop|restart NAME` (NAME may be `all`)."""

    def body() -> int:
        found = holder_of(args, args.name)
        reply = ask(found, cmd, args.name)
        result = reply.get("result") or {}
        if "workers" in result:  # all
            names = ", ".join(_one_line(str(c["worker"].get("name"))) for c in result["workers"])
            line = f"{_DONE[cmd]} {len(result['workers'])} worker(s): {names or 'none'}"
        else:
            line = _change_line(cmd, result)
        return finish(args, reply, line)

    return run_outcome(args, body)


def add_worker_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("name", metavar="NAME", help=f"the worker to {verb}: its name or worker id, or `all`")
    add_choice_arguments(parser)
