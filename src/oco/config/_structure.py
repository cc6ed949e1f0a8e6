"""A strict cattrs converter whose errors become `(json_path, message)` pairs.

JSON5 values are structured into attrs classes once, at the edge. The converter is strict
(a number is not a string, a string is not a list), rejects unknown keys with a did-you-mean
suggestion, and `problems_from` turns cattrs' nested validation errors into flat messages.
"""

from __future__ import annotations

import difflib
import math
import typing
from typing import Any, Literal

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn
from cattrs.v import transform_error


class Mismatch(ValueError):
    """A value has the wrong JSON type or is outside its allowed set; `str()` is the message."""


def json_kind(value: object) -> str:
    """The JSON name of a value's type, for messages: object, array, string, number, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise Mismatch(f"must be a string (got {json_kind(value)})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON5 `\ud800` escapes can produce lone surrogates
        raise Mismatch("must be valid Unicode text (has a lone surrogate)") from None
    return value


def _bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise Mismatch(f"must be true or false (got {json_kind(value)})")
    return value


def _int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Mismatch(f"must be a whole number (got {json_kind(value)})")
    return value


def _float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Mismatch(f"must be a number (got {json_kind(value)})")
    if not math.isfinite(value):
        raise Mismatch("must be a finite number")
    return float(value)


def _list(value: Any, _: type) -> list[Any]:
    if not isinstance(value, list):
        raise Mismatch(f"must be an array (got {json_kind(value)})")
    return value


def _literal_hook(tp: Any) -> Any:
    allowed = typing.get_args(tp)

    def hook(value: Any, _: type) -> Any:
        if isinstance(value, bool) or value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            got = repr(value) if isinstance(value, str) else json_kind(value)
            raise Mismatch(f"must be one of {choices} (got {got})")
        return value

    return hook


def make_converter() -> cattrs.Converter:
    """The strict converter used for workers.json (and anything else read from JSON)."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for tp, hook in ((str, _str), (bool, _bool), (int, _int), (float, _float)):
        conv.register_structure_hook(tp, hook)
    conv.register_structure_hook_func(lambda tp: tp == list[Any], _list)
    conv.register_structure_hook_factory(lambda tp: typing.get_origin(tp) is Literal, _literal_hook)

    def object_hook(cl: type) -> Any:
        inner: Any = make_dict_structure_fn(cl, conv, _cattrs_forbid_extra_keys=True)

        def hook(value: Any, _: type) -> Any:
            if not isinstance(value, dict):
                raise Mismatch(f"must be an object (got {json_kind(value)})")
            return inner(value, cl)

        return hook

    conv.register_structure_hook_factory(attrs.has, object_hook)
    return conv


def _format(exc: BaseException, tp: type | None) -> str:
    if isinstance(exc, Mismatch):
        return str(exc)
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        known = [f.name for f in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        parts = []
        for key in sorted(exc.extra_fields):
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"unknown key {key!r}{hint}")
        return "; ".join(parts)
    if isinstance(exc, KeyError):
        return "is required"
    return cattrs.v.format_exception(exc, tp)


def _json_path(cattrs_path: str) -> str:
    # transform_error writes `$.workers[0].token`; we show `workers[0].token`.
    path = cattrs_path.removeprefix("$").removeprefix(".")
    return path or "(top level)"


def problems_from(exc: BaseException, path: str = "$") -> list[tuple[str, str]]:
    """Flatten a structuring error into `(json_path, message)` pairs, in document order."""
    pairs = []
    for line in transform_error(exc, path=path, format_exception=_format):
        message, _, where = line.rpartition(" @ ")
        pairs.append((_json_path(where), message))
    return pairs
