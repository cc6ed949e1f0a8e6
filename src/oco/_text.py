"""Text from the outside world, made fit for a terminal, a log line or the status file.

Convex error messages and log lines, sync `FatalError` texts, OpenCode's output and error
bodies are written by someone else: they may hold ANSI or OSC escape sequences (which a
terminal would obey), newlines (which forge log lines) or megabytes. `external` is the one
place that turns such text into a bounded, single-line, inert string. Pure: imports nothing
but the standard library.
"""

from __future__ import annotations

import re

# Longest external text we echo anywhere (a log line, `last_error`, a status cell).
EXTERNAL_MAX_CHARS = 500
# Longest body we read from a peer whose answers we only log or summarise (error bodies).
ERROR_BODY_MAX_BYTES = 64 * 1024

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and any other two-byte ESC sequence.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")


def external(text: object, limit: int = EXTERNAL_MAX_CHARS) -> str:
    """`text` as one inert line: escape sequences dropped, control characters escaped, at
    most `limit` characters (cut with an ellipsis and the original length)."""
    value = text if isinstance(text, str) else str(text)
    # Bound before the regex work, so a 50 MB message costs no more than a short one.
    original = len(value)
    if original > limit * 4:
        value = value[: limit * 4]
    value = _ESCAPES.sub("", value)
    if not value.isprintable():
        value = "".join(c if c.isprintable() else _escaped(c) for c in value)
    if len(value) > limit or original > limit * 4:
        value = f"{value[: max(0, limit - 1)]}… ({original} chars)"
    return value


def _escaped(char: str) -> str:
    if char == "\n":
        return "\\n"
    if char == "\t":
        return " "
    return repr(char)[1:-1]


__all__ = ["ERROR_BODY_MAX_BYTES", "EXTERNAL_MAX_CHARS", "external"]
