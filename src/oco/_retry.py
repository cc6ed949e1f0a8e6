"""Every retry policy of trio-oco, one per concern, with its numbers and why; how a retry is said.

A `RetryPolicy` says which failures are worth another try (`on`) and how long to wait before
retry number n: `wait_initial * wait_exp_base**(n-1)` plus up to `wait_jitter` seconds, at
most `wait_max`, then spread by up to ±`wait_spread` of itself (`RetryPolicy.delay`, the only
backoff formula). Two kinds of loop use the policies:

- a call retried until it works, or `attempts` run out: `retrying(policy)` is stamina's
  `retry_context` for it. A failure `on` does not accept propagates at once (there is no
  `except Exception: if not transient: raise` anywhere), and tests switch every wait off in
  one call (`stamina.set_testing`);
- something kept up for as long as its owner runs (the OpenCode process, its event stream,
  the sync socket): its loop never gives up, it asks a `Streak` for the next delay, and the
  count starts over once the thing stayed up for `healthy_after` seconds (so a peer that
  connects and drops at once is not retried at the shortest delay forever).

Each retry is said in one line, `retry_line`: "<what failed>[ (for 5 min)]; retry 3 in 4.0 s".
A loop that may run for long says it through an `OutageReport`: its first failure at WARNING
(or the level given), then once every five minutes while the failures go on, DEBUG between.

Restarting a whole worker is not a retry: `oco.orchestrator._policy.RestartPolicy` (1 s ×2,
at most 60 s, ±20 %, parked for 10 min when retrying cannot help) decides it.

Pure definitions: nothing here sleeps or does I/O but the one log line (the sleeping is
stamina's, through `trio.sleep`, so it runs on a MockClock); importing it loads neither trio
nor httpx.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from contextlib import contextmanager

import attrs
import stamina
import stamina.instrumentation

RETRY_LOG = logging.getLogger("oco.retry")
REPORT_INTERVAL_S = 300.0  # at most one loud line per this many seconds while failures go on

# Every retry is said by `retrying` itself, in our words; stamina's own hooks would say each
# again (its default is a WARNING per retry on the "stamina" logger).
stamina.instrumentation.set_on_retry_hooks(())

Predicate = Callable[[Exception], bool]
Attempts = AsyncIterable[stamina.Attempt]  # what `retrying` returns: `async for attempt in ...`


# -- which failures are worth another try ----------------------------------------------------
# Convex's own types, imported when first asked: the neutral `Unavailable` is wider (OpenCode's
# failures are `Unavailable` too, and a turn must report those, not wait them out), and this
# module stays a leaf at import (the OpenCode adapter uses it without loading Convex's).


def transient(exc: Exception) -> bool:
    """A Convex call that failed in a way that heals: unreachable, 5xx, 429, a backend fault."""
    from oco.convex._errors import is_transient

    return is_transient(exc)


def transient_or_malformed(exc: Exception) -> bool:
    """`transient`, or an answer that broke the contract (skipped: the next one may be good);
    not a URL that is no Convex deployment at all (retrying cannot help)."""
    from oco.convex._errors import ConvexProtocolError, NotAConvexDeployment

    malformed = isinstance(exc, ConvexProtocolError) and not isinstance(exc, NotAConvexDeployment)
    return malformed or transient(exc)


class TryAgain(Exception):
    """Raised inside an attempt to have it retried whatever the policy's `on` says: the caller
    found, from state, that another try is worth it. It reads as its cause."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


# -- the policies ----------------------------------------------------------------------------


@attrs.frozen
class RetryPolicy:
    """How one concern retries (see the module docstring); `name` identifies it in tests."""

    name: str
    why: str = attrs.field(repr=False)
    on: Predicate | None = attrs.field(default=transient, repr=False)  # None: a kept-up thing
    attempts: int | None = None  # None: until it works (or the caller is cancelled)
    wait_initial: float = 1.0
    wait_max: float = 60.0
    wait_jitter: float = 0.0
    wait_exp_base: float = 2.0
    wait_spread: float = 0.0
    healthy_after: float = math.inf  # for a `Streak`: up this long, and the count starts over

    def delay(self, retry: int, jitter: float = 0.0) -> float:
        """Seconds to wait before retry number `retry` (1 after the first failure); `jitter`
        in [0, 1) says where in the jitter and spread ranges this one falls."""
        try:
            grown = self.wait_initial * self.wait_exp_base ** min(retry - 1, 1000)
        except OverflowError:
            grown = self.wait_max
        base = min(self.wait_max, grown + jitter * self.wait_jitter)
        return base * (1.0 + self.wait_spread * (2.0 * jitter - 1.0))

    def capped(self, wait_max: float) -> RetryPolicy:
        """This policy waiting at most `wait_max` seconds (e.g. a configured interval)."""
        return attrs.evolve(self, wait_max=min(self.wait_max, wait_max))


