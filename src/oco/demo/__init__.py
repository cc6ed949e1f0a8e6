"""`trio-oco demo`: the whole product offline with the fake Convex, the fake LLM and a real OpenCode.

Public: `DemoOptions`, `run_demo(options, out=None, stdin=None) -> exit code`, and the pure
pieces of its output (`MessageTiming`, `format_summary`, `tool_lines`).
"""

from ._demo import DemoOptions, run_demo
from ._setup import DEMO_PROMPT, PROJECTS
from ._view import MessageTiming, format_summary, tool_lines

__all__ = [
    "DEMO_PROMPT",
    "PROJECTS",
    "DemoOptions",
    "MessageTiming",
    "format_summary",
    "run_demo",
    "tool_lines",
]
