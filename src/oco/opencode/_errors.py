"""Errors of the OpenCode layer; all are `OcoError`s so the CLI prints them as one line."""

from __future__ import annotations

from oco.errors import OcoError


class OpenCodeNotFound(OcoError):
    """No opencode binary in the settings, `$OCO_OPENCODE_BIN` or PATH."""

    def __init__(self) -> None:
        super().__init__(
            "opencode not found: install it with `npm i -g opencode-ai` or set OCO_OPENCODE_BIN"
        )


class OpenCodeStartError(OcoError):
    """`opencode serve` exited or stayed silent during start-up; carries its last output lines."""

    def __init__(self, reason: str, output_tail: list[str]) -> None:
        self.reason = reason
        self.output_tail = output_tail
        tail = " | ".join(output_tail[-5:])
        super().__init__(f"opencode did not start: {reason}" + (f" (output: {tail})" if tail else ""))


class OpenCodeError(OcoError):
    """An OpenCode HTTP call failed: `status` is the HTTP status (None when unreachable)."""

    def __init__(self, status: int | None, summary: str) -> None:
        self.status = status
        self.summary = summary
        where = f"HTTP {status}" if status is not None else "unreachable"
        super().__init__(f"OpenCode request failed ({where}): {summary}")
