"""Errors of the OpenCode layer, each a neutral type of `oco.errors` (so the CLI prints it as
one line, and the worker and supervisor act on it without knowing OpenCode):

    OpenCodeNotFound ....... no opencode binary [Misconfigured]: park
    OpenCodeStartError ..... `opencode serve` exited or stayed silent at start [Unavailable]
    OpenCodeError .......... an HTTP call failed, whatever the status [Unavailable]: the
                             server is checked and replaced if it stopped answering
"""

from __future__ import annotations

from oco.errors import Misconfigured, Unavailable


class OpenCodeNotFound(Misconfigured):
    """No opencode binary in the settings, `$OCO_OPENCODE_BIN` or PATH."""

    def __init__(self) -> None:
        super().__init__("opencode not found: install it with `npm i -g opencode-ai` or set OCO_OPENCODE_BIN")


class OpenCodeStartError(Unavailable):
    """`opencode serve` exited or stayed silent during start-up; carries its last output lines."""

    def __init__(self, reason: str, output_tail: list[str]) -> None:
        self.reason = reason
        self.output_tail = output_tail
        tail = " | ".join(output_tail[-5:])
        super().__init__(f"opencode did not start: {reason}" + (f" (output: {tail})" if tail else ""))


class OpenCodeError(Unavailable):
    """An OpenCode HTTP call failed: `status` is the HTTP status (None when unreachable)."""

    def __init__(self, status: int | None, summary: str) -> None:
        self.status = status
        self.summary = summary
        where = f"HTTP {status}" if status is not None else "unreachable"
        super().__init__(f"OpenCode request failed ({where}): {summary}")
