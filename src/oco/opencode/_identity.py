"""Proof that a pid is the OpenCode we started, so that a stale pid file never harms another process.

Pids are reused (after a reboot, or after trio-oco was SIGKILLed and the pid moved on), and a
command line or working directory proves nothing: `npm run serve` or `python3 -m http.server`
in the worker's directory look alike. We record, when we start OpenCode, its pid with its
start time (`/proc/<pid>/stat` field 22), its executable and a random marker we put in its
environment (`OCO_OPENCODE_INSTANCE`); a leftover process is ours only when all of them read
back the same from `/proc` and it still leads its own process group (we start it so).
`same_process` is the pure decision, `leftover_pid` applies it to a pid file; the rest reads
`/proc` (Linux; elsewhere nothing is provable, so nothing is killed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs

INSTANCE_VARIABLE = "OCO_OPENCODE_INSTANCE"
_ENVIRON_MAX_BYTES = 4 * 1024 * 1024  # a process's environment, read back to find the marker


@attrs.frozen
class ProcessIdentity:
    """What tells one process apart from any later holder of the same pid."""

    pid: int
    start_time: int  # clock ticks after boot: a reused pid has a later one
    executable: str
    instance: str  # the marker in its environment


@attrs.frozen
class Observed:
    """What `/proc` says about a pid now."""

    start_time: int
    executable: str
    instance: str | None
    process_group: int


def same_process(recorded: ProcessIdentity, observed: Observed | None) -> bool:
    """True only when every recorded trait matches and it still leads its own group."""
    return (
        observed is not None
        and bool(recorded.instance)
        and observed.start_time == recorded.start_time
        and observed.executable == recorded.executable
        and observed.instance == recorded.instance
        and observed.process_group == recorded.pid
    )


def encode(identity: ProcessIdentity) -> str:
    """The pid file's text: one JSON line."""
    return json.dumps(attrs.asdict(identity), sort_keys=True) + "\n"


def decode(text: str) -> ProcessIdentity | None:
    """The recorded identity, or None for a file we cannot trust (an old bare pid, junk)."""
    try:
        data = json.loads(text)
        identity = ProcessIdentity(
            pid=data["pid"],
            start_time=data["start_time"],
            executable=data["executable"],
            instance=data["instance"],
        )
    except (ValueError, TypeError, KeyError):
        return None
    types_ok = (
        type(identity.pid) is int
        and type(identity.start_time) is int
        and isinstance(identity.executable, str)
        and isinstance(identity.instance, str)
    )
    return identity if types_ok and identity.pid > 1 else None


def start_time_of(pid: int) -> int:
    """Field 22 of `/proc/<pid>/stat` (after the parenthesised name, which may hold spaces)."""
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[22 - 3])  # fields[0] is field 3 (state)


def identify(pid: int, instance: str) -> ProcessIdentity | None:
    """The identity of the OpenCode we just started (None where `/proc` cannot tell)."""
    try:
        return ProcessIdentity(pid, start_time_of(pid), os.readlink(f"/proc/{pid}/exe"), instance)
    except (OSError, ValueError, IndexError):
        return None


def observe(pid: int) -> Observed | None:
    """What `/proc` says about `pid` now; None when it is gone or not ours to read."""
    try:
        start_time = start_time_of(pid)
        executable = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/environ", "rb") as environ:
            variables = environ.read(_ENVIRON_MAX_BYTES).split(b"\0")
        group = os.getpgid(pid)
    except (OSError, ValueError, IndexError):
        return None
    prefix = INSTANCE_VARIABLE.encode() + b"="
    found = [v[len(prefix) :] for v in variables if v.startswith(prefix)]
    instance = found[0].decode(errors="replace") if found else None
    return Observed(start_time, executable, instance, group)


def leftover_pid(pid_file_text: str) -> int | None:
    """The pid to kill for a pid file a previous run left: only when the file records an
    identity and the live process matches it in full."""
    recorded = decode(pid_file_text)
    if recorded is not None and same_process(recorded, observe(recorded.pid)):
        return recorded.pid
    return None
