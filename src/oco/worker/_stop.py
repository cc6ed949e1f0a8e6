"""How a stop reaches a worker's cleanup: one deadline shared by all workers, and a force switch.

A graceful stop cancels each worker's scope; the worker then runs its cleanup (interrupt notes,
`workers:setOffline`, stopping OpenCode) inside a shielded scope bounded by the stop deadline.
A forced stop (second signal, or the deadline passing) cancels those shielded scopes at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import trio


class StopControl:
    """Shared by the orchestrator and its workers; created once per process."""

    def __init__(self) -> None:
        self.deadline: float = math.inf
        self.requested = trio.Event()
        self.forced = False
        self.cut_short = False  # some cleanup hit the deadline or was forced
        self._scopes: set[trio.CancelScope] = set()

    def request(self, grace: float) -> None:
        """Begin a graceful stop: cleanups must finish within `grace` seconds from now."""
        self.deadline = min(self.deadline, trio.current_time() + grace)
        for scope in self._scopes:
            scope.deadline = min(scope.deadline, self.deadline)
        self.requested.set()

    def force(self) -> None:
        """Cut every running cleanup short now (second signal, or the deadline passed)."""
        self.forced = True
        self.requested.set()
        for scope in list(self._scopes):
            scope.cancel(reason="forced stop")

    @contextmanager
    def cleanup_scope(self, grace: float) -> Iterator[trio.CancelScope]:
        """A shielded scope for cleanup under cancellation, bounded by `grace` and the stop deadline."""
        scope = trio.CancelScope(shield=True, deadline=min(self.deadline, trio.current_time() + grace))
        if self.forced:
            scope.cancel(reason="forced stop")
        self._scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)
            if scope.cancelled_caught:
                self.cut_short = True
