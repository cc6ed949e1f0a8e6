"""`trio-oco status`: what the running orchestrator last wrote to status.json.

Exit 0 when every worker is ready, 1 when one is not, 3 when no orchestrator is running
(no status file, or its pid is gone or no longer holds the lock).
"""

from __future__ import annotations

import argparse
import json
import os

HELP = "show the running orchestrator's workers (exit 0 all ready, 1 not, 3 not running)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON")


def _lock_pid(path: os.PathLike[str]) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def run(args: argparse.Namespace) -> int:
    import attrs

    from oco.config import state_dir
    from oco.orchestrator import (
        LOCK_FILE,
        STATUS_FILE,
        format_status_table,
        pid_alive,
        read_status,
        status_exit_code,
    )

    directory = state_dir()
    snapshot = read_status(directory / STATUS_FILE)
    # The lock file names its holder while held: a dead pid, or a pid reused by another
    # process that does not hold the lock, both mean "not running".
    alive = (
        snapshot is not None and pid_alive(snapshot.pid) and _lock_pid(directory / LOCK_FILE) == snapshot.pid
    )
    code = status_exit_code(snapshot, alive=alive)
    if args.json:
        data = attrs.asdict(snapshot) if snapshot is not None else {}
        print(json.dumps({"running": alive, **data}, indent=2, sort_keys=True))
    elif snapshot is None:
        print(f"no orchestrator is running (no status file in {directory})")
    elif not alive:
        print(f"no orchestrator is running (pid {snapshot.pid} has stopped); last status:")
        print(format_status_table(snapshot))
    else:
        print(format_status_table(snapshot))
    return code
