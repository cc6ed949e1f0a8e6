"""The fault soak behind `scripts/soak` (issue 9): not part of trio-oco (not in its wheel).

Run it with `python -m benchmarks.soak [--quick] [--prod] [--json FILE] [--messages N]`. It serves the fake
Convex and the fake LLM in this process, runs `trio-oco run` (with a real OpenCode per worker)
as a subprocess against them, injects faults while it chats, and checks the fake's tables.
"""

from ._checks import SentMessage, SoakFacts, evaluate
from ._scenario import SoakPlan, run_soak

__all__ = ["SentMessage", "SoakFacts", "SoakPlan", "evaluate", "run_soak"]
