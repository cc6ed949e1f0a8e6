"""A running `opencode serve` as its users see it: URL, client, events, identity, and whether it
still answers.

`check_health` is the one test of "still answering" (`GET /global/health` within a short
timeout, one retry); whoever finds it failing (the periodic check, a lease after an idle
period, a turn past its deadline, a call that timed out) reports it, and the task that owns
the process (`open_opencode_server`) kills it: turns on it then end with `UNRESPONSIVE_NOTE`.
"""

from __future__ import annotations

import collections
import logging

import trio

from oco._text import external

from ._client import OpenCodeClient
from ._errors import OpenCodeError
from ._events import EventHub
from ._identity import ProcessIdentity

log = logging.getLogger("oco.opencode.process")

HEALTH_INTERVAL = 15.0  # how often a running server must prove it answers
HEALTH_TIMEOUT = 5.0  # how long one health check may take
UNRESPONSIVE_NOTE = "OpenCode stopped answering; it was restarted"


class OpenCodeServer:
    """A running `opencode serve`: its URL, client, event hub, identity and fate.

    `crashed` is set when the process ends while we did not stop it, also after it was killed
    for not answering (`stopped_answering`); `lost` covers both, and `failure_message()` says
    which in words a chat reply can carry.
    """

    def __init__(
        self,
        process: trio.Process,
        base_url: str,
        client: OpenCodeClient,
        events: EventHub,
        tail: collections.deque[str],
        *,
        identity: ProcessIdentity | None = None,
        health_timeout: float = HEALTH_TIMEOUT,
    ) -> None:
        self.process = process
        self.base_url = base_url
        self.client = client
        self.events = events
        self.identity = identity
        self.health_timeout = health_timeout
        self.crashed = trio.Event()
        self._tail = tail
        self._stopped_answering = False
        self._replace = trio.Event()  # asks the task that owns the process to kill it

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def exit_code(self) -> int | None:
        """The exit status once the process has ended (negative: killed by that signal)."""
        return self.process.returncode

    @property
    def stopped_answering(self) -> bool:
        return self._stopped_answering

    @property
    def lost(self) -> bool:
        """It crashed or stopped answering: nothing more will come from it."""
        return self._stopped_answering or self.crashed.is_set()

    def failure_message(self) -> str:
        if self._stopped_answering:
            return UNRESPONSIVE_NOTE
        return f"OpenCode stopped unexpectedly (exit code {self.exit_code})"

    def output_tail(self) -> list[str]:
        """The last lines the server printed (for error messages)."""
        return list(self._tail)

    async def check_health(self, timeout: float | None = None, attempts: int = 2) -> bool:
        """True when it answers `GET /global/health` in time (one retry at once); otherwise it
        is marked as not answering and killed, and its owner replaces it."""
        if self.lost:
            return False
        reason = "no answer"
        for _ in range(attempts):
            try:
                health = await self.client.health(timeout=self.health_timeout if timeout is None else timeout)
            except OpenCodeError as exc:
                if self.lost:
                    return False
                reason = exc.summary
                continue
            if isinstance(health, dict) and health.get("healthy") is True:
                return True
            reason = "it says it is not healthy"
        self.report_unresponsive(reason)
        return False

    def report_unresponsive(self, reason: str) -> None:
        """It does not answer (a missed health check, a call that timed out): kill it, so the
        turns on it end and the next one gets a fresh server."""
        if self.lost:
            return
        self._stopped_answering = True
        log.warning("opencode[%d] stopped answering (%s); stopping it", self.pid, external(reason, 200))
        self._replace.set()

    async def wait_reported(self) -> None:
        """Return once it was reported unresponsive (for the task that must then kill it)."""
        await self._replace.wait()

    def __repr__(self) -> str:
        return f"OpenCodeServer(pid={self.pid}, base_url={self.base_url!r})"
