"""Server-sent events framing with a bound: bytes in, `data` payloads out (pure, no I/O).

httpx-sse reads each line whole, however long; a server that never sends a newline would
grow it without end. `SSEDecoder` keeps at most `max_event_bytes` of one event: a longer
line or event is dropped (counted in `dropped`) and decoding resumes at the next event.
Only the `data` field matters to us (OpenCode puts the whole JSON event there).
"""

from __future__ import annotations

# The largest event we keep: a tool's whole output can ride in one `message.part.updated`.
MAX_EVENT_BYTES = 8 * 1024 * 1024


class SSEDecoder:
    """Feed raw bytes as they arrive; get each complete event's data (lines joined by "\\n")."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self.dropped = 0  # events thrown away for being too large
        self._pending = bytearray()  # the current, unfinished line
        self._data: list[bytes] = []  # data lines of the current event
        self._size = 0  # bytes in `_data`
        self._skipping = False  # the current event is too large; wait for its end

    def feed(self, chunk: bytes) -> list[str]:
        """The data of every event that `chunk` completes."""
        events: list[str] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                self._grow(chunk[start:])
                return events
            self._grow(chunk[start:end])
            line = bytes(self._pending)
            self._pending.clear()
            start = end + 1
            data = self._line(line[:-1] if line.endswith(b"\r") else line)
            if data is not None:
                events.append(data)

    def _grow(self, piece: bytes) -> None:
        if self._skipping:
            # Only whether this line is blank still matters (a blank line ends the event).
            if not self._pending:
                self._pending += piece.strip(b"\r")[:1]
            return
        if self._size + len(self._pending) + len(piece) > self.max_event_bytes:
            self._skipping = True
            self.dropped += 1
            self._pending.clear()
            self._data.clear()
            self._size = 0
            self._pending += piece.strip(b"\r")[:1] or b"x"  # this line had content
            return
        self._pending += piece

    def _line(self, line: bytes) -> str | None:
        if not line:  # a blank line ends the event
            data, self._data, self._size = self._data, [], 0
            skipped, self._skipping = self._skipping, False
            if skipped or not data:
                return None
            return b"\n".join(data).decode(errors="replace")
        if self._skipping:
            return None
        field, _, value = line.partition(b":")
        if field == b"data":
            value = value[1:] if value.startswith(b" ") else value
            self._data.append(value)
            self._size += len(value) + 1
        return None  # comments (":"), `event`, `id` and `retry` do not matter here