CONVEX_CALL = RetryPolicy(
    "CONVEX_CALL",
    "one HTTP call rides out a blip (a deploy, a dropped connection) within about 10 s; "
    "callers that must outlast an outage retry on top, with their own policy",
    attempts=5,
    wait_initial=0.5,
    wait_max=8.0,
    wait_jitter=0.5,
)
WORKER_REGISTRATION = RetryPolicy(
    "WORKER_REGISTRATION",
    "register and markConnected: nothing works until Convex has the worker, so wait as long "
    "as it takes, at most a minute apart",
    wait_initial=1.0,
    wait_max=60.0,
)
HEARTBEAT = RetryPolicy(
    "HEARTBEAT",
    "the web app shows a worker whose beats stop as offline: a failed beat is tried again "
    "sooner than the next one (capped at the heartbeat interval by the caller)",
    wait_initial=1.0,
    wait_max=60.0,
)
MODEL_PUBLISH = RetryPolicy(
    "MODEL_PUBLISH",
    "the web app offers no model until the list lands: no hurry, but no giving up",
    wait_initial=1.0,
    wait_max=60.0,
    wait_jitter=1.0,
)
TURN_PREPARATION = RetryPolicy(
    "TURN_PREPARATION",
    "nothing is streamed yet and the calls are safe to repeat: an outage delays the answer "
    "instead of failing it, and the answer starts within 15 s of Convex being back",
    wait_initial=1.0,
    wait_max=15.0,
    wait_jitter=1.0,
)
REPLY_COMPLETION = RetryPolicy(
    "REPLY_COMPLETION",
    "completing is an idempotent patch and an outage the process outlives must not leave "
    "a reply open: until Convex has it or the reply is provably gone (`TryAgain`)",
    wait_initial=1.0,
    wait_max=30.0,
    wait_jitter=1.0,
)
POLLING = RetryPolicy(
    "POLLING",
    "a failed or malformed poll is tried again later, further apart while it fails; starts "
    "at twice the idle interval (the caller's setting, 3 s by default)",
    on=transient_or_malformed,
    wait_initial=6.0,
    wait_max=60.0,
)
OPENCODE_RESTART = RetryPolicy(
    "OPENCODE_RESTART",
    "an OpenCode that crashes or fails to start is started again for the next turn, not "
    "more often than this; a server that went idle normally starts the count over",
    on=None,
    wait_initial=1.0,
    wait_max=30.0,
)
OPENCODE_EVENTS = RetryPolicy(
    "OPENCODE_EVENTS",
    "a lost event stream costs streaming, so reconnect fast; but a stream that connects and "
    "drops at once must not loop 5 times a second: 30 s up (three heartbeats) resets it",
    on=None,
    wait_initial=0.2,
    wait_max=5.0,
    healthy_after=30.0,
)
SYNC_RECONNECT = RetryPolicy(
    "SYNC_RECONNECT",
    "the convex npm client's web_socket_manager.ts: 1 s after an unexplained close (0.1 s or "
    "3 s by close reason, in _sync_state), ×2 to 16 s (60 s once sockets open and then fail), "
    "±50 %; 30 s past a resync (two server Pings) resets it",
    on=None,
    wait_initial=1.0,
    wait_max=16.0,
    wait_spread=0.5,
    healthy_after=30.0,
)

POLICIES = (
    CONVEX_CALL,
    WORKER_REGISTRATION,
    HEARTBEAT,
    MODEL_PUBLISH,
    TURN_PREPARATION,
    REPLY_COMPLETION,
    POLLING,
    OPENCODE_RESTART,
    OPENCODE_EVENTS,
    SYNC_RECONNECT,
)


# -- saying it -------------------------------------------------------------------------------


@attrs.define
class OutageReport:
    """When to say that failures go on: the first at `loud`, then at most one every `interval`
    seconds, DEBUG in between; `recovered` ends the run. Pure: the caller passes the time."""

    interval: float = REPORT_INTERVAL_S
    loud: int = logging.WARNING
    since: float | None = None  # when the current run of failures began (None: none)
    _last_loud: float | None = None

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, now: float) -> int:
        """A failure at `now`: the level to log it at."""
        if self.since is None:
            self.since = now
        if self._last_loud is None or now - self._last_loud >= self.interval:
            self._last_loud = now
            return self.loud
        return logging.DEBUG

    def recovered(self, now: float) -> float | None:
        """A success at `now`: how long the failures lasted, if a run of them was under way."""
        if self.since is None:
            return None
        lasted = now - self.since
        self.since = None
        self._last_loud = None
        return lasted


