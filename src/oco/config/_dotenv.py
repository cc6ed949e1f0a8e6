"""Dev mode's single worker from `.env` (WORKER_TOKEN, CONVEX_URL), with first-run set-up.

Real environment variables win over the file. On a terminal, missing or invalid keys are
asked for (the token without echo) and written back with python-dotenv's `set_key`, which
keeps every other key and comment; the file is mode 0600. Without a terminal the first
problem is a `ConfigError` naming the key and the file.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import dotenv

from oco.config._errors import ConfigError, TokenError
from oco.config._model import Settings, Token, WorkerConfig
from oco.config._token import TOKEN_FORMAT, parse_token
from oco.config._values import ValueProblem, normalise_convex_url, resolve_working_directory
from oco.logs import register_secret

# Dev mode stops sooner than the orchestrator: a developer is waiting at the terminal.
DEV_SETTINGS = Settings(shutdown_timeout_s=10.0)

TOKEN_KEY = "WORKER_TOKEN"
URL_KEY = "CONVEX_URL"
_PROMPTS = {
    TOKEN_KEY: f"Worker token ({TOKEN_FORMAT}, from the web app; not echoed): ",
    URL_KEY: "Convex URL (https://<deployment>.convex.cloud): ",
}


def _check(key: str, value: str) -> Token | str:
    """The parsed value, or raise a ValueError whose message never echoes a token."""
    if key == TOKEN_KEY:
        return parse_token(value)
    return normalise_convex_url(value)


def _is_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _ensure_private_file(path: Path) -> None:
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def load_dotenv_config(
    cwd: Path,
    env_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    working_directory: Path | None = None,
    interactive: bool | None = None,
    *,
    ask: Callable[[str], str] = input,
    ask_secret: Callable[[str], str] = getpass.getpass,
) -> WorkerConfig:
    """Build dev mode's worker: `.env` in `cwd` (or `env_file`), directory `cwd` (or given)."""
    cwd = Path(cwd).absolute()
    path = Path(env_file) if env_file is not None else cwd / ".env"
    path = path if path.is_absolute() else cwd / path
    try:
        file_values = dotenv.dotenv_values(path) if path.exists() else {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if interactive is None:
        interactive = _is_terminal()

    values: dict[str, Token | str] = {}
    for key in (TOKEN_KEY, URL_KEY):
        from_env = environ.get(key) or None
        raw = from_env if from_env is not None else file_values.get(key)
        source = f"environment variable {key}" if from_env is not None else f"{path}: {key}"
        if not raw or not raw.strip():
            problem = f"{source}: is missing"
        else:
            try:
                values[key] = _check(key, raw)
                continue
            except (TokenError, ValueProblem) as exc:
                problem = f"{source}: {exc}"
        if not interactive:
            raise ConfigError(problem)
        print(problem.replace(f"{path}: ", f"{path.name}: "), file=sys.stderr)
        values[key] = _prompt(key, ask_secret if key == TOKEN_KEY else ask)
        write_env_key(path, key, values[key])
        if from_env is not None:
            note = f"note: the environment variable {key} still overrides {path.name}"
            print(note, file=sys.stderr)

    token = values[TOKEN_KEY]
    assert isinstance(token, Token)
    register_secret(token.secret)
    try:
        directory = resolve_working_directory(str(working_directory or cwd), cwd)
    except ValueProblem as exc:
        raise ConfigError(f"working directory {exc}") from None
    return WorkerConfig(
        token=token,
        convex_url=str(values[URL_KEY]),
        working_directory=directory,
        name=token.worker_id,
    )


def write_env_key(path: Path, key: str, value: Token | str) -> None:
    """Set `key` in the .env at `path` keeping every other line and comment; the file is 0600."""
    _ensure_private_file(path)
    text = value.reveal() if isinstance(value, Token) else value
    dotenv.set_key(path, key, text, quote_mode="never")
    _ensure_private_file(path)  # set_key replaces the file; keep it 0600


def ask_new_token(ask_secret: Callable[[str], str] = getpass.getpass) -> Token | None:
    """On a terminal, after the backend rejected the token: a new valid token, not echoed, or
    None when the user answers nothing (Enter) or ends the input (Ctrl-D)."""
    prompt = f"Enter a new worker token ({TOKEN_FORMAT}; not echoed; Enter to quit): "
    while True:
        try:
            answer = ask_secret(prompt)
        except EOFError:
            return None
        if not answer.strip():
            return None
        try:
            token = parse_token(answer)
        except TokenError as exc:
            print(f"{TOKEN_KEY} {exc}; try again", file=sys.stderr)
            continue
        register_secret(token.secret)
        return token


def _prompt(key: str, ask: Callable[[str], str]) -> Token | str:
    """Ask until the answer is valid; EOF (Ctrl-D) ends set-up with a ConfigError."""
    while True:
        try:
            answer = ask(_PROMPTS[key])
        except EOFError:
            raise ConfigError(f"{key}: set-up cancelled") from None
        try:
            return _check(key, answer)
        except (TokenError, ValueProblem) as exc:
            print(f"{key} {exc}; try again", file=sys.stderr)
