"""Fault injection for the fake Convex backend: latency, error statuses, hangs.

Refused connections are a property of the server, not of the app: see
`FakeConvexServer.stop_listening`.
"""

from __future__ import annotations

from typing import Any

import attrs

ERROR_STATUSES = (500, 502, 503, 560)
_UNSET: Any = object()


@attrs.frozen
class Fault:
    """What to do to a matching call.

    `status` answers with that HTTP status instead of running the function (560 is a function
    error); with `after=True` the function runs and commits first, then the answer is lost —
    the ambiguous case a non-idempotent mutation must not blindly retry. `hang` never answers
    (until the request is cancelled). `latency` (seconds, trio time) delays the answer.
    A 560 reads as the function's own `Uncaught Error: injected fault`, or, with
    `throws_convex_error`, as `throw new ConvexError(error_data)` (whose data survives prod).
    """

    latency: float = 0.0
    status: int | None = attrs.field(default=None)
    hang: bool = False
    after: bool = False
    throws_convex_error: bool = False
    error_data: Any = None

    @status.validator
    def _check_status(self, _attribute: object, value: int | None) -> None:
        if value is not None and value not in ERROR_STATUSES:
            raise ValueError(f"fault status must be one of {ERROR_STATUSES}")


@attrs.define
class _Rule:
    function: str | None
    fault: Fault
    remaining: int | None


class Faults:
    """The active fault rules; the first rule matching a function applies."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []

    def add(
        self,
        *,
        function: str | None = None,
        latency: float = 0.0,
        status: int | None = None,
        hang: bool = False,
        after: bool = False,
        times: int | None = None,
        convex_error: Any = _UNSET,
    ) -> Fault:
        """Apply a fault to `function` (every function when None), `times` times or forever.

        `convex_error=data` answers 560 as if the function threw `ConvexError(data)`."""
        throws = convex_error is not _UNSET
        if throws and status is None:
            status = 560
        fault = Fault(
            latency=latency,
            status=status,
            hang=hang,
            after=after,
            throws_convex_error=throws,
            error_data=None if not throws else convex_error,
        )
        self._rules.append(_Rule(function, fault, times))
        return fault

    def clear(self) -> None:
        self._rules.clear()

    def take(self, function: str) -> Fault | None:
        """The fault for one call of `function`, using up one of its `times`."""
        for rule in self._rules:
            if rule.function not in (None, function):
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
            return rule.fault
        return None
