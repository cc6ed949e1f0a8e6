"""Coalescing streamed text into `chat:writeChunk` calls, without I/O or clocks of its own.

The reference worker wrote one chunk per turn (no streaming) and reused sequence 0 on
errors. A `ChunkBuffer` per assistant message takes text deltas as they arrive and
says when a write is due: the first text goes out at once (first-chunk latency is what the
user sees), later text at most once per `interval`. Sequence numbers start at
`first_sequence` and only ever increase; concatenating the chunks in order gives exactly the
text that was added, within the limits below.

Limits (Convex refuses a value over 1 MiB, and a query over 8192 rows; see `_limits`): one
chunk carries at most `chunk_limit` bytes, so a huge delta is split over several writes; one
attempt streams at most `stream_budget` bytes and uses numbers below `sequence_limit`. The
chunk that reaches either limit ends with `STREAM_CUT_NOTE`, and nothing more is streamed
(the completion still carries the answer).

Shell loop, in short: `add(delta, now)` on each delta; sleep until `next_flush_at()` (or
until text arrives when it is None); `take(now)` and write the chunk; at the end of the turn
`flush_all()` until it gives None, writing each. A failed write is not retried with a new
number (the buffer has already moved past it); `text` holds everything added, for the
completion call.
"""

from __future__ import annotations

import attrs

from ._limits import CHUNK_LIMIT, MAX_CHUNK_SEQUENCE, STREAM_BUDGET, clean, fits, json_size, prefix_within

STREAM_CUT_NOTE = "\n\n[… the live view stops here; the whole answer appears when it is complete]"
_NOTE_SIZE = json_size(STREAM_CUT_NOTE)


@attrs.frozen
class Chunk:
    """One `chat:writeChunk` call: its text and its sequence number."""

    text: str
    sequence: int


class ChunkBuffer:
    """Pending text for one assistant message plus the write pacing; times are in seconds."""

    def __init__(
        self,
        interval: float = 0.2,
        *,
        first_sequence: int = 0,
        chunk_limit: int = CHUNK_LIMIT,
        stream_budget: int = STREAM_BUDGET,
        sequence_limit: int = MAX_CHUNK_SEQUENCE,
    ) -> None:
        if interval < 0:
            raise ValueError("interval must be >= 0")
        if first_sequence < 0:
            raise ValueError("first_sequence must be >= 0")
        if chunk_limit < 2 * _NOTE_SIZE or stream_budget < chunk_limit:
            raise ValueError("chunk_limit must hold the cut note twice, stream_budget a chunk")
        self.interval = interval
        self.chunk_limit = chunk_limit
        self.stream_budget = stream_budget
        self.sequence_limit = sequence_limit
        self._pending: list[str] = []
        self._all: list[str] = []
        self._next_sequence = first_sequence
        self._streamed = 0  # bytes (json_size) handed out in chunks so far
        self._closed = first_sequence >= sequence_limit  # no more chunks: a limit was reached
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

    @property
    def closed(self) -> bool:
        """A limit was reached: no more chunks for this attempt."""
        return self._closed

    def add(self, text: str, now: float) -> None:
        """Append a delta that arrived at `now`; empty deltas are ignored."""
        if text:
            self._all.append(text)
            if self._closed:
                return
            if not self._pending:
                self._pending_since = now
            self._pending.append(text)

    def standalone(self, text: str) -> Chunk | None:
        """`text` as a chunk of its own, now, before any pending text (a separator); None if
        no chunk may be written any more. It does not count as a paced write."""
        text = clean(text)
        if self._closed or not text or self._next_sequence + 1 >= self.sequence_limit:
            return None
        if json_size(text) + _NOTE_SIZE > min(self.chunk_limit, self.stream_budget - self._streamed):
            return None
        return self._emit(text)

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
        """The next piece of the remaining text regardless of pacing (the turn is over), or
        None if none is left; call it until it gives None."""
        if not self._pending:
            return None
        return self._cut()

    def _cut(self) -> Chunk:
        text = clean("".join(self._pending))
        self._pending.clear()
        room = self.stream_budget - self._streamed - _NOTE_SIZE  # always leave room for the note
        last_number = self._next_sequence + 1 >= self.sequence_limit
        if not last_number and fits(text, min(self.chunk_limit, room)):
            return self._emit(text)
        if not last_number and room >= self.chunk_limit:
            # Too large for one write, not for the attempt: this piece now, the rest next.
            head = prefix_within(text, self.chunk_limit)
            self._pending.append(text[len(head) :])
            return self._emit(head)
        # A limit is reached: the last chunk says so, and the live view stops here.
        self._closed = True
        self._pending_since = None
        head = prefix_within(text, min(self.chunk_limit - _NOTE_SIZE, room) + 2)
        return self._emit(head + STREAM_CUT_NOTE)

    def _emit(self, text: str) -> Chunk:
        chunk = Chunk(text, self._next_sequence)
        self._next_sequence += 1
        self._streamed += json_size(text)
        return chunk
