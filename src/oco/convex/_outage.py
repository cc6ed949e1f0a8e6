"""How often to say that a Convex deployment is unreachable: once, then every few minutes.

A deployment that is down (DNS failure, connection refused, no answer) makes every call fail,
and every retry loop would say so each time: one line per retry, forever. `OutageReport` is
the one decision: the first failure of an outage is a WARNING, then at most one WARNING every
`interval` seconds (saying for how long), DEBUG in between; the first success after a
reported outage is an INFO "reachable again". Pure: the caller passes the time.
"""

from __future__ import annotations

import logging

import attrs

REPORT_INTERVAL_S = 300.0  # at most one WARNING per this many seconds while unreachable


@attrs.define
class OutageReport:
    """The state of one worker's view of its deployment; `failed`/`recovered` say what to log."""

    interval: float = REPORT_INTERVAL_S
    since: float | None = None  # when the current outage began (None: reachable)
    _last_warning: float | None = None

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, now: float) -> int:
        """A call failed transiently at `now`: the level to log it at."""
        if self.since is None:
            self.since = now
        if self._last_warning is None or now - self._last_warning >= self.interval:
            self._last_warning = now
            return logging.WARNING
        return logging.DEBUG

    def recovered(self, now: float) -> float | None:
        """A call succeeded at `now`: how long the outage lasted if one was under way."""
        if self.since is None:
            return None
        lasted = now - self.since
        self.since = None
        self._last_warning = None
        return lasted


def duration(seconds: float) -> str:
    """`45 s`, `5 min`, `2 h 5 min`: how long an outage has lasted, for a log line."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


__all__ = ["REPORT_INTERVAL_S", "OutageReport", "duration"]