def duration(seconds: float) -> str:
    """`45 s`, `5 min`, `2 h 5 min`: how long failures have gone on, for a log line."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def retry_line(failure: str, retry: int, delay: float, lasted: float = 0.0) -> str:
    """The one retry log line: what failed, for how long once it is a minute, when next."""
    since = f" (for {duration(lasted)})" if lasted >= 60 else ""
    return f"{failure}{since}; retry {retry} in {delay:.1f} s"


def announce(
    log: logging.Logger, report: OutageReport | None, failure: str, retry: int, delay: float, now: float
) -> None:
    """Log one retry: at the level `report` decides (DEBUG without one)."""
    level = report.failed(now) if report is not None else logging.DEBUG
    lasted = now - report.since if report is not None and report.since is not None else 0.0
    log.log(level, "%s", retry_line(failure, retry, delay, lasted))


# -- the two loops ---------------------------------------------------------------------------

_real_in_tests: frozenset[str] | None = None  # see `real_backoff_in_tests`


def retrying(
    policy: RetryPolicy,
    *,
    describe: Callable[[Exception], str] = str,
    log: logging.Logger = RETRY_LOG,
    report: OutageReport | None = None,
    on: Predicate | None = None,
) -> Attempts:
    """`async for attempt in retrying(POLICY): with attempt: ...` runs the block until it works.

    A failure `on` (default: the policy's) does not accept, or the last of `attempts`,
    propagates; so does cancellation. Before each wait, `describe(failure)` is logged as
    one `retry_line` (`report` decides the level, DEBUG without one). `on` narrows the
    policy for one call (a write that must not be repeated once it was sent); a `TryAgain`
    is retried whatever it says.
    """
    import trio  # here, not at the top: the pure cores import this module without trio

    worth = on or policy.on
    assert worth is not None, f"{policy.name} keeps something up: use a Streak"
    attempts = policy.attempts
    if _real_in_tests is not None and policy.name not in _real_in_tests:
        attempts = 1
    retries = itertools.count(1)

    def backoff(exc: Exception) -> bool | float:
        if not (isinstance(exc, TryAgain) or worth(exc)):
            return False
        retry = next(retries)
        if (attempts is not None and retry >= attempts) or stamina.is_testing():
            return True  # stamina re-raises it (or, in its test mode, retries without waiting)
        delay = policy.delay(retry, random.random())
        announce(log, report, describe(exc), retry, delay, trio.current_time())
        return delay  # stamina waits exactly this (its own formula is the same)

    return stamina.retry_context(
        on=backoff,
        attempts=attempts,
        timeout=None,  # bounded by attempts or by the caller: a wall-clock stop ignores a MockClock
        wait_initial=policy.wait_initial,
        wait_max=policy.wait_max,
        wait_jitter=policy.wait_jitter,
        wait_exp_base=policy.wait_exp_base,
    )


@attrs.define
class Streak:
    """The losses in a row of something kept up (a process, a stream, a socket).

    `up(now)` when it works again; `lost(now)` is the delay before the next try. The count
    starts over only once it stayed up for the policy's `healthy_after` (or at `reset()`)."""

    policy: RetryPolicy
    losses: int = 0
    _up_since: float | None = None

    def up(self, now: float) -> None:
        if self._up_since is None:
            self._up_since = now

    def lost(self, now: float, jitter: float = 0.0) -> float:
        if self._up_since is not None and now - self._up_since >= self.policy.healthy_after:
            self.losses = 0
        self._up_since = None
        self.losses += 1
        return self.policy.delay(self.losses, jitter)

    def reset(self) -> None:
        self.losses = 0
        self._up_since = None


@contextmanager
def real_backoff_in_tests(policies: Iterable[RetryPolicy]) -> Iterator[None]:
    """For a test that pins some policies' timings, with stamina's test mode off: within the
    block, every `retrying` loop of any other policy makes one attempt (no retry, no wait),
    as stamina's test mode would. Tests use it through the `real_backoff` marker."""
    global _real_in_tests
    before = _real_in_tests
    _real_in_tests = frozenset(policy.name for policy in policies)
    try:
        yield
    finally:
        _real_in_tests = before


__all__ = [
    "CONVEX_CALL",
    "HEARTBEAT",
    "MODEL_PUBLISH",
    "OPENCODE_EVENTS",
    "OPENCODE_RESTART",
    "POLICIES",
    "POLLING",
    "REPLY_COMPLETION",
    "REPORT_INTERVAL_S",
    "RETRY_LOG",
    "SYNC_RECONNECT",
    "TURN_PREPARATION",
    "WORKER_REGISTRATION",
    "Attempts",
    "OutageReport",
    "RetryPolicy",
    "Streak",
    "TryAgain",
    "announce",
    "duration",
    "real_backoff_in_tests",
    "retry_line",
    "retrying",
    "transient",
    "transient_or_malformed",
]
