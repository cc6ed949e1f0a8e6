"""`trio-oco init`: write the workers file, or add a worker to the one there.

No file yet: the commented template, or on a terminal one real entry from the wizard. A file
already there: on a terminal the wizard adds a worker to it, editing the text so the other
workers and every comment stay (`oco.config._jsonc_edit`); without a terminal nothing is
written. `--force` replaces the file, after copying it to `workers.json.bak-<UTC time>`
(0600). The wizard validates every answer (re-asking until it is valid) and the file it
writes loads with `trio-oco check`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oco.config import (
    TOKEN_FORMAT,
    ConfigError,
    TokenError,
    load_workers_file,
    normalise_convex_url,
    parse_token,
    template_text,
    workers_file_path,
    write_private_file,
)
from oco.config._jsonc_edit import insert_worker
from oco.config._values import ValueProblem, resolve_working_directory
from oco.errors import UsageError

HELP = "write workers.json (a template, or on a terminal a worker entry; adds one to an existing file)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="workers file (default: see README)")
    parser.add_argument(
        "--force", action="store_true", help="replace an existing file (a copy is kept as <file>.bak-<time>)"
    )


def _ask_until_valid(ask: Callable[[str], str], prompt: str, check: Callable[[str], object]) -> str:
    while True:
        try:
            answer = ask(prompt).strip()
        except EOFError:
            raise UsageError("init cancelled") from None
        try:
            check(answer)
            return answer
        except (TokenError, ValueProblem) as exc:
            print(f"  {exc}; try again", file=sys.stderr)


def _check_name(name: str) -> None:
    if not name:
        raise ValueProblem("name is empty")


def wizard_entry(
    config_dir: Path,
    ask: Callable[[str], str] = input,
    ask_secret: Callable[[str], str] = getpass.getpass,
) -> dict[str, Any]:
    """Ask for one worker (token, directory, name, Convex URL): its workers-file entry, every
    answer already validated. The name defaults to the project directory's name."""
    token_prompt = f"Worker token ({TOKEN_FORMAT}; not echoed): "
    token = _ask_until_valid(ask_secret, token_prompt, parse_token)
    default_dir = os.getcwd()
    directory = _ask_until_valid(
        lambda p: ask(p) or default_dir,
        f"Project directory [{default_dir}]: ",
        lambda d: resolve_working_directory(d, config_dir),
    )
    resolved = resolve_working_directory(directory, config_dir)
    default_name = resolved.name or parse_token(token).worker_id
    name = _ask_until_valid(lambda p: ask(p) or default_name, f"Name [{default_name}]: ", _check_name)
    url_prompt = "Convex URL (https://<deployment>.convex.cloud): "
    url = _ask_until_valid(ask, url_prompt, normalise_convex_url)
    return {
        "name": name,
        "token": token,
        "working_directory": str(resolved),
        "convex_url": normalise_convex_url(url),
    }


def wizard_text(
    config_dir: Path,
    ask: Callable[[str], str] = input,
    ask_secret: Callable[[str], str] = getpass.getpass,
) -> str:
    """Ask for one worker and return a new workers file holding it."""
    body = json.dumps({"workers": [wizard_entry(config_dir, ask, ask_secret)]}, indent=2, ensure_ascii=False)
    header = "// trio-oco workers file (JSON5); README.md's Configuration section lists each field."
    return f"{header}\n{body}\n"


def backup_path(path: Path, now: float | None = None) -> Path:
    """`<file>.bak-<UTC time>` beside `path`, a name not taken yet."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    candidate = path.with_name(f"{path.name}.bak-{stamp}")
    count = 1
    while candidate.exists():
        count += 1
        candidate = path.with_name(f"{path.name}.bak-{stamp}-{count}")
    return candidate


def _back_up(path: Path) -> Path:
    """Copy `path` byte for byte to a new 0600 file (it may hold tokens)."""
    target = backup_path(path)
    data = path.read_bytes()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return target


def _is_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _yes(question: str) -> bool:
    try:
        answer = input(question).strip().lower()
    except EOFError:
        return False
    return answer in ("", "y", "yes")


def _add_to_existing(path: Path) -> int:
    """The wizard's worker appended to the file at `path`, its text otherwise untouched."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        insert_worker(text, {})  # can an entry go in at all? ask before asking the user
    except ValueError as exc:
        raise UsageError(f"{path}: cannot add a worker: {exc}; fix it, or replace it with --force") from None
    if not _yes(f"{path} exists. Add a worker to it? [Y/n] "):
        print("nothing written", file=sys.stderr)
        return 0
    entry = wizard_entry(path.parent)
    token = parse_token(entry["token"])
    new_key = f"{token.machine_id}:{token.worker_id}"
    try:
        known = load_workers_file(path, write_template=False).workers
    except ConfigError:
        known = ()  # no valid entry yet (e.g. the template's examples): nothing to collide with
    if any(w.key == new_key for w in known):
        raise UsageError(
            f"{path}: already has worker {token.worker_id} of machine {token.machine_id}; nothing written"
        )
    write_private_file(path, insert_worker(text, entry))
    loaded = load_workers_file(path, write_template=False)
    if not any(w.key == new_key for w in loaded.workers):  # pragma: no cover - the answers were checked
        raise UsageError(f"{path}: the added worker does not load; see `trio-oco check --config {path}`")
    others = len(loaded.workers) - 1
    print(
        f"added worker {entry['name']} to {path} ({others} other valid worker(s) kept); run `trio-oco check`"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    path = workers_file_path(args.config)
    terminal = _is_terminal()
    if path.exists() and not args.force:
        if not terminal:
            raise UsageError(
                f"{path}: already exists; run `trio-oco init` on a terminal to add a worker to it,"
                " or use --force to replace it (a backup is kept)"
            )
        return _add_to_existing(path)
    text, from_wizard = template_text(), False
    if terminal and _yes("Add a worker now? [Y/n] "):
        text, from_wizard = wizard_text(path.parent), True
    backup = None
    try:
        if path.exists():
            backup = _back_up(path)
        write_private_file(path, text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    if backup is not None:
        print(f"kept the previous file as {backup}")
    if not from_wizard:
        print(f"wrote a template to {path}; fill in each worker, then run `trio-oco check`")
        return 0
    load_workers_file(path)  # the answers were checked one by one; check the file as a whole
    print(f"wrote {path} with one worker; run `trio-oco check` to see it")
    return 0
