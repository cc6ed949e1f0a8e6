"""`trio-oco check`: load workers.json and show, per entry, whether it will run and why not.

Exit 0 when every entry is valid, 1 when some were skipped, 2 when none is valid or the
file itself is bad or missing. Never prints a secret. `--online` also asks each valid
worker's deployment whether the worker exists and is approved, and finds OpenCode and its
version (one line per worker, `_online.py`); any answer but "approved" (or no OpenCode) is
exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys

from oco.config import (
    ConfigError,
    ConfigProblem,
    LoadedConfig,
    load_workers_file,
    workers_file_path,
)

HELP = "validate workers.json and show which workers would run"

_COLUMNS = ("name", "machine", "worker", "directory", "convex url", "status")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="workers file (default: see README)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--online",
        action="store_true",
        help="also ask each worker's deployment whether it exists and is approved, and find opencode",
    )


def _rows(loaded: LoadedConfig | None, problems: tuple[ConfigProblem, ...]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for w in loaded.workers if loaded else ():
        status = "ok" if w.enabled else "ok (disabled)"
        directory = str(w.working_directory)
        rows.append((w.name, w.machine_id, w.worker_id, directory, w.convex_url, status))
    for p in problems:
        entry, _, field = p.json_path.partition(".")
        reason = f"{field}: {p.message}" if field else p.message
        rows.append((entry, "-", "-", "-", "-", f"skipped: {reason}"))
    return rows


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS) - 1)]
    lines = []
    for row in [tuple(c.upper() for c in _COLUMNS), *rows]:
        cells = [c.ljust(width) for c, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _as_json(
    path: str, loaded: LoadedConfig | None, problems, error: str | None, online: dict | None = None
) -> str:
    return json.dumps(
        {
            **({"online": online} if online is not None else {}),
            "path": path,
            "ok": error is None and not problems,
            "error": error,
            "workers": [
                {
                    "name": w.name,
                    "machine_id": w.machine_id,
                    "worker_id": w.worker_id,
                    "working_directory": str(w.working_directory),
                    "convex_url": w.convex_url,
                    "enabled": w.enabled,
                }
                for w in (loaded.workers if loaded else ())
            ],
            "problems": [{"json_path": p.json_path, "message": p.message} for p in problems],
        },
        indent=2,
        ensure_ascii=False,
    )


def _online(loaded: LoadedConfig) -> tuple[bool, list[str], dict]:
    """Ask the deployments and find opencode: (all fine, one line per worker, the JSON form)."""
    import trio

    from oco.commands._online import ask_backends, find_opencode
    from oco.config import state_dir

    opencode = find_opencode(loaded.settings.opencode_bin, state_dir())
    answers = trio.run(ask_backends, loaded.workers)
    width = max([len("opencode")] + [len(a.name) for a in answers])
    lines = [f"{a.name.ljust(width)}  {a.state:<11}  {a.detail}" for a in answers]
    lines.append(f"{'opencode'.ljust(width)}  {'found' if opencode.ok else 'missing':<11}  {opencode.detail}")
    document = {
        "workers": [
            {"name": a.name, "convex_url": a.convex_url, "ok": a.ok, "state": a.state, "detail": a.detail}
            for a in answers
        ],
        "opencode": {
            "ok": opencode.ok,
            "path": opencode.path,
            "version": opencode.version,
            "detail": opencode.detail,
        },
    }
    return opencode.ok and all(a.ok for a in answers), lines, document


def run(args: argparse.Namespace) -> int:
    path = workers_file_path(args.config)
    try:
        loaded = load_workers_file(path, write_template=False)  # check only reads
    except ConfigError as exc:
        if args.json:
            print(_as_json(str(path), None, exc.problems, str(exc)))
            return exc.exit_code
        if exc.problems:
            print(_table(_rows(None, exc.problems)))
        raise
    online_ok, online_lines, online = _online(loaded) if args.online else (True, [], None)
    if args.json:
        print(_as_json(str(loaded.path), loaded, loaded.problems, None, online))
    else:
        print(f"{loaded.path}:")
        print(_table(_rows(loaded, loaded.problems)))
        if online_lines:
            print("online:")
            print("\n".join(online_lines))
        skipped = len({p.json_path.split(".", 1)[0] for p in loaded.problems})
        enabled = len(loaded.enabled_workers)
        print(f"{enabled} worker(s) would run, {skipped} entry(ies) skipped", file=sys.stderr)
    return 1 if loaded.problems or not online_ok else 0
