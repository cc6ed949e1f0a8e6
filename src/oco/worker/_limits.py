"""Convex's size limits, and cutting text to fit them with a visible marker. Pure, no I/O.

Convex refuses a value over 1 MiB ("Value is too large"), an array over 8192 items, and a
document over 1 MiB (Convex docs, "Limits"; convex-http-api.md). A model can produce any
amount of text, so everything the relay sends is measured here first. Sizes are measured as
the UTF-8 bytes of the JSON-encoded string (quotes and escapes included): never smaller than
what Convex counts, so a value that fits here fits there.

Budgets, all in those bytes:
- one message document holds `content`, `reasoning` and `otherParts` together:
  `MESSAGE_BUDGET` (1 MiB less room for the other fields) is shared by them, `otherParts` at
  most `OTHER_PARTS_LIMIT`, `reasoning` at most `REASONING_LIMIT`, and `content` whatever the
  two leave (at least 608 KiB);
- one chunk (a `chatChunks` document) at most `CHUNK_LIMIT`; one attempt streams at most
  `STREAM_BUDGET`; sequence numbers stay below `MAX_CHUNK_SEQUENCE`, which keeps a reply's
  chunk rows under the 8192 items a query may return.
"""

from __future__ import annotations

import json

MIB = 1024 * 1024
VALUE_LIMIT = MIB  # a Convex value (an argument, a field)
DOCUMENT_LIMIT = MIB  # a Convex document
# Room left in a message document for its other fields (ids, role, timestamp, model, ...).
MESSAGE_OVERHEAD = 32 * 1024
MESSAGE_BUDGET = DOCUMENT_LIMIT - MESSAGE_OVERHEAD
OTHER_PARTS_LIMIT = 256 * 1024
REASONING_LIMIT = 128 * 1024
CHUNK_LIMIT = 256 * 1024
STREAM_BUDGET = MESSAGE_BUDGET
MAX_CHUNK_SEQUENCE = 8000  # below oco.domain.ARRAY_LIMIT: rows of one reply, whatever the attempts


def clean(text: str) -> str:
    """`text` encodable as UTF-8: lone surrogates (which JSON from a peer may carry) become U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def json_size(text: str) -> int:
    """Bytes of `text` as a JSON string in UTF-8: what the limits are measured in."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def fits(text: str, limit: int) -> bool:
    # Cheap test first: a JSON string is at most 6 bytes per UTF-16 unit, plus the quotes.
    return len(text) * 6 + 2 <= limit or json_size(text) <= limit


def prefix_within(text: str, limit: int) -> str:
    """The longest prefix of `text` whose `json_size` is at most `limit` (never splits a pair)."""
    if fits(text, limit):
        return text
    if not fits("", limit):
        return ""
    # Each character costs at least one byte, so the answer is at most `limit` characters:
    # json_size(text[:low]) <= limit < json_size(text[:high]).
    low, high = 0, min(len(text), limit)
    if json_size(text[:high]) <= limit:
        return text[:high]
    while high - low > 1:
        middle = (low + high) // 2
        if json_size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle
    head = text[:low]
    if head and "\ud800" <= head[-1] <= "\udbff":  # a high surrogate without its partner
        head = head[:-1]
    return head


def describe_size(size: int) -> str:
    """A size for people: '1.4 MiB', '300 KiB'."""
    if size >= MIB // 10:
        return f"{size / MIB:.1f} MiB"
    return f"{max(1, round(size / 1024))} KiB"


def cut_marker(what: str, size: int, limit: int, opencode_session: str | None) -> str:
    """The visible note where `what` ("answer", "reasoning") was cut to `limit` bytes."""
    where = f"; the full text is in OpenCode session {opencode_session}" if opencode_session else ""
    return (
        f"\n\n[… {what} cut: it is {describe_size(size)}, and a Convex message holds 1 MiB "
        f"in all (this part {describe_size(limit)}){where}]"
    )


def fit(text: str, limit: int, what: str, opencode_session: str | None) -> str:
    """`text` if it fits `limit`, else its longest fitting head followed by the cut marker."""
    text = clean(text)
    if fits(text, limit):
        return text
    marker = cut_marker(what, json_size(text), limit, opencode_session)
    room = limit - json_size(marker) + 2  # one pair of quotes for the joined string
    return prefix_within(text, max(2, room)) + marker
