"""systemd's notify protocol (sd_notify) without a dependency: one datagram per message.

Only active when systemd set `NOTIFY_SOCKET` (Type=notify units); everything is a no-op
otherwise. `WATCHDOG_USEC` (WatchdogSec=) asks for a `WATCHDOG=1` ping at least that often;
`WATCHDOG_PID`, when set, names the process systemd expects them from.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from oco._text import external

if TYPE_CHECKING:
    from ._status import WorkerStatus

log = logging.getLogger(__name__)

STATUS_REASON_CHARS = 100  # per worker that is not ready; systemctl status shows one line


def status_line(rows: Sequence[WorkerStatus]) -> str:
    """systemd's `STATUS=`: "3 of 4 ready; beta: OpenCode failed to start: ...".

    Each worker that is not ready is named with the first line of its last error, else its
    state (`parked`, `stopped`, ...); a plain text line without newlines (pure).
    """
    ready = sum(1 for row in rows if row.state == "ready")
    parts = [f"{ready} of {len(rows)} ready"]
    for row in rows:
        if row.state == "ready":
            continue
        reason = (row.last_error or "").splitlines()[0].strip() if row.last_error else ""
        if row.state != "degraded" or not reason:
            reason = f"{row.state} ({reason})" if reason else row.state
        reason = external(reason, 4 * STATUS_REASON_CHARS)
        if len(reason) > STATUS_REASON_CHARS:
            reason = reason[: STATUS_REASON_CHARS - 1] + "…"
        parts.append(f"{external(row.name, 100)}: {reason}")
    return "; ".join(parts)


class SystemdNotifier:
    """Sends `READY=1`, `STOPPING=1`, `WATCHDOG=1`, `STATUS=...` to systemd, never raising."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        # A leading "@" names a Linux abstract socket, spelled with a NUL byte on the wire.
        self.address = "\0" + address[1:] if address and address.startswith("@") else address
        self.watchdog_interval = watchdog_usec / 2e6 if watchdog_usec else None
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SystemdNotifier:
        address = env.get("NOTIFY_SOCKET") or None
        watchdog: int | None = None
        try:
            watchdog = int(env.get("WATCHDOG_USEC", "")) or None
            pid = env.get("WATCHDOG_PID")
            if pid and int(pid) != os.getpid():
                watchdog = None  # the pings are expected from another process
        except ValueError:
            watchdog = None
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, message: str) -> None:
        """Send one datagram; a failure is logged at DEBUG and ignored (systemd may be gone)."""
        if self.address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)  # a full queue must never stall the event loop
            self._sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", message, exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
