"""The pure cores are pure at import: in a fresh interpreter, importing one loads no event loop
and no HTTP stack, so it can be reasoned about (and reused) without them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PURE_CORES = [
    "oco._text",
    "oco._retry",
    "oco.errors",
    "oco.domain",
    "oco.opencode._event_types",
    "oco.opencode._transcript",
    "oco.worker._lifecycle",
    "oco.worker._planner",
    "oco.worker._snapshot",
    "oco.orchestrator._policy",
    "oco.orchestrator._reload",
    "oco.orchestrator._control_protocol",
    "oco.orchestrator._status_table",
    "oco.convex._why",
    "oco.convex._sync_state",
]
IO_LIBRARIES = ("trio", "httpx", "httpx_ws", "anyio")


def loaded_after_import(module: str) -> list[str]:
    """The I/O libraries in `sys.modules` after `import module` in a new interpreter."""
    probe = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        f"print(json.dumps([name for name in {IO_LIBRARIES!r} if name in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("module", PURE_CORES)
def test_a_pure_core_imports_no_event_loop_and_no_http_stack(module: str) -> None:
    assert loaded_after_import(module) == []


def test_the_probe_sees_a_module_that_does_load_them() -> None:
    assert set(loaded_after_import("oco.worker._worker")) >= {"trio", "httpx"}
