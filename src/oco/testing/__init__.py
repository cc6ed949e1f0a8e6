"""Fakes that speak the real wire protocols, shipped with trio-oco like `trio.testing`.

`FakeConvex` is the reference Convex backend in memory (ASGI app + web-app helpers);
`serve_fake_convex` serves it on loopback with hypercorn's trio worker.
"""

from oco.testing._fake_convex import (
    Call,
    Chunk,
    CreatedWorker,
    FakeConvex,
    FakeFunctionError,
)
from oco.testing._fake_convex_faults import Fault, Faults
from oco.testing._fake_convex_server import FakeConvexServer, serve_fake_convex

__all__ = [
    "Call",
    "Chunk",
    "CreatedWorker",
    "FakeConvex",
    "FakeConvexServer",
    "FakeFunctionError",
    "Fault",
    "Faults",
    "serve_fake_convex",
]
