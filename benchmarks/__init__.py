"""trio-oco's benchmarks (`bench`, issue 7) and fault soak (`soak`, issue 9).

They live beside the package, not in it: they are how this repository measures trio-oco, not
something a user of the library or the command runs, so the wheel leaves them out. `scripts/bench`
and `scripts/soak` run them from the repository root (`python -m benchmarks.bench`,
`python -m benchmarks.soak`); the tests import them with the root on `sys.path` (pyproject's
pytest `pythonpath`). They need the `testing` extra (the fakes on loopback).
"""
