"""`trio-oco dev`: one worker from `.env` in the current directory, in the foreground.

A token the backend rejects (a wrong secret, an unknown or deleted worker) ends dev mode with
exit code 2 and one line saying why: dev mode has no reload, so parking the worker would wait
for ever. On a terminal it first offers to enter a new token (not echoed), writes it to the
`.env` (0600, every other line kept) and goes on with it. A worker waiting for approval is not
rejected: it waits, as in `run`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from oco.errors import UsageError

VERSION_JOIN_S = 2.0  # at exit, how long a running `opencode --version` check may still take

HELP = "run one worker from .env in the current directory (first-run setup on a terminal)"


class TokenRejected(UsageError):
    """The backend rejected dev mode's WORKER_TOKEN (exit 2): only a new token helps."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, help="the .env file to read (default: ./.env)")
    parser.add_argument("--dir", type=Path, help="the project directory (default: the current directory)")
    parser.add_argument(
        "--shutdown-timeout", type=float, metavar="S", help="seconds a graceful stop may take (default 10)"
    )


def env_file_path(cwd: Path, env_file: Path | None) -> Path:
    """The .env dev mode reads: `--env-file` (relative to `cwd`), else `cwd/.env`.

    A file named by `--env-file` must exist (a typo must not start a first-run set-up that
    writes a new file beside the real one); the default one may be missing (set-up writes it).
    """
    if env_file is None:
        return cwd / ".env"
    path = env_file if env_file.is_absolute() else cwd / env_file
    if not path.exists():
        raise UsageError(
            f"{path}: does not exist (--env-file); create it, or leave --env-file out for ./.env"
        )
    if not path.is_file():
        raise UsageError(f"{path}: is not a file (--env-file)")
    return path


def _is_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def run(args: argparse.Namespace) -> int:
    from oco.commands._options import shutdown_timeout
    from oco.config import load_dotenv_config
    from oco.config._dotenv import TOKEN_KEY, ask_new_token, write_env_key

    timeout = shutdown_timeout(args.shutdown_timeout)
    cwd = Path.cwd().absolute()
    path = env_file_path(cwd, args.env_file)
    while True:
        config = load_dotenv_config(cwd, path, working_directory=args.dir)
        code, rejected = _run_once(config, timeout, path)
        if rejected is None:
            return code
        line = f"{path}: the backend rejected {TOKEN_KEY}: {rejected}"
        if not _is_terminal() or os.environ.get(TOKEN_KEY):
            # Without a terminal nobody can answer; a WORKER_TOKEN in the environment would
            # override whatever is written to the file.
            raise TokenRejected(line)
        print(f"trio-oco: {line}", file=sys.stderr)
        token = ask_new_token()
        if token is None:
            return TokenRejected.exit_code
        write_env_key(path, TOKEN_KEY, token)
        print(f"wrote the new {TOKEN_KEY} to {path}; starting again", file=sys.stderr)


def _run_once(config, timeout: float | None, env_file: Path) -> tuple[int, str | None]:
    """Run the worker until it stops; (exit code, why the backend rejected it, or None)."""
    import attrs
    import trio

    from oco.config import DEV_SETTINGS, WorkerConfig, state_dir
    from oco.opencode import find_opencode_bin
    from oco.opencode._binary import warn_if_unverified
    from oco.orchestrator import Orchestrator, SystemdNotifier, worker_factory
    from oco.orchestrator._instance import claim_for_command

    settings = DEV_SETTINGS
    if timeout is not None:
        settings = attrs.evolve(settings, shutdown_timeout_s=timeout)
    instance = claim_for_command(state_dir(), "dev", env_file)  # one dev per project's .env
    opencode_bin = find_opencode_bin(settings.opencode_bin)
    version_check = warn_if_unverified(opencode_bin, state_dir())
    rejected: list[str] = []

    def on_rejected(worker: WorkerConfig, reason: str) -> bool:
        # Dev mode has no reload to end a park: stop, and say why once the worker is offline.
        rejected.append(reason)
        orchestrator.request_stop("the backend rejected the worker's token")
        return True

    orchestrator = Orchestrator(
        {config.key: config},
        settings,
        worker_factory=worker_factory(opencode_bin=opencode_bin, state_dir=state_dir()),
        instance=instance,
        notifier=SystemdNotifier.from_env(),
        on_rejected=on_rejected,
    )
    code = trio.run(orchestrator.run, restrict_keyboard_interrupt_to_checkpoints=True)
    if version_check is not None:
        version_check.join(timeout=VERSION_JOIN_S)  # a run shorter than the check still says it
    return code, (rejected[0] if rejected else None)
