"""`trio-oco init`: write the commented workers.json template, or on a terminal one real entry.

Never overwrites an existing file without `--force`. The wizard validates every answer
(re-asking until it is valid) and the file it writes loads with `trio-oco check`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from oco.config import (
    TOKEN_FORMAT,
    TokenError,
    load_workers_file,
    normalise_convex_url,
    parse_token,
    template_text,
    workers_file_path,
    write_private_file,
)
from oco.config._values import ValueProblem, resolve_working_directory
from oco.errors import UsageError

HELP = "write a workers.json template (or, on a terminal, one worker entry)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="workers file (default: see README)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")


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


def wizard_text(
    config_dir: Path,
    ask: Callable[[str], str] = input,
    ask_secret: Callable[[str], str] = getpass.getpass,
) -> str:
    """Ask for one worker and return a workers file holding it (answers already validated)."""
    token_prompt = f"Worker token ({TOKEN_FORMAT}; not echoed): "
    token = _ask_until_valid(ask_secret, token_prompt, parse_token)
    default_dir = os.getcwd()
    directory = _ask_until_valid(
        lambda p: ask(p) or default_dir,
        f"Project directory [{default_dir}]: ",
        lambda d: resolve_working_directory(d, config_dir),
    )
    url_prompt = "Convex URL (https://<deployment>.convex.cloud): "
    url = _ask_until_valid(ask, url_prompt, normalise_convex_url)
    entry = {
        "token": token,
        "working_directory": str(resolve_working_directory(directory, config_dir)),
        "convex_url": normalise_convex_url(url),
    }
    body = json.dumps({"workers": [entry]}, indent=2, ensure_ascii=False)
    header = "// trio-oco workers file (JSON5); README.md's Configuration section lists each field."
    return f"{header}\n{body}\n"


def run(args: argparse.Namespace) -> int:
    path = workers_file_path(args.config)
    if path.exists() and not args.force:
        raise UsageError(f"{path}: already exists; use --force to overwrite it")
    text, from_wizard = template_text(), False
    if sys.stdin.isatty() and sys.stdout.isatty():
        try:
            answer = input("Add a worker now? [Y/n] ").strip().lower()
        except EOFError:
            answer = "n"
        if answer in ("", "y", "yes"):
            text, from_wizard = wizard_text(path.parent), True
    try:
        write_private_file(path, text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    if not from_wizard:
        print(f"wrote a template to {path}; fill in each worker, then run `trio-oco check`")
        return 0
    load_workers_file(path)  # the answers were checked one by one; check the file as a whole
    print(f"wrote {path} with one worker; run `trio-oco check` to see it")
    return 0
