"""The real `opencode` the end-to-end tests drive, and the marks of a test that needs it.

`$OCO_OPENCODE_BIN`, else the pinned one scripts/setup installs in node_modules, else
`opencode` on PATH; None when there is none (the tests marked `REAL_OPENCODE` then skip).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _find() -> str | None:
    pinned = REPO / "node_modules" / ".bin" / "opencode"
    for candidate in (os.environ.get("OCO_OPENCODE_BIN"), str(pinned), shutil.which("opencode")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


OPENCODE = _find()

needs_opencode = pytest.mark.skipif(OPENCODE is None, reason="opencode not installed (run scripts/setup)")

# A test module's `pytestmark` when every test in it runs a real OpenCode.
REAL_OPENCODE = [pytest.mark.opencode, pytest.mark.slow, needs_opencode]


def opencode_bin() -> str:
    """The opencode binary, or skip the calling test."""
    if OPENCODE is None:
        pytest.skip("opencode is not installed (run scripts/setup)")
    return OPENCODE


def gone(pid: int) -> bool:
    """Neither the process nor anything of its group is alive."""
    for probe in (os.kill, os.killpg):
        try:
            probe(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True
