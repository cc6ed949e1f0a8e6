"""Tool and other non-text parts of a turn, encoded for `chat:completeStructuredMessage`.

Raw tool output can be huge and Convex values are capped at 1 MiB, so the JSON is
kept under a byte budget with a visible marker instead of failing the completion. The budget
is measured like every other value we send (`_limits.json_size`: the UTF-8 bytes of the
string as JSON, so the escaping of the quotes inside it counts too).
"""

from __future__ import annotations

import json
from typing import Any

from ._limits import OTHER_PARTS_LIMIT, clean, json_size

_FIELD_LIMIT = 8 * 1024


def _truncate_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"\n…[truncated {len(value) - limit} characters]"
    if isinstance(value, dict):
        return {k: _truncate_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_truncate_strings(v, limit) for v in value]
    return value


def _encoded(parts: list[Any]) -> str:
    return clean(json.dumps(parts, ensure_ascii=False))


def encode_other_parts(parts: list[dict[str, Any]], limit: int = OTHER_PARTS_LIMIT) -> str | None:
    """JSON for the parts, at most `limit` bytes (`json_size`); None when there are none.

    Long strings are cut first; if that is not enough, trailing parts are dropped and a
    `{"type": "truncated", ...}` part says how many.
    """
    if not parts:
        return None
    whole = _encoded(parts)
    if json_size(whole) <= limit:
        return whole
    trimmed = [_truncate_strings(p, _FIELD_LIMIT) for p in parts]
    # A list's JSON is "[" + items joined by ", " + "]", and escaping is per character, so
    # sizes add up: measure each part once instead of re-encoding the growing list.
    used = json_size("[]")
    separator = json_size(", ") - 2
    kept: list[Any] = []
    for index, part in enumerate(trimmed):
        marker = {"type": "truncated", "omittedParts": len(trimmed) - index}
        part_size = json_size(_encoded([part])) - json_size("[]")
        marker_size = json_size(_encoded([marker])) - json_size("[]")
        gap = separator if kept else 0
        if used + gap + part_size + separator + marker_size > limit:
            kept.append(marker)
            return _encoded(kept)
        kept.append(part)
        used += gap + part_size
    return _encoded(kept)
