"""What a running worker says about itself: one typed snapshot, replaced whenever a part changes.

The supervisor and the status file read this and nothing else of a worker, so the worker's
insides (its relay, its OpenCode host) can change without the orchestrator noticing. The
snapshot lives in a `trio_util.AsyncValue`, so a watcher can also wait for the next change.
"""

from __future__ import annotations

import attrs

from ._lifecycle import State


@attrs.frozen
class WorkerReport:
    """One attempt's state, its newest error, chats with a queue, turns running, OpenCode's pid,
    and why OpenCode cannot start (`opencode_error`: set from a failed start until one succeeds;
    a ready worker with it is degraded: every answer would be that error)."""

    state: State = State.STARTING
    last_error: str | None = None  # what the worker last retried or failed on (None: nothing)
    active_sessions: int = 0  # chats with a reply queued or running
    turns_in_flight: int = 0  # OpenCode turns running now
    opencode_pid: int | None = None  # the running OpenCode server (its process group), if any
    opencode_server: str = "own"  # which server its turns use: "own", or "shared <environment>"
    opencode_error: str | None = None  # why OpenCode last failed to start, until a start succeeds

    @property
    def degraded(self) -> bool:
        """Ready, but OpenCode cannot start: status shows `degraded` with this error."""
        return self.state is State.READY and self.opencode_error is not None
