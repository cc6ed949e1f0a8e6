"""The cattrs converter between Convex values (camelCase) and our attrs types (snake_case).

Strict on what the contract promises (a missing or wrong-typed required field is a
`ConvexProtocolError` naming the function and the field), lenient on what it does not
(extra fields are ignored, so a newer backend does not break us).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from oco.convex._errors import ConvexProtocolError

T = TypeVar("T")


def camel(name: str) -> str:
    """`snake_case` -> `camelCase` (the wire names of the reference backend)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _strict(kind: type, *accepted: type) -> Any:
    def structure(value: Any, _type: Any) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {kind.__name__}, got bool")
        if not isinstance(value, accepted):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return kind(value)

    return structure


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False)
    # cattrs' default would turn 5 into "5"; the contract's types are checked instead.
    converter.register_structure_hook(str, _strict(str, str))
    converter.register_structure_hook(float, _strict(float, int, float))
    converter.register_structure_hook(int, _strict(int, int))
    converter.register_structure_hook(bool, _strict(bool, bool))

    def structure_factory(cls: type) -> Any:
        renames: dict[str, Any] = {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)}
        build: Any = make_dict_structure_fn(cls, converter, **renames)

        def structure_object(value: Any, type_: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected an object, got {type(value).__name__}")
            return build(value, type_)

        return structure_object

    def unstructure_factory(cls: type) -> Any:
        renames: dict[str, Any] = {
            a.name: override(rename=camel(a.name), omit_if_default=a.default is None)
            for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, converter, **renames)

    converter.register_structure_hook_factory(attrs.has, structure_factory)
    converter.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return converter


converter = _make_converter()


def structure(function: str, value: Any, cls: type[T] | Any) -> T:
    """`value` (a decoded result of `function`) as `cls`, or a `ConvexProtocolError`."""
    try:
        return converter.structure(value, cls)
    except Exception as exc:  # noqa: BLE001 - every cattrs failure becomes one protocol error
        if isinstance(exc, cattrs.BaseValidationError):
            messages = cattrs.transform_error(exc, path="$")
        else:
            messages = [f"{exc} @ $"]
        detail, _, field = (messages[0] if messages else "invalid @ $").rpartition(" @ ")
        raise ConvexProtocolError(function, _wire_path(field), detail) from None


def _wire_path(path: str) -> str:
    """cattrs reports attribute names; the reader of the error knows the wire names."""
    return re.sub(r"\.(\w+)", lambda m: "." + camel(m.group(1)), path)


def unstructure(value: Any) -> Any:
    """An attrs value as a Convex argument (camelCase keys; None optionals left out)."""
    return converter.unstructure(value)
