"""Tool and other non-text parts of a turn, encoded for `chat:completeStructuredMessage`.

Raw tool output can be huge and Convex values are capped (reference §9.3-26), so the JSON is
kept under a byte budget with a visible marker instead of failing the completion.
"""

from __future__ import annotations

import json
from typing import Any

OTHER_PARTS_LIMIT = 256 * 1024
_FIELD_LIMIT = 8 * 1024


def _truncate_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"\n…[truncated {len(value) - limit} characters]"
    if isinstance(value, dict):
        return {k: _truncate_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_truncate_strings(v, limit) for v in value]
    return value


def _size(parts: list[Any]) -> int:
    return len(json.dumps(parts, ensure_ascii=False).encode())


def encode_other_parts(parts: list[dict[str, Any]], limit: int = OTHER_PARTS_LIMIT) -> str | None:
    """JSON for the parts, at most `limit` bytes; None when there are none.

    Long strings are cut first; if that is not enough, trailing parts are dropped and a
    `{"type": "truncated", ...}` part says how many.
    """
    if not parts:
        return None
    if _size(parts) <= limit:
        return json.dumps(parts, ensure_ascii=False)
    trimmed = [_truncate_strings(p, _FIELD_LIMIT) for p in parts]
    kept: list[Any] = []
    for index, part in enumerate(trimmed):
        marker = {"type": "truncated", "omittedParts": len(trimmed) - index}
        if _size([*kept, part, marker]) > limit:
            kept.append(marker)
            return json.dumps(kept, ensure_ascii=False)
        kept.append(part)
    return json.dumps(kept, ensure_ascii=False)
