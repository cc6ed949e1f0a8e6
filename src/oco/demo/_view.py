"""What the demo prints: the web app's view of workers and chats, and the closing summary.

Formatting is pure (strings in, strings out) so it is tested without running anything; the
`Screen` only adds the clock and the output stream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import attrs

from oco.domain import ChatMessage

_PREVIEW = 200  # characters of a tool's input or output shown on one line


@attrs.frozen
class MessageTiming:
    """One chat message's figures; None where it never happened (no chunk, no completion)."""

    worker: str
    prompt: str
    first_chunk_s: float | None
    completed_s: float | None
    chunks: int


def one_line(text: str, limit: int = _PREVIEW) -> str:
    """`text` on a single line (newlines shown as ⏎), cut at `limit` characters."""
    flat = text.replace("\r", "").replace("\n", "⏎")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def is_error_reply(message: ChatMessage | None) -> bool:
    """Whether a completed reply is the worker's readable error (its last paragraph says so)."""
    if message is None:
        return False
    last = message.content.rstrip().rsplit("\n\n", 1)[-1]
    return last.startswith("Error: ")


def tool_lines(other_parts: str | None) -> list[str]:
    """One line per tool call recorded in a completed message's `otherParts` JSON."""
    try:
        parts = json.loads(other_parts) if other_parts else []
    except ValueError:
        return ["(otherParts is not JSON)"]
    lines = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict) or part.get("type") != "tool":
            continue
        state: dict[str, Any] = s if isinstance(s := part.get("state"), dict) else {}
        given = state.get("input")
        if isinstance(given, dict) and isinstance(given.get("command"), str):
            shown = given["command"]
        else:
            shown = json.dumps(given, ensure_ascii=False) if given is not None else ""
        result = state.get("output") if state.get("status") == "completed" else state.get("error")
        line = f"{part.get('tool', '?')}({one_line(shown, 60)}) {state.get('status', '?')}"
        if isinstance(result, str) and result.strip():
            line += f" -> {one_line(result.strip())}"
        lines.append(line)
    return lines


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()

    return [fmt(header), fmt(["-" * w for w in widths]), *(fmt(row) for row in rows)]


def format_summary(timings: Sequence[MessageTiming], calls: Mapping[str, int], http_requests: int) -> str:
    """The closing table: per message, time to first chunk and to completion; Convex calls."""
    lines = ["", "Summary", ""]
    rows = [
        [t.worker, one_line(t.prompt, 40), _seconds(t.first_chunk_s), _seconds(t.completed_s), str(t.chunks)]
        for t in timings
    ]
    lines += _table(["worker", "message", "first chunk s", "completed s", "chunks"], rows)
    lines += [
        "",
        f"Convex calls by function ({sum(calls.values())} calls in {http_requests} HTTP requests):",
        "",
    ]
    by_count = sorted(calls.items(), key=lambda item: (-item[1], item[0]))
    lines += _table(["function", "calls"], [[name, str(count)] for name, count in by_count])
    return "\n".join(lines) + "\n"


class Screen:
    """Prints timestamped lines, each prefixed with who it is about (a worker, the web app)."""

    def __init__(self, out: TextIO, started_at: float) -> None:
        self._out = out
        self._started_at = started_at

    def say(self, now: float, who: str, text: str) -> None:
        self._out.write(f"{now - self._started_at:6.2f}s  {who:<8} {text}\n")
        self._out.flush()

    def raw(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def completed(self, now: float, who: str, message: ChatMessage, elapsed: float) -> None:
        """The finished answer the way the web app renders it: thinking, tools, then the text."""
        if message.reasoning:
            self.say(now, who, f"thought: {one_line(message.reasoning)}")
        for line in tool_lines(message.other_parts):
            self.say(now, who, f"tool call: {line}")
        self.say(now, who, f"answer complete after {elapsed:.2f} s:")
        for text_line in (message.content or "(empty)").splitlines() or [""]:
            self.raw(f"{'':18}| {text_line}\n")
