"""The `convex_encoded_json` value codec (invertible Convex values <-> JSON).

Under this format a JSON number is always a Float64 on the server, so a Python `int` is
sent as a float unless wrapped in `Int64`; `{"$integer"}`, `{"$float"}` and `{"$bytes"}`
carry the values plain JSON cannot (see convex-http-api.md, "Value encoding").
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping
from typing import Any

import attrs

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class CodecError(ValueError):
    """A value that Convex cannot represent, or a malformed encoded value."""


def _check_int64(_instance: object, _attribute: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError("Int64 needs an int")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise CodecError("Int64 out of range")


@attrs.frozen
class Int64:
    """A Python int sent as a Convex Int64 (`v.int64()`, a JS bigint) instead of a float."""

    value: int = attrs.field(validator=_check_int64)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _is_special_float(x: float) -> bool:
    return math.isnan(x) or math.isinf(x) or (x == 0.0 and math.copysign(1.0, x) < 0)


def encode(value: Any) -> Any:
    """A Python value as `convex_encoded_json` (JSON-ready)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Int64):
        return {"$integer": _b64(struct.pack("<q", value.value))}
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise CodecError("int too large for a Convex float64; wrap it in Int64") from None
    if isinstance(value, float):
        if _is_special_float(value):
            return {"$float": _b64(struct.pack("<d", value))}
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": _b64(bytes(value))}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in sorted(value):
            if not isinstance(key, str) or not key or key.startswith("$"):
                raise CodecError("object field names must be non-empty strings not starting with '$'")
            out[key] = encode(value[key])
        return out
    raise CodecError(f"cannot encode a {type(value).__name__} as a Convex value")


def _unb64(text: Any, size: int | None) -> bytes:
    if not isinstance(text, str):
        raise CodecError("base64 payload must be a string")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise CodecError("bad base64 payload") from None
    if size is not None and len(raw) != size:
        raise CodecError(f"expected {size} bytes, got {len(raw)}")
    return raw


def decode(value: Any) -> Any:
    """A `convex_encoded_json` value as Python: Int64 -> int, numbers -> float, bytes -> bytes."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return [decode(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, payload),) = value.items()
            if key == "$integer":
                return struct.unpack("<q", _unb64(payload, 8))[0]
            if key == "$float":
                return struct.unpack("<d", _unb64(payload, 8))[0]
            if key == "$bytes":
                return _unb64(payload, None)
        if any(key.startswith("$") for key in value):
            raise CodecError("unknown special value")
        return {key: decode(item) for key, item in value.items()}
    raise CodecError(f"not a JSON value: {type(value).__name__}")
