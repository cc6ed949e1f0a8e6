"""One first OpenCode start at a time per data home, until one has succeeded there.

OpenCode opens its SQLite database (`$XDG_DATA_HOME/opencode/opencode.db`, or `OPENCODE_DB`)
and applies its migrations when it starts; two processes starting at once against a fresh
home race that migration and one exits with code 1 (seen with a model listing and a server
starting together). Once one start has succeeded in a home its database is migrated, and
later starts there (servers of other workers, listings) run in parallel.

How we know: `opencode serve` applies its migrations before it prints its listening line
(verified on opencode-ai 1.18.33: a fresh home's database holds all its tables, `migration`
included, at the server's first health answer), and `opencode models` exits 0 only after it
opened the database. So a server that answered its health check, or a listing that exited 0,
marks its home migrated for the rest of this process.

Starts in parallel are also bounded by the machine: at most `concurrent_starts()` OpenCode
processes start at once in this process (one per core, at least two). Measured on 2 cores, 20
servers starting at once all missed the 15 s start timeout and every chat got "OpenCode
failed to start" (`scripts/bench-opencode`, per-worker throughput, 0 of 100 answered); a start
waiting for its turn is not timed, so a burst is served in waves instead of failing.

A start waits for the gate at most `GATE_PATIENCE_S`: a migration takes about a second, so a
start still holding the gate after that is past it (or hung), and waiting behind a hung
`opencode models` would delay the first reply by the listing's whole timeout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import attrs
import trio

GATE_PATIENCE_S = 10.0


@attrs.define
class _Home:
    gate: trio.Semaphore = attrs.field(factory=lambda: trio.Semaphore(1))  # any task may release
    migrated: bool = False


def concurrent_starts() -> int:
    """How many OpenCode servers may start at once in this process."""
    return max(2, os.cpu_count() or 2)


class StartTicket:
    """A start's hold on its home's gate (or no hold, once the home is migrated) and on one
    of the process's start slots."""

    def __init__(self, home: _Home, held: bool, slot: trio.CapacityLimiter | None = None) -> None:
        self._home = home
        self._held = held
        self._slot = slot

    def succeeded(self) -> None:
        """This start proved the database migrated: no later start needs the gate."""
        self._home.migrated = True
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._home.gate.release()
        if self._slot is not None:
            slot, self._slot = self._slot, None
            slot.release_on_behalf_of(self)


_homes: trio.lowlevel.RunVar[dict[str, _Home]] = trio.lowlevel.RunVar("opencode_homes")
_slots: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("opencode_start_slots")


def _start_slots() -> trio.CapacityLimiter:
    try:
        return _slots.get()
    except LookupError:
        slots = trio.CapacityLimiter(concurrent_starts())
        _slots.set(slots)
        return slots


def data_home(env: Mapping[str, str]) -> str:
    """Which OpenCode database a process with environment `env` opens, as a key (pure)."""
    base = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME", ""), ".local", "share")
    return f"{os.path.join(base, 'opencode')}\0{env.get('OPENCODE_DB', '')}"


def fresh_home(env: Mapping[str, str]) -> bool:
    """Whether OpenCode has no database yet in `env`'s data home (its first start there
    migrates one, which can take ~30 s)."""
    database = env.get("OPENCODE_DB")
    if not database:
        base = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME", ""), ".local", "share")
        database = os.path.join(base, "opencode", "opencode.db")
    return not os.path.exists(database)


def _home(env: Mapping[str, str]) -> _Home:
    try:
        homes = _homes.get()
    except LookupError:
        homes = {}
        _homes.set(homes)
    return homes.setdefault(data_home(env), _Home())


async def start_ticket(
    env: Mapping[str, str], *, patience: float = GATE_PATIENCE_S, server: bool = True
) -> StartTicket:
    """Wait (at most `patience`) for the gate of `env`'s home unless a start there has
    succeeded already, then (`server`: a server start, not a model listing, which its own
    timeout bounds and which must never hold a server up) for one of the process's start slots. The caller calls
    `succeeded()` or `release()` on the ticket when its start is over, in a `finally`.
    Waiting here does not count against a start's timeout."""
    home = _home(env)
    held = False
    if not home.migrated:
        with trio.move_on_after(patience):
            await home.gate.acquire()
            held = True
        if held and home.migrated:  # another start finished the migration while we waited
            home.gate.release()
            held = False
    ticket = StartTicket(home, held)
    if not server:
        return ticket
    slots = _start_slots()
    acquired = False
    try:
        await slots.acquire_on_behalf_of(ticket)
        acquired = True
    finally:
        if not acquired:  # cancelled while waiting for a slot: the gate goes back
            ticket.release()
    ticket._slot = slots
    return ticket
