"""The benchmark suite behind `scripts/bench` (issue 7): private, not part of trio-oco's API.

Run it with `python -m oco._bench [--quick] [--json FILE]`. It serves the fake Convex and the
fake LLM in this process on loopback and runs `trio-oco run` as a real subprocess against them.
"""
