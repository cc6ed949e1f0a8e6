"""The benchmark suite behind `scripts/bench` (issue 7): not part of trio-oco (not in its wheel).

Run it with `python -m benchmarks.bench [--quick] [--json FILE]`. It serves the fake Convex and the
fake LLM in this process on loopback and runs `trio-oco run` as a real subprocess against them.
"""
