"""`trio-oco status`: every running orchestrator of this user, from their status.json files.

Exit 0 when every worker of every running orchestrator is ready, 1 when one is not (any other
state, a stopped, parked or degraded worker, or one this version does not know), 3 when no
orchestrator is running (LSB's "program is not running", as supervisorctl 4.x's status).
`--watch` redraws the view every `--interval` seconds until Ctrl+C (exit 0).
`--json` (schema `version` 2): `{"version", "running", "orchestrators": [{"instance", "mode",
"source", "pid", "running", "started_at", "updated_at", "workers": [...]}]}`, times ISO 8601;
readers must ignore fields they do not know (new ones are added without a version change).

Imports stay few (no trio, no configuration loader): `status` answers in well under a second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

HELP = "show the running orchestrators' workers (exit 0 all ready, 1 not, 3 none running)"

JSON_VERSION = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON (ISO 8601 times)")
    parser.add_argument(
        "--watch", action="store_true", help="a live view, redrawn until Ctrl+C (like pm2 monit)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="S",
        help="--watch: seconds between redraws (default 2)",
    )
    parser.add_argument("--count", type=int, metavar="N", help="--watch: stop after N redraws")
    parser.add_argument("--config", metavar="PATH", help="only the orchestrator running this workers file")
    parser.add_argument("--env-file", metavar="PATH", help="only the orchestrator running this .env (dev)")


class _View:
    """What one look at the state directory found: running orchestrators, or the last one."""

    def __init__(self, args: argparse.Namespace) -> None:
        from oco.commands._control_cli import Outcome, running_instances
        from oco.orchestrator._instance import find_instances
        from oco.orchestrator._status import snapshot_from_json

        self.chosen = bool(args.config or args.env_file)
        self.problem: str | None = None
        try:
            found = running_instances(args)
        except Outcome as outcome:
            found = []
            self.problem = outcome.line
        self.running = [(f, _snapshot(f, snapshot_from_json)) for f in found]
        self.last = None
        if not self.running and not self.chosen:
            from oco.commands._control_cli import _state_dir

            stopped = [f for f in find_instances(_state_dir()) if not f.alive and f.status]
            if stopped:
                latest = max(stopped, key=lambda f: f.updated_at)
                self.last = (latest, _snapshot(latest, snapshot_from_json))

    def exit_code(self) -> int:
        if not self.running:
            return 3
        ready = all(s is not None and s.all_ready for _, s in self.running)
        return 0 if ready else 1

    def text(self, now: float) -> str:
        from oco.orchestrator._status_table import age, format_status_table

        if not self.running:
            lines = [self.problem or "no orchestrator is running"]
            if self.last is not None and self.last[1] is not None:
                snapshot = self.last[1]
                ago = age(now - snapshot.updated_at)
                lines[0] += (
                    f"; the last one (pid {snapshot.pid}) has stopped; its last status (updated {ago} ago):"
                )
                lines.append(format_status_table(snapshot, now=now))
            return "\n".join(lines)
        blocks = []
        for found, snapshot in self.running:
            if snapshot is None:
                blocks.append(f"{found.mode} {found.source}: pid {found.pid}, starting (no status yet)")
            else:
                blocks.append(format_status_table(snapshot, now=now))
        if len(self.running) > 1:
            blocks.append(
                f"{len(self.running)} orchestrators; for one of them: --config PATH (run) or --env-file PATH (dev)"
            )
        return "\n\n".join(blocks)

    def as_json(self) -> dict[str, Any]:
        from oco.orchestrator._status_table import worker_json

        orchestrators = []
        for found, snapshot in self.running:
            entry: dict[str, Any] = {
                "instance": found.name,
                "mode": found.mode,
                "source": found.source,
                "pid": found.pid,
                "running": True,
            }
            if snapshot is not None:
                from oco.orchestrator._status_table import iso_time

                entry.update(
                    started_at=iso_time(snapshot.started_at),
                    updated_at=iso_time(snapshot.updated_at),
                    workers=[worker_json(w) for w in snapshot.workers],
                )
            else:
                entry.update(started_at=None, updated_at=None, workers=[])
            orchestrators.append(entry)
        return {"version": JSON_VERSION, "running": bool(self.running), "orchestrators": orchestrators}


def _snapshot(found: Any, parse: Any) -> Any:
    try:
        return parse(found.status) if found.status is not None else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def run(args: argparse.Namespace) -> int:
    if args.watch:
        return _watch(args)
    view = _View(args)
    if args.json:
        print(json.dumps(view.as_json(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(view.text(time.time()))
    return view.exit_code()


def _watch(args: argparse.Namespace) -> int:
    if not args.interval > 0:
        from oco.errors import UsageError

        raise UsageError("--interval must be a number of seconds > 0")
    import trio

    from oco.commands._watch import watch

    def frame() -> str:
        return _View(args).text(time.time())

    try:
        trio.run(watch, frame, sys.stdout, args.interval, args.count)
    except KeyboardInterrupt:
        pass  # Ctrl+C is how a watch ends
    return 0
