"""Each lazy package `__init__` names the same public API three ways (its `TYPE_CHECKING`
imports, `__all__`, and the lazy map) and every name resolves to the submodule's object."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "oco"
LAZY_PACKAGES = ["oco.config", "oco.convex", "oco.opencode", "oco.orchestrator", "oco.worker"]


def _init(package: str) -> ast.Module:
    path = SRC.joinpath(*package.split(".")[1:], "__init__.py")
    return ast.parse(path.read_text())


def type_checking_names(package: str) -> set[str]:
    for node in _init(package).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return {
                alias.asname or alias.name
                for imp in node.body
                if isinstance(imp, ast.ImportFrom)
                for alias in imp.names
            }
    raise AssertionError(f"{package} has no TYPE_CHECKING block")


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_the_type_checking_imports_name_exactly_the_public_api(package: str) -> None:
    module = importlib.import_module(package)
    assert type_checking_names(package) == set(module.__all__)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_resolves_to_the_object_its_submodule_defines(package: str) -> None:
    module = importlib.import_module(package)
    for node in _init(package).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                source = importlib.import_module(("." * imp.level) + (imp.module or ""), package)
                for alias in imp.names:
                    assert getattr(module, alias.asname or alias.name) is getattr(source, alias.name)
    assert set(module.__all__) <= set(dir(module))


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    worker = importlib.import_module("oco.worker")
    with pytest.raises(AttributeError, match=r"'oco\.worker' has no attribute 'Nope'"):
        worker.Nope  # noqa: B018
    assert not hasattr(worker, "Nope")
