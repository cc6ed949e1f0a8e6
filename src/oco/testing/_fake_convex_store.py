"""The fake Convex backend's tables, argument validators and function registry.

Tables hold documents as dicts in insertion order, like Convex's `_creationTime` order.
Functions run synchronously against the `Store` inside `begin` / `commit`, so each one is a
transaction: a failure (a throw, or a write over Convex's document limits) undoes every write
it made. `log` collects the function's `console.*` lines.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections.abc import Callable, Iterator
from typing import Any, Literal

import attrs

from oco.testing._fake_convex_errors import FunctionFailure
from oco.testing._fake_convex_values import (
    LOG_OVERFLOW,
    MAX_LOG_LINES,
    display,
    document_problem,
    log_line,
)

Kind = Literal["query", "mutation", "action"]
Doc = dict[str, Any]
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Convex ids are base32 of this alphabet


class Store:
    """In-memory tables: `insert`, `patch`, `delete` and equality lookups."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.tables: dict[str, dict[str, Doc]] = {}
        self.log_lines: list[str] = []
        self._ids = itertools.count(1)
        self._undo: list[Callable[[], object]] | None = None
        self._frozen_now: float | None = None

    def now(self) -> float:
        """`Date.now()`: whole milliseconds, frozen while a function runs (as in Convex)."""
        if self._frozen_now is not None:
            return self._frozen_now
        return float(math.floor(self.clock()))

    # -- transactions ------------------------------------------------------------------

    def begin(self) -> None:
        """Start a function's transaction: writes are checked against Convex's limits and
        can be undone; log lines start afresh."""
        self._undo = []
        self.log_lines = []
        self._frozen_now = None
        self._frozen_now = self.now()

    @property
    def in_transaction(self) -> bool:
        return self._undo is not None

    def commit(self) -> None:
        self._undo = self._frozen_now = None

    def rollback(self) -> None:
        undo, self._undo, self._frozen_now = self._undo or [], None, None
        for step in reversed(undo):
            step()

    def log(self, *args: Any, level: str = "LOG") -> None:
        """`console.log(...args)`: Convex keeps 256 lines, the last one saying it overflowed."""
        if len(self.log_lines) < MAX_LOG_LINES - 1:
            self.log_lines.append(log_line(level, args))
        elif len(self.log_lines) == MAX_LOG_LINES - 1:
            self.log_lines.append(LOG_OVERFLOW)

    def _check(self, doc: Doc) -> None:
        if self._undo is not None and (problem := document_problem(doc)) is not None:
            raise FunctionFailure(problem)  # the write's promise rejects: no frame

    # -- documents -----------------------------------------------------------------------

    def new_id(self, table: str) -> str:
        """A document id: unique, its table after the `;` (the fake's own shape)."""
        return f"{next(self._ids)}{secrets.token_hex(4)};{table}"

    @staticmethod
    def convex_id() -> str:
        """A value shaped like a real Convex document id (32 base32 characters)."""
        return "".join(secrets.choice(_ID_ALPHABET) for _ in range(32))

    def insert(self, table: str, doc: Doc) -> str:
        doc_id = self.new_id(table)
        stored = {
            "_id": doc_id,
            "_creationTime": self.now(),
            **{k: v for k, v in doc.items() if v is not None},
        }
        self._check(stored)
        rows = self.tables.setdefault(table, {})
        rows[doc_id] = stored
        if self._undo is not None:
            self._undo.append(lambda: rows.pop(doc_id, None))
        return doc_id

    def rows(self, table: str) -> Iterator[Doc]:
        yield from list(self.tables.get(table, {}).values())

    def find(self, table: str, **equal: Any) -> list[Doc]:
        return [d for d in self.rows(table) if all(d.get(k) == v for k, v in equal.items())]

    def first(self, table: str, **equal: Any) -> Doc | None:
        found = self.find(table, **equal)
        return found[0] if found else None

    def get(self, doc_id: str) -> Doc | None:
        """`ctx.db.get(id)`."""
        table = doc_id.split(";", 1)[1] if ";" in doc_id else ""
        return self.tables.get(table, {}).get(doc_id)

    def patch(self, doc: Doc, **fields: Any) -> None:
        """Set fields; None removes a field (Convex's `undefined`)."""
        stored = self.tables[doc["_id"].split(";")[1]][doc["_id"]]
        updated = dict(stored)
        for key, value in fields.items():
            if value is None:
                updated.pop(key, None)
            else:
                updated[key] = value
        self._check(updated)
        before = dict(stored)
        stored.clear()
        stored.update(updated)
        if self._undo is not None:

            def restore() -> None:
                stored.clear()
                stored.update(before)

            self._undo.append(restore)

    def delete(self, doc: Doc) -> None:
        rows = self.tables[doc["_id"].split(";")[1]]
        if doc["_id"] not in rows:
            return
        order = list(rows)
        position, removed = order.index(doc["_id"]), rows.pop(doc["_id"])
        if self._undo is not None:

            def restore() -> None:
                items = list(rows.items())
                items.insert(position, (removed["_id"], removed))
                rows.clear()
                rows.update(items)

            self._undo.append(restore)


