"""Coalescing streamed text into `chat:writeChunk` calls, without I/O or clocks of its own.

The reference wrote one chunk per turn (no streaming) and reused sequence 0 on errors
(§9.3-22, -26). A `ChunkBuffer` per assistant message takes text deltas as they arrive and
says when a write is due: the first text goes out at once (first-chunk latency is what the
user sees), later text at most once per `interval`. Sequence numbers start at 0 and only
ever increase; concatenating the chunks in order gives exactly the text that was added.

Shell loop, in short: `add(delta, now)` on each delta; sleep until `next_flush_at()` (or
until text arrives when it is None); `take(now)` and write the chunk; at the end of the turn
`flush_all()` and write that too. A failed write is retried with the *same* `Chunk` (the
buffer has already moved past it); `text` holds everything added, for the completion call.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Chunk:
    """One `chat:writeChunk` call: its text and its sequence number."""

    text: str
    sequence: int


class ChunkBuffer:
    """Pending text for one assistant message plus the write pacing; times are in seconds."""

    def __init__(self, interval: float = 0.2, *, first_sequence: int = 0) -> None:
        if interval < 0:
            raise ValueError("interval must be >= 0")
        if first_sequence < 0:
            raise ValueError("first_sequence must be >= 0")
        self.interval = interval
        self._pending: list[str] = []
        self._all: list[str] = []
        self._next_sequence = first_sequence
        self._last_write: float | None = None
        self._pending_since: float | None = None  # when the oldest pending text arrived

    @property
    def text(self) -> str:
        """Everything added so far, written or not."""
        return "".join(self._all)

    @property
    def pending(self) -> str:
        """Text added but not yet handed out in a chunk."""
        return "".join(self._pending)

    @property
    def next_sequence(self) -> int:
        """The sequence number the next chunk will carry (never reused)."""
        return self._next_sequence

    def add(self, text: str, now: float) -> None:
        """Append a delta that arrived at `now`; empty deltas are ignored."""
        if text:
            if not self._pending:
                self._pending_since = now
            self._pending.append(text)
            self._all.append(text)

    def next_flush_at(self) -> float | None:
        """When the pending text may be written, or None when nothing is pending.

        That is when the text arrived, but never sooner than `interval` after the last write.
        """
        if not self._pending or self._pending_since is None:
            return None
        if self._last_write is None:
            return self._pending_since
        return max(self._pending_since, self._last_write + self.interval)

    def due(self, now: float) -> bool:
        at = self.next_flush_at()
        return at is not None and now >= at

    def take(self, now: float) -> Chunk | None:
        """The pending text as the next chunk if a write is due at `now`, else None."""
        if not self.due(now):
            return None
        self._last_write = now
        return self._cut()

    def flush_all(self) -> Chunk | None:
        """The remaining text regardless of pacing (the turn is over), or None if none."""
        if not self._pending:
            return None
        return self._cut()

    def _cut(self) -> Chunk:
        chunk = Chunk("".join(self._pending), self._next_sequence)
        self._pending.clear()
        self._next_sequence += 1
        return chunk
