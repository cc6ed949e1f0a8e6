"""Checks of command-line values shared by several commands, so each says the same thing."""

from __future__ import annotations

import math

from oco.errors import UsageError


def shutdown_timeout(value: float | None) -> float | None:
    """`--shutdown-timeout` of `dev`, `run` and `start`: None (the settings decide) or a finite
    number of seconds > 0; anything else (0, negative, nan, inf) is a `UsageError`."""
    if value is None:
        return None
    if not (value > 0 and math.isfinite(value)):
        raise UsageError(f"--shutdown-timeout must be a number of seconds > 0 (got {value:g})")
    return value


__all__ = ["shutdown_timeout"]
