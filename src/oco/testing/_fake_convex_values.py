"""Convex's value rules, as the fake Convex backend needs them: sizes, limits and renderings.

Pure functions over decoded values (None, bool, float, int = Int64, str, bytes, list, dict),
following get-convex/convex-backend: `crates/value/src/size.rs` (a value's size: 1 byte per
delimiter plus its parts, so close to its JSON length), `array.rs` / `object.rs` (8192 items,
1024 fields, nesting 64, 32 MiB for any value), `crates/common/src/document.rs` (a document:
1 MiB, nesting 16). `display` is the Rust `Display` of a value that Convex prints in argument
errors; `inspect` is the `object-inspect` rendering `console.log` uses for log lines.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

MAX_ARRAY_LEN = 8192
MAX_OBJECT_FIELDS = 1024
MAX_NESTING = 64  # any value (arguments, results)
MAX_SIZE = 1 << 25  # any value: 32 MiB
MAX_DOCUMENT_NESTING = 16
MAX_DOCUMENT_SIZE = 1 << 20  # 1 MiB (MAX_USER_SIZE)
MAX_ARGS_SIZE = 1 << 24  # FUNCTION_MAX_ARGS_SIZE: 16 MiB
MAX_RESULT_SIZE = 1 << 24  # FUNCTION_MAX_RESULT_SIZE: 16 MiB
MAX_LOG_LINES = 256
MAX_LOG_LINE_BYTES = 32768


def size(value: Any) -> int:
    """Convex's size of a value (`Size::size`): what the 1 MiB and 16 MiB limits measure."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float)):
        return 9
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")) + 2
    if isinstance(value, (bytes, bytearray)):
        return len(value) + 2
    if isinstance(value, list):
        return 2 + sum(size(item) for item in value)
    if isinstance(value, dict):
        return 2 + sum(len(key.encode()) + 1 + size(item) for key, item in value.items())
    raise TypeError(f"not a Convex value: {type(value).__name__}")