# -- argument validators (a small `v.*`) ------------------------------------------------


@attrs.frozen
class V:
    """A validator: `name` as Convex prints it, `check(value) -> problem or None`.

    A problem is `(reversed path, text)`: Convex adds `.field` / `[i]` as the error unwinds."""

    name: str
    check: Callable[[Any], tuple[list[str], str] | None]
    optional: bool = False


def _no_match(value: Any, validator: str) -> tuple[list[str], str]:
    return [], f"Value does not match validator.\n{{path}}\nValue: {display(value)}\nValidator: {validator}"


def _kind(name: str, test: Callable[[Any], bool]) -> V:
    return V(name, lambda value: None if test(value) else _no_match(value, name))


string = _kind("v.string()", lambda x: isinstance(x, str))
number = _kind("v.float64()", lambda x: isinstance(x, float))
boolean = _kind("v.boolean()", lambda x: isinstance(x, bool))


def optional(inner: V) -> V:
    return V(f"v.optional({inner.name})", inner.check, optional=True)


def array(inner: V) -> V:
    name = f"v.array({inner.name})"

    def check(value: Any) -> tuple[list[str], str] | None:
        if not isinstance(value, list):
            return _no_match(value, name)
        for i, item in enumerate(value):
            if (problem := inner.check(item)) is not None:
                return [*problem[0], f"[{i}]"], problem[1]
        return None

    return V(name, check)


def object_name(fields: dict[str, V]) -> str:
    return "v.object({" + ", ".join(f"{k}: {fields[k].name}" for k in sorted(fields)) + "})"


def obj(fields: dict[str, V]) -> V:
    name = object_name(fields)

    def check(value: Any) -> tuple[list[str], str] | None:
        if not isinstance(value, dict):
            return _no_match(value, name)
        return object_problem(fields, value)

    return V(name, check)


def object_problem(fields: dict[str, V], value: dict[str, Any]) -> tuple[list[str], str] | None:
    """Convex's checks of an object, fields in sorted order: missing, wrong, then extra."""
    shown = f"\n{{path}}\nObject: {display(value)}\nValidator: {object_name(fields)}"
    for name in sorted(fields):
        validator = fields[name]
        if name not in value:
            if not validator.optional:
                return [], (
                    f"Object is missing the required field `{name}`. Consider wrapping the "
                    "field validator in `v.optional(...)` if this is expected." + shown
                )
            continue
        if (problem := validator.check(value[name])) is not None:
            return [*problem[0], f".{name}"], problem[1]
    for name in sorted(value):
        if name not in fields:
            return [], f"Object contains extra field `{name}` that is not in the validator." + shown
    return None


def validate_args(fields: dict[str, V], args: dict[str, Any]) -> None:
    """Raise the ArgumentValidationError the real backend raises (it echoes the arguments)."""
    problem = object_problem(fields, args)
    if problem is not None:
        reversed_path, text = problem
        path = f"Path: {''.join(reversed(reversed_path))}" if reversed_path else ""
        raise FunctionFailure(f"ArgumentValidationError: {text.replace('{path}', path, 1)}", uncaught=False)


# -- the registry ------------------------------------------------------------------------

Handler = Callable[[Store, dict[str, Any]], Any]


@attrs.frozen
class Function:
    path: str
    kind: Kind
    args: dict[str, V]
    handler: Handler
    public: bool = True


FUNCTIONS: dict[str, Function] = {}


def function(path: str, kind: Kind, *, public: bool = True, **args: V) -> Callable[[Handler], Handler]:
    """Register a fake backend function under its Convex path (`public=False`: internal)."""

    def register(handler: Handler) -> Handler:
        FUNCTIONS[path] = Function(path, kind, args, handler, public)
        return handler

    return register
