"""Adding a worker to a workers file by editing its text, so comments and layout stay.

workers.json is JSON5 (comments, trailing commas, unquoted keys, single-quoted strings):
loading and re-serialising it would drop every comment a user wrote. `insert_worker` scans
the text just enough to find the top-level object's `workers` array (skipping strings and
comments) and inserts the new entry before its closing `]`, in the indentation of the entries
already there. Pure: text in, text out; `ValueError` when the text has no place for an entry
(the top level is not an object, `workers` is not an array, or the text is not JSON5).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import attrs


@attrs.frozen
class _Token:
    """A significant piece of the text: a punctuation character, a string or another atom."""

    kind: str  # one of "{}[]:," or "string" or "atom"
    start: int
    end: int
    value: str = ""  # a string's content (quotes removed, escapes kept as written)


def _tokens(text: str) -> Iterator[_Token]:
    """The significant tokens of JSON5 `text`, comments and whitespace skipped."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace() or c == "\ufeff":
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError("a /* comment is not closed")
            i = end + 2
        elif c in "{}[]:,":
            yield _Token(c, i, i + 1)
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n":
                    raise ValueError("a string runs past the end of its line")
                j += 1
            if j >= n:
                raise ValueError("a string is not closed")
            yield _Token("string", i, j + 1, text[i + 1 : j])
            i = j + 1
        else:
            j = i
            while j < n and not (text[j].isspace() or text[j] in "{}[]:,\"'/"):
                j += 1
            if j == i:  # a lone '/' that starts no comment
                raise ValueError(f"unexpected {c!r}")
            yield _Token("atom", i, j, text[i:j])
            i = j


def _line_indent(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    line = text[start:pos]
    return line[: len(line) - len(line.lstrip(" \t"))]


def _end_of_line_after(text: str, pos: int) -> int:
    """Where the line holding `pos` ends, if after `pos` it holds only blanks and comments that
    end on it; else `pos` (the insertion then stays right there)."""
    i = pos
    while i < len(text) and text[i] in " \t":
        i += 1
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        if end >= 0 and "\n" not in text[i:end]:
            return _end_of_line_after(text, end + 2)
        return pos
    if i >= len(text) or text[i] in "\r\n":
        return i
    return pos


def _matching(tokens: list[_Token], index: int) -> int:
    """The index of the bracket closing the one at `index`."""
    opening = tokens[index].kind
    closing = "}" if opening == "{" else "]"
    depth = 0
    for k in range(index, len(tokens)):
        if tokens[k].kind in ("{", "["):
            depth += 1
        elif tokens[k].kind in ("}", "]"):
            depth -= 1
            if depth == 0:
                if tokens[k].kind != closing:
                    raise ValueError(f"{opening} closed by {tokens[k].kind}")
                return k
    raise ValueError(f"a {opening} is not closed")


def _entry_text(entry: Mapping[str, Any], indent: str, unit: str) -> str:
    body = json.dumps(dict(entry), indent=len(unit.expandtabs(4)) or 2, ensure_ascii=False)
    return body.replace("\n", "\n" + indent)


def insert_worker(text: str, entry: Mapping[str, Any]) -> str:
    """`text` (a workers file) with `entry` appended to its top-level `workers` array.

    Every other character stays as it was. With no `workers` key, one is added to the top-level
    object; an empty (or blank) text becomes a new document.
    """
    if not text.strip():
        return json.dumps({"workers": [dict(entry)]}, indent=2, ensure_ascii=False) + "\n"
    tokens = list(_tokens(text))
    if not tokens or tokens[0].kind != "{":
        raise ValueError('the top level is not an object (expected {"workers": [...]})')
    top_end = _matching(tokens, 0)
    if top_end + 1 < len(tokens):
        raise ValueError("text follows the top-level object")
    # Members of the top-level object: key tokens at depth 1, each followed by ':'.
    depth, k = 0, 0
    workers_value: int | None = None
    while k <= top_end:
        t = tokens[k]
        if t.kind in ("{", "["):
            depth += 1
        elif t.kind in ("}", "]"):
            depth -= 1
        elif (
            depth == 1
            and t.kind in ("string", "atom")
            and t.value == "workers"
            and k + 1 <= top_end
            and tokens[k + 1].kind == ":"
        ):
            workers_value = k + 2
        k += 1
    if workers_value is None:
        return _add_workers_member(text, tokens, top_end, entry)
    if workers_value > top_end or tokens[workers_value].kind != "[":
        raise ValueError('"workers" is not an array')
    close = _matching(tokens, workers_value)
    return _append_to_array(text, tokens, workers_value, close, entry)


def _append_to_array(
    text: str, tokens: list[_Token], open_index: int, close_index: int, entry: Mapping[str, Any]
) -> str:
    opening, closing = tokens[open_index], tokens[close_index]
    outer = _line_indent(text, opening.start)
    elements = close_index - open_index > 1
    if elements:
        first = tokens[open_index + 1]
        same_line = "\n" not in text[opening.end : first.start]
        indent = outer + "  " if same_line else _line_indent(text, first.start)
    else:
        indent = outer + "  "
    unit = indent[len(outer) :] or "  "
    new = _entry_text(entry, indent, unit)
    last = tokens[close_index - 1]  # '[' itself, the last element's end, or a trailing ','
    trailing_comma = elements and last.kind == ","
    after = last.end
    line_end = _end_of_line_after(text, after)
    closes_on_line = "\n" not in text[after : closing.start]
    if line_end == after or closes_on_line:
        line_end = after  # the ']' (or more) follows on this line: insert right here
    comma = "," if elements and not trailing_comma else ""
    tail = "," if trailing_comma else ""
    close_break = f"\n{outer}" if closes_on_line else ""
    return (
        text[:after] + comma + text[after:line_end] + f"\n{indent}{new}{tail}{close_break}" + text[line_end:]
    )


def _add_workers_member(text: str, tokens: list[_Token], top_end: int, entry: Mapping[str, Any]) -> str:
    closing = tokens[top_end]
    last = tokens[top_end - 1]
    members = top_end > 1
    trailing_comma = members and last.kind == ","
    indent = "  "
    if members:
        indent = _line_indent(text, tokens[1].start) or "  "
    new = _entry_text(entry, indent * 2, indent)
    member = f'\n{indent}"workers": [\n{indent * 2}{new}\n{indent}]'
    after = last.end
    comma = "," if members and not trailing_comma else ""
    line_end = _end_of_line_after(text, after)
    if "\n" not in text[after : closing.start]:
        line_end = after
        member += "\n"
    tail = "," if trailing_comma else ""
    return text[:after] + comma + text[after:line_end] + member + tail + text[line_end:]


__all__ = ["insert_worker"]