def nesting(value: Any) -> int:
    """How deeply arrays and objects nest: 0 for a scalar, 1 for `[]`, 2 for `[[]]`."""
    if isinstance(value, list):
        return 1 + max((nesting(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(item) for item in value.values()), default=0)
    return 0


def value_problem(value: Any) -> str | None:
    """The error Convex gives when building `value` (innermost first), or None if it is valid."""
    if isinstance(value, list):
        for item in value:
            if (problem := value_problem(item)) is not None:
                return problem
        if len(value) > MAX_ARRAY_LEN:
            return f"Array length is too long ({len(value)} > maximum length {MAX_ARRAY_LEN})"
    elif isinstance(value, dict):
        for item in value.values():
            if (problem := value_problem(item)) is not None:
                return problem
        if len(value) > MAX_OBJECT_FIELDS:
            return f"Object has too many fields ({len(value)} > maximum number {MAX_OBJECT_FIELDS})"
    else:
        return None
    if (measured := size(value)) > MAX_SIZE:
        return f"Value is too large ({format_size(measured)} > maximum size {format_size(MAX_SIZE)})"
    if (depth := nesting(value)) > MAX_NESTING:
        return f"Value is too nested (nested {depth} levels deep > maximum nesting {MAX_NESTING})"
    return None


def document_problem(document: dict[str, Any]) -> str | None:
    """Why Convex refuses to write `document` (system fields included), or None."""
    if (problem := value_problem(document)) is not None:
        return problem
    if (depth := nesting(document)) > MAX_DOCUMENT_NESTING:
        return (
            f"{display(document)} isn't a valid document: Document is too nested (nested {depth} "
            f"levels deep > maximum nesting {MAX_DOCUMENT_NESTING})"
        )
    if (measured := size(document)) > MAX_DOCUMENT_SIZE:
        return f"Value is too large ({format_size(measured)} > maximum size {format_size(MAX_DOCUMENT_SIZE)})"
    return None


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_size(n: int) -> str:
    """A byte count as the `humansize` crate's BINARY format prints it: `1.24 MiB`, `1 MiB`."""
    value, unit = float(n), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{n} B"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {_UNITS[unit]}"


# -- Rust's Display of a Convex value (argument errors print the arguments this way) -----------


def rust_float(x: float) -> str:
    """Rust's `{:?}` of an f64: `5.0`, `0.1`, `1e16`, `1e-5`, `NaN`, `inf`."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = repr(float(x))
    if "e" in text:
        mantissa, exponent = text.split("e")
        mantissa = mantissa.removesuffix(".0")
        return f"{mantissa}e{int(exponent)}"
    return text


def _rust_str(text: str) -> str:
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def display(value: Any) -> str:
    """How Convex's Rust code prints a value: `{a: "x", n: 1.0}` with keys sorted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return rust_float(value)
    if isinstance(value, str):
        return _rust_str(value)
    if isinstance(value, (bytes, bytearray)):
        return f"b{_rust_str(bytes(value).hex())}"
    if isinstance(value, list):
        return "[" + ", ".join(display(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {display(value[key])}" for key in sorted(value)) + "}"
    raise TypeError(f"not a Convex value: {type(value).__name__}")


# -- object-inspect, as Convex's console uses it (indent 2, single quotes) ---------------------

_UNDEFINED = object()  # JS `undefined`, for log arguments
UNDEFINED: Any = _UNDEFINED
_LOWBYTE = {8: "b", 9: "t", 10: "n", 12: "f", 13: "r"}
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$]*")
_MAX_STRING = 32768


def js_number(x: float) -> str:
    """JavaScript's `String(number)` for the numbers a function logs."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    if float(x).is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(float(x))
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa.removesuffix('.0')}e{sign}{abs(int(exponent))}"
    return text


def _inspect_str(text: str) -> str:
    if len(text) > _MAX_STRING:
        rest = len(text) - _MAX_STRING
        return _inspect_str(text[:_MAX_STRING]) + f"... {rest} more character{'s' if rest > 1 else ''}"
    escaped = re.sub(r"(['\\])", r"\\\1", text)

    def lowbyte(match: re.Match[str]) -> str:
        code = ord(match.group())
        return "\\" + _LOWBYTE[code] if code in _LOWBYTE else f"\\x{code:02X}"

    return "'" + re.sub(r"[\x00-\x1f]", lowbyte, escaped) + "'"


def inspect(value: Any, depth: int = 0) -> str:
    """`object-inspect(value, {indent: 2})`: what one `console.log` argument becomes."""
    if value is _UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}n"  # an Int64 is a JS bigint
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, str):
        return _inspect_str(value)
    prev, base = "  " * depth, "  "
    joiner = "\n" + prev + base
    if isinstance(value, list):
        items = [inspect(item, depth + 1) for item in value]
        if not items:
            return "[]"
        if any("\n" in item for item in items):
            return "[" + joiner + ("," + joiner).join(items) + "\n" + prev + "]"
        return "[ " + ", ".join(items) + " ]"
    if isinstance(value, dict):
        fields = [
            f"{key if _PLAIN_KEY.fullmatch(key) else _inspect_str(key)}: {inspect(item, depth + 1)}"
            for key, item in value.items()
        ]
        if not fields:
            return "{}"
        return "{" + joiner + ("," + joiner).join(fields) + "\n" + prev + "}"
    return _inspect_str(str(value))


def log_line(level: str, args: tuple[Any, ...]) -> str:
    """One `console.<level>(...args)` line as a client sees it: `[LOG] 'text' 3`."""
    message = " ".join(inspect(arg) for arg in args)
    raw = message.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_LOG_LINE_BYTES:
        message = raw[:MAX_LOG_LINE_BYTES].decode("utf-8", "ignore")
        return f"[{level}] {message} (truncated due to length)"
    return f"[{level}] {message}"


LOG_OVERFLOW = f"[ERROR] Log overflow (maximum {MAX_LOG_LINES}). Remaining log lines omitted."
