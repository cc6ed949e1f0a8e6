"""Shared resources lent to workers by the process root: opened on first loan, closed after the last.

A `Lender` is a registry keyed by what makes two resources the same (a Convex URL; an OpenCode
environment later). The first borrower of a key opens the resource, the others get the same
one, and the last to give it back closes it. Each resource lives in a task of the lender's own
nursery (`run`, started in the orchestrator's root nursery), never in a borrower's task, so no
borrower has to hand a running socket over to another when it leaves: the owner of every task
is a nursery a reader can point at.

A resource whose task fails (a bug: what it guards against is its own business) is dropped from
the registry, so the next borrower opens a fresh one; its current borrowers are cancelled and
leave their `lend` block with `ResourceLost` naming the cause. When the lender itself stops,
its borrowers leave the same way (the orchestrator never stops it before its workers).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, TypeVar

import trio
import trio_util

from oco._text import external

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

Opener = Callable[[], AbstractAsyncContextManager[R]]


class ResourceLost(Exception):
    """A shared resource went away under its borrower (it failed, or its lender stopped)."""


class _Entry(Generic[R]):
    """One open (or opening) resource: its value, borrowers, and how its task should end."""

    def __init__(self) -> None:
        self.resource: R | None = None
        self.opened = False
        self.ready = trio.Event()  # set once opened, or once opening failed
        self.release = trio.Event()  # the last borrower left: close it
        self.borrowers: set[trio.CancelScope] = set()
        self.lost: str | None = None  # why the borrowers were cancelled
        self.failure: BaseException | None = None


class Lender(Generic[K, R]):
    """Lends one shared `R` per key; `what` names the resource in messages ("sync socket")."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[K, _Entry[R]] = {}
        self._nursery: trio.Nursery | None = None
        self.open_count = trio_util.AsyncValue(0)  # resources opened and not yet closed
        self._open: list[R] = []  # those resources, also one still closing after its last borrower left

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the resources' tasks until cancelled; then every resource closes."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                # The resources' tasks are being cancelled too: their borrowers leave with them.
                self._nursery = None
                for entry in list(self._entries.values()):
                    self._drop(entry, f"the owner of the {self.what}s stopped")

    def open_resources(self) -> tuple[R, ...]:
        """Every resource opened and not yet closed, also one closing after its last borrower
        left (a forced stop kills the shared OpenCode servers from here)."""
        return tuple(self._open)

    @asynccontextmanager
    async def lend(self, key: K, open_resource: Opener[R]) -> AsyncIterator[R]:
        """Borrow the resource for `key` for the `async with` block, opening it with
        `open_resource()` if nobody holds one; raises `ResourceLost` if it goes away meanwhile."""
        entry = await self._entry_for(key, open_resource)
        with trio.CancelScope() as loan:
            entry.borrowers.add(loan)
            try:
                assert entry.resource is not None
                yield entry.resource
            finally:
                entry.borrowers.discard(loan)
                if not entry.borrowers and self._entries.get(key) is entry:
                    del self._entries[key]
                    entry.release.set()
        if loan.cancelled_caught:
            raise ResourceLost(f"the shared {self.what} for {key} went away: {entry.lost}") from entry.failure

    async def _entry_for(self, key: K, open_resource: Opener[R]) -> _Entry[R]:
        while True:
            entry = self._entries.get(key)
            if entry is None:
                if self._nursery is None:
                    raise RuntimeError(f"Lender({self.what!r}).run is not running")
                entry = self._entries[key] = _Entry()
                try:
                    await self._nursery.start(self._hold, key, entry, open_resource)
                finally:
                    entry.ready.set()
                    if not entry.opened and self._entries.get(key) is entry:
                        del self._entries[key]  # opening failed or was cancelled
                return entry
            await entry.ready.wait()  # another borrower is opening it
            if entry.opened and self._entries.get(key) is entry:
                return entry
            # Its opening failed, or it closed meanwhile: open one ourselves.

    async def _hold(
        self,
        key: K,
        entry: _Entry[R],
        open_resource: Opener[R],
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The resource's task: open it, lend it until released, close it."""
        counted = False
        try:
            async with open_resource() as resource:
                counted = True
                self.open_count.value += 1
                self._open.append(resource)
                # Opened from here on: a failure now is the resource's, not its opening's.
                entry.resource, entry.opened = resource, True
                task_status.started()
                await entry.release.wait()
        except Exception as exc:  # contain it: one failed resource must not end the process
            if not entry.opened:
                raise  # an opening error goes to the borrower who asked for it
            if not entry.borrowers:
                log.warning(
                    "closing the shared %s for %s failed: %s", self.what, key, external(_first_leaf(exc))
                )
                return
            entry.failure = exc
            leaf = _first_leaf(exc)
            self._drop(entry, external(f"{type(leaf).__name__}: {leaf}"))
        finally:
            if counted:
                self.open_count.value -= 1  # closed by now
                self._open = [r for r in self._open if r is not resource]

    def _drop(self, entry: _Entry[R], why: str) -> None:
        """Forget `entry` and cancel its borrowers (they raise `ResourceLost`)."""
        for key, held in list(self._entries.items()):
            if held is entry:
                del self._entries[key]
        entry.lost = why
        for loan in list(entry.borrowers):
            loan.cancel(reason=f"shared {self.what} lost")


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
