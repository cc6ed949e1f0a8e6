"""When to restart a failed worker, or whether to park it: a pure decision from a few facts.

Transient failures, unexpected backend answers and crashes back off exponentially with jitter (1 s, ×2, capped at 60 s,
±20 %); the streak resets once the failed attempt had been ready for `healthy_after` seconds,
so a worker that ran fine for an hour and then lost the network restarts after ~1 s, not 60 s
(pm2's reset, driven by health rather than by uptime alone). A rejected token (wrong secret,
deleted worker) or a configuration error (a convex_url that is no Convex deployment, a missing
opencode) cannot heal by retrying, so the worker is parked and probed again only every
`park_retry` seconds (or on reload, which the shell handles).

Every delay is at least `initial × (1 - jitter)` > 0, so there is never a busy loop, and the
shell starts at most once per decision, so never more than one start per backoff period.
"""

from __future__ import annotations

import enum
import random

import attrs


class FailureKind(enum.Enum):
    """How an attempt ended, as classified by the shell from the exception types."""

    TRANSIENT = "transient"  # network, 5xx, OpenCode hiccup: back off and retry
    BACKEND = "backend"  # the backend answered outside the contract or failed: back off, retry
    REJECTED = "rejected"  # wrong secret, unknown or deleted worker: park
    CONFIG = "config"  # e.g. opencode missing, convex_url is no Convex deployment: park
    CRASH = "crash"  # a bug (any other exception): back off and retry


_PARK_REASONS = {
    FailureKind.REJECTED: "the backend rejected the worker (wrong secret or deleted worker)",
    FailureKind.CONFIG: "configuration error",
}


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, not {value!r}")


@attrs.frozen
class RestartPolicy:
    """The knobs: pm2-like defaults (1 s doubling to 60 s, ±20 %, healthy after 60 s, a parked
    worker probed every 10 min). Times in seconds."""

    initial: float = attrs.field(default=1.0, validator=_positive)
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1.0))
    cap: float = attrs.field(default=60.0, validator=_positive)
    jitter: float = attrs.field(default=0.2, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])
    healthy_after: float = attrs.field(default=60.0, validator=attrs.validators.ge(0.0))
    park_retry: float = attrs.field(default=600.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.cap < self.initial:
            raise ValueError("cap must be >= initial")

    def base_delay(self, streak: int) -> float:
        """The un-jittered delay before restart number `streak` (1 for the first failure)."""
        # Cap the exponent too, so a long streak cannot overflow the float.
        exponent = min(streak - 1, 1000)
        try:
            return min(self.cap, self.initial * self.factor**exponent)
        except OverflowError:
            return self.cap


@attrs.define
class RestartHistory:
    """What the policy remembers about one worker; `decide` updates it.

    `streak`: failures since the worker was last healthy; `restarts`: restarts decided in
    total (for status); `last_failure`: the kind of the latest failure.
    """

    streak: int = 0
    restarts: int = 0
    last_failure: FailureKind | None = None


@attrs.frozen
class Restart:
    """Start the worker again after `delay` seconds."""

    delay: float


@attrs.frozen
class Park:
    """Do not restart until `retry_at` (same clock as `now`) or a reload; `reason` is for humans."""

    reason: str
    retry_at: float
    kind: FailureKind


def decide(
    policy: RestartPolicy,
    history: RestartHistory,
    failure: FailureKind,
    *,
    now: float,
    ready_since: float | None,
    rng: random.Random,
    reason: str | None = None,
) -> Restart | Park:
    """Decide what follows a failed attempt and record the failure in `history`.

    `ready_since`: when the failed attempt reached `ready` (None if it never did); if it had
    been ready for at least `policy.healthy_after`, the backoff streak starts over.
    `reason`: what a park says (e.g. "wrong secret in the token"); a generic text if None.
    """
    if ready_since is not None and now - ready_since >= policy.healthy_after:
        history.streak = 0
    history.last_failure = failure
    if failure in _PARK_REASONS:
        # A park is not a restart: the streak is kept, so a parked worker that later fails
        # transiently continues where its backoff stood.
        return Park(reason or _PARK_REASONS[failure], now + policy.park_retry, failure)
    history.streak += 1
    history.restarts += 1
    spread = rng.uniform(-policy.jitter, policy.jitter)
    # Jitter spreads restarts of many workers apart; the cap stays a hard maximum.
    return Restart(min(policy.cap, policy.base_delay(history.streak) * (1.0 + spread)))
