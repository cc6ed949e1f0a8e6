"""The short fault soak (issue 9): three workers under `trio-oco run`, a real OpenCode, faults.

A burst of 503s, a short Convex outage and one OpenCode SIGKILL mid-answer while ~15 messages
are in flight; then the same checks as `scripts/soak`: every message has exactly one completed
reply, none stuck or answered twice, nothing parked, SIGTERM exits 0, no secret anywhere, no
child left, fds and memory steady.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oco._soak import SoakPlan, evaluate, run_soak
from oco.testing import serve_fake_llm

REPO = Path(__file__).resolve().parents[2]
OPENCODE = os.environ.get("OCO_OPENCODE_BIN") or str(REPO / "node_modules" / ".bin" / "opencode")

pytestmark = [
    pytest.mark.opencode,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(OPENCODE).exists(), reason="opencode not installed"),
]


async def test_short_soak_loses_duplicates_and_strands_nothing_under_faults(tmp_path):
    lines: list[str] = []
    async with serve_fake_llm() as llm:
        facts, extra = await run_soak(SoakPlan.short(), llm, OPENCODE, tmp_path / "run", log=lines.append)
    figures, failed = evaluate(facts)
    report = f"{figures} {extra} {lines}"
    assert failed == [], report
    assert figures["messages"] >= 15
    assert figures["completed"] == figures["messages"]
    assert figures["exit_code"] == 0
    assert any("SIGKILLed" in line for line in lines), report  # the kill did happen mid-answer
    assert extra["phase_timeouts"] == [], report
