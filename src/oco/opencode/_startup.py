"""One OpenCode start at a time per process.

OpenCode migrates its SQLite database under `$XDG_DATA_HOME` when it starts; two processes
starting at once against a fresh home race that migration and one exits with code 1 (seen
with a model listing and a server starting together). Starts are short, so serialising them
costs little; servers run concurrently once they answer.
"""

from __future__ import annotations

import trio

_lock: trio.lowlevel.RunVar[trio.Lock] = trio.lowlevel.RunVar("opencode_start_lock")


def start_lock() -> trio.Lock:
    """The lock every OpenCode start (server or `opencode models`) holds until it is up."""
    try:
        return _lock.get()
    except LookupError:
        lock = trio.Lock()
        _lock.set(lock)
        return lock
