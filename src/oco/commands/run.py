"""`trio-oco run`: every enabled worker of workers.json in one supervised process.

Entries with a problem are skipped with a one-line WARNING each; no enabled valid worker means
exit 2 before anything starts. SIGHUP re-reads the file (see `oco.orchestrator`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "run every enabled worker from workers.json under one supervisor (production mode)"

log = logging.getLogger("oco.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PATH", help="workers file (default: $OCO_CONFIG, else XDG config)"
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        metavar="S",
        help="seconds a graceful stop may take (default: settings.shutdown_timeout_s, 30)",
    )


def _load(path: Path):
    from oco.config import load_workers_file

    loaded = load_workers_file(path)
    for problem in loaded.problems:
        log.warning("skipped: %s", problem)
    return loaded


def _factory(settings, state_dir: Path):
    from oco.errors import UsageError
    from oco.opencode import OpenCodeNotFound, find_opencode_bin
    from oco.orchestrator import worker_factory

    try:
        opencode_bin = find_opencode_bin(settings.opencode_bin)
    except OpenCodeNotFound as exc:
        raise UsageError(str(exc)) from None
    return worker_factory(opencode_bin=opencode_bin, state_dir=state_dir)


def _warn_if_unverified(settings, state_dir: Path):
    """The opencode version check (a thread when it is not cached; see `warn_if_unverified`)."""
    from oco.opencode import find_opencode_bin
    from oco.opencode._binary import warn_if_unverified

    return warn_if_unverified(find_opencode_bin(settings.opencode_bin), state_dir)


def run(args: argparse.Namespace) -> int:
    import trio

    from oco.commands._options import shutdown_timeout
    from oco.config import state_dir, workers_file_path
    from oco.errors import UsageError
    from oco.orchestrator import Orchestrator, Reloaded, SystemdNotifier
    from oco.orchestrator._instance import claim_for_command

    timeout = shutdown_timeout(args.shutdown_timeout)
    path = workers_file_path(args.config)
    directory = state_dir()
    # Before anything is said or started: a second run of this file is refused in one line.
    instance = claim_for_command(directory, "run", path)
    loaded = _load(path)
    workers = {w.key: w for w in loaded.enabled_workers}
    if not workers:
        raise UsageError(f"{path}: no enabled worker to run; enable one or add one")
    settings = loaded.settings
    if getattr(args, "log_level", None) is None:
        logging.getLogger().setLevel(settings.log_level.upper())
    factory = _factory(settings, directory)
    version_check = _warn_if_unverified(settings, directory)
    current = [settings]

    def reload() -> Reloaded:
        fresh = _load(path)
        new_factory = None
        if fresh.settings.opencode_bin != current[0].opencode_bin:  # other settings apply live
            new_factory = _factory(fresh.settings, directory)
        current[0] = fresh.settings
        return Reloaded({w.key: w for w in fresh.workers}, fresh.settings, new_factory, source=str(path))

    log.info("starting %d worker(s) from %s", len(workers), path)
    orchestrator = Orchestrator(
        workers,
        settings,
        worker_factory=factory,
        shutdown_timeout=timeout,
        instance=instance,
        reload=reload,
        notifier=SystemdNotifier.from_env(),
        pinned_settings=frozenset({"log_level"})
        if getattr(args, "log_level", None) is not None
        else frozenset(),
    )
    code = trio.run(orchestrator.run, restrict_keyboard_interrupt_to_checkpoints=True)
    if version_check is not None:
        version_check.join(timeout=2.0)  # a run shorter than the check still says it
    return code


def namespace(**overrides: object) -> argparse.Namespace:
    """Arguments for `run` with every option at its default (used by `start`)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args
