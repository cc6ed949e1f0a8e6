"""What the demo builds before anything runs: two git projects, workers.json, OpenCode's env.

Everything lives under one temporary root the caller removes once OpenCode has exited.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import json5
import trio

from oco.config import write_private_file
from oco.errors import OcoError, UsageError
from oco.opencode import OpenCodeNotFound, find_opencode_bin
from oco.testing import FAKE_MODEL, opencode_env

# The one prompt every worker gets. The fake LLM keys on "DEMO" (think, stream ~2 s, run `ls`);
# a real model reads the rest as an ordinary request that needs the same tool.
DEMO_PROMPT = (
    "DEMO: take a quick look at this project: run ls with your bash tool, then tell me what you found."
)

PROJECTS: dict[str, dict[str, str]] = {
    "alpha": {
        "README.md": "# alpha\n\nA command-line tool that greets people.\n",
        "greet.py": 'print("hello from alpha")\n',
    },
    "beta": {
        "README.md": "# beta\n\nA static web page.\n",
        "index.html": "<!doctype html><title>beta</title><p>hello from beta</p>\n",
        "style.css": "p { color: teal; }\n",
    },
}

# Demo settings: approval is noticed within a second, and two OpenCodes starting at once on a
# small machine get a minute; the rest are the product defaults.
DEMO_SETTINGS: dict[str, Any] = {
    "approval_poll_interval_s": 1,
    "shutdown_timeout_s": 10,
    "opencode_start_timeout_s": 60,
}


@attrs.frozen
class LLMChoice:
    """How OpenCode reaches a model: the config document it gets and the model chats ask for."""

    config_content: str | None  # None: the fake LLM's config (opencode_env writes it)
    model: str


async def make_project(root: Path, name: str, files: Mapping[str, str]) -> Path:
    """A small committed git repository at `root/name` holding `files`."""
    directory = root / name
    directory.mkdir(parents=True, mode=0o700)
    for filename, text in files.items():
        (directory / filename).write_text(text)
    identity = ["-c", "user.name=trio-oco demo", "-c", "user.email=demo@localhost"]
    try:
        for command in (["init", "-q"], ["add", "."], [*identity, "commit", "-q", "-m", "Initial commit"]):
            await trio.run_process(["git", *command], cwd=directory, capture_stdout=True, capture_stderr=True)
    except FileNotFoundError:
        raise OcoError("the demo needs git on PATH to create its example projects") from None
    return directory


def workers_document(convex_url: str, entries: Sequence[tuple[str, str, Path]]) -> str:
    """workers.json text for (name, token, working directory) entries plus the demo settings."""
    workers = [
        {"name": name, "token": token, "working_directory": str(directory), "convex_url": convex_url}
        for name, token, directory in entries
    ]
    return json.dumps({"workers": workers, "settings": DEMO_SETTINGS}, indent=2) + "\n"


def write_workers_file(path: Path, convex_url: str, entries: Sequence[tuple[str, str, Path]]) -> Path:
    """Write workers.json privately (0600: it holds tokens)."""
    return write_private_file(path, workers_document(convex_url, entries))


def read_opencode_config(path: Path) -> LLMChoice:
    """A user's OpenCode config (JSON or JSONC) naming a model; one-line errors otherwise."""
    try:
        document = json5.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the OpenCode config: {exc.strerror or exc}") from None
    except ValueError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "invalid JSON"
        raise UsageError(f"{path}: not valid JSON: {first_line}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path}: the OpenCode config must be a JSON object")
    model = document.get("model")
    if not isinstance(model, str) or "/" not in model:
        raise UsageError(f'{path}: set "model" to the "provider/model" the demo should ask for')
    return LLMChoice(json.dumps(document), model)


def demo_opencode_env(home: Path, llm_base_url: str | None, choice: LLMChoice) -> dict[str, str]:
    """OpenCode's environment: a private HOME and XDG dirs, pointed at the fake LLM or `choice`."""
    env = opencode_env(home, llm_base_url or "http://127.0.0.1:9/v1")
    # OpenCode (bun) unpacks native libraries into TMPDIR; keep them inside the demo's directory.
    scratch = home / "tmp"
    scratch.mkdir(mode=0o700, exist_ok=True)
    env["TMPDIR"] = str(scratch)
    if choice.config_content is not None:
        env["OPENCODE_CONFIG_CONTENT"] = choice.config_content
        # A real provider may need its npm package: give OpenCode back the user's registry.
        if "npm_config_registry" in os.environ:
            env["npm_config_registry"] = os.environ["npm_config_registry"]  # noqa: SIM112 - npm's own spelling
        else:
            env.pop("npm_config_registry", None)
    return env


def fake_llm_choice() -> LLMChoice:
    return LLMChoice(None, FAKE_MODEL)


def locate_opencode(configured: str | None) -> str:
    """The opencode binary: settings, `$OCO_OPENCODE_BIN`, PATH, else this checkout's node_modules."""
    try:
        return find_opencode_bin(configured)
    except OpenCodeNotFound as exc:
        for parent in Path(__file__).resolve().parents:
            candidate = parent / "node_modules" / ".bin" / "opencode"
            if candidate.exists() and os.access(candidate, os.X_OK):
                return str(candidate)
        raise UsageError(f"{exc} (scripts/demo installs it under node_modules)") from None
