"""The fake Convex backend's tables, argument validators and function registry.

Tables hold documents as dicts in insertion order, like Convex's `_creationTime` order.
Functions run synchronously against the `Store`, so each one is a transaction: it either
raises before writing (validation first) or commits all its writes.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any, Literal

import attrs

Kind = Literal["query", "mutation", "action"]
Doc = dict[str, Any]


class FunctionFailure(Exception):
    """A function threw: served as HTTP 560 `{"status": "error", "errorMessage": ...}`."""

    def __init__(self, message: str, *, uncaught: bool = True) -> None:
        self.error_message = f"Uncaught Error: {message}" if uncaught else message
        super().__init__(message)


class Store:
    """In-memory tables: `insert`, `patch`, `delete` and equality lookups."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.tables: dict[str, dict[str, Doc]] = {}
        self._ids = itertools.count(1)

    def now(self) -> float:
        return float(self.clock())

    def insert(self, table: str, doc: Doc) -> str:
        doc_id = f"{next(self._ids)}{secrets.token_hex(4)};{table}"
        self.tables.setdefault(table, {})[doc_id] = {
            "_id": doc_id,
            "_creationTime": self.now(),
            **{k: v for k, v in doc.items() if v is not None},
        }
        return doc_id

    def rows(self, table: str) -> Iterator[Doc]:
        yield from list(self.tables.get(table, {}).values())

    def find(self, table: str, **equal: Any) -> list[Doc]:
        return [d for d in self.rows(table) if all(d.get(k) == v for k, v in equal.items())]

    def first(self, table: str, **equal: Any) -> Doc | None:
        found = self.find(table, **equal)
        return found[0] if found else None

    def patch(self, doc: Doc, **fields: Any) -> None:
        """Set fields; None removes a field (Convex's `undefined`)."""
        stored = self.tables[doc["_id"].split(";")[1]][doc["_id"]]
        for key, value in fields.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = value

    def delete(self, doc: Doc) -> None:
        self.tables[doc["_id"].split(";")[1]].pop(doc["_id"], None)


# -- argument validators (a small `v.*`) ------------------------------------------------


@attrs.frozen
class V:
    """A validator: `name` as Convex prints it, `check(value) -> error text or None`."""

    name: str
    check: Callable[[Any], str | None]
    optional: bool = False


def _kind(name: str, test: Callable[[Any], bool]) -> V:
    return V(name, lambda value: None if test(value) else "Value does not match validator.")


string = _kind("v.string()", lambda x: isinstance(x, str))
number = _kind("v.float64()", lambda x: isinstance(x, float))
boolean = _kind("v.boolean()", lambda x: isinstance(x, bool))


def optional(inner: V) -> V:
    return V(f"v.optional({inner.name})", inner.check, optional=True)


def array(inner: V) -> V:
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return "Value does not match validator."
        for item in value:
            if (problem := inner.check(item)) is not None:
                return problem
        return None

    return V(f"v.array({inner.name})", check)


def obj(fields: dict[str, V]) -> V:
    def check(value: Any) -> str | None:
        if not isinstance(value, dict):
            return "Value does not match validator."
        return object_problem(fields, value)

    return V("v.object({...})", check)


def object_problem(fields: dict[str, V], value: dict[str, Any]) -> str | None:
    """Convex's texts for a bad object: missing field, extra field, wrong type."""
    for name, validator in fields.items():
        if name not in value:
            if not validator.optional:
                return (
                    f"Object is missing the required field `{name}`. Consider wrapping the "
                    "field validator in `v.optional(...)` if this is expected."
                )
            continue
        if validator.check(value[name]) is not None:
            return f"Value does not match validator.\nPath: .{name}\nValidator: {validator.name}"
    for name in value:
        if name not in fields:
            return f"Object contains extra field `{name}` that is not in the validator."
    return None


def validate_args(fields: dict[str, V], args: dict[str, Any]) -> None:
    """Raise the ArgumentValidationError the real backend raises (it echoes the arguments)."""
    problem = object_problem(fields, args)
    if problem is not None:
        raise FunctionFailure(
            f"ArgumentValidationError: {problem}\n\nObject: {json.dumps(args)}", uncaught=False
        )


# -- the registry ------------------------------------------------------------------------

Handler = Callable[[Store, dict[str, Any]], Any]


@attrs.frozen
class Function:
    path: str
    kind: Kind
    args: dict[str, V]
    handler: Handler


FUNCTIONS: dict[str, Function] = {}


def function(path: str, kind: Kind, **args: V) -> Callable[[Handler], Handler]:
    """Register a fake backend function under its Convex path."""

    def register(handler: Handler) -> Handler:
        FUNCTIONS[path] = Function(path, kind, args, handler)
        return handler

    return register
