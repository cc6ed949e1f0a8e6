"""Lazy re-exports for package `__init__`s (PEP 562 module `__getattr__`).

A package names its public API without importing it: `from oco.worker import Worker` still
works, and imports `oco.worker._worker` (with trio and httpx) only then, while importing one
pure module of the package (`oco.worker._planner`) loads nothing else of it. Each package
also imports the same names under `TYPE_CHECKING`, for type checkers and readers;
`tests/test_exports.py` pins that both lists and `__all__` agree. Pure: standard library only.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, from `{submodule: "Name other=original"}`.

    A name is imported from its (relative) submodule on first use and then kept as a plain
    attribute of the package; `public=original` exports a name under another name.
    """
    where: dict[str, tuple[str, str]] = {}
    for module, names in exports.items():
        for entry in names.split():
            public, _, original = entry.partition("=")
            where[public] = (module, original or public)

    def __getattr__(name: str) -> Any:
        try:
            module, original = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module, package), original)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
