"""Issue 16's benchmark behind `scripts/bench-opencode`: OpenCode per worker against one shared server.

Not part of trio-oco (not in its wheel). `python -m benchmarks.opencode_server [--quick]` serves the
fake Convex and the fake LLM in this process on loopback and runs `trio-oco run` as a real
subprocess against them (`benchmarks.bench`'s harness), once per `opencode_server` mode, and
prints both side by side.
"""
