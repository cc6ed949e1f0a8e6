"""The import rules between packages, read from the source with `ast`: the two adapters never
meet, the domain types belong to neither, and the supervisor classifies without them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "oco"


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name `path` imports, at any depth (relative imports resolved)."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imports_of(package: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(SRC.parent)): imported_modules(path)
        for path in sorted((SRC / package).rglob("*.py"))
    }


def _names(modules: set[str], prefix: str) -> set[str]:
    return {m for m in modules if m == prefix or m.startswith(prefix + ".")}


@pytest.mark.parametrize(("adapter", "other"), [("convex", "opencode"), ("opencode", "convex")])
def test_an_adapter_never_imports_the_other(adapter: str, other: str) -> None:
    crossing = {path: _names(modules, f"oco.{other}") for path, modules in imports_of(adapter).items()}
    assert {path: names for path, names in crossing.items() if names} == {}


def test_the_domain_types_import_no_other_part_of_oco() -> None:
    outside = {
        path: {m for m in modules if m.startswith("oco") and not m.startswith("oco.domain")}
        for path, modules in imports_of("domain").items()
    }
    assert {path: names for path, names in outside.items() if names} == {}


def test_the_neutral_errors_import_only_the_text_helper() -> None:
    modules = imported_modules(SRC / "errors.py")
    assert {m for m in modules if m.startswith("oco")} <= {"oco._text", "oco._text.external"}


def test_the_supervisor_classifies_failures_without_the_opencode_adapter() -> None:
    modules = imported_modules(SRC / "orchestrator" / "_supervisor.py")
    assert _names(modules, "oco.opencode") == set()
    assert not any(
        name.endswith(("Error", "Rejected", "NotFound", "Deployment"))
        for name in _names(modules, "oco.convex")
    )


def test_the_rules_above_see_imports_where_they_are() -> None:
    """The walker itself: it finds a known import, relative and nested ones included."""
    found = imported_modules(SRC / "opencode" / "_turn.py")
    assert "oco._text.external" in found and "oco.opencode._client.split_model" in found
