"""Fakes that speak the real wire protocols, shipped with trio-oco like `trio.testing`.

`FakeConvex` is the reference Convex backend in memory (ASGI app + web-app helpers);
`serve_fake_convex` serves it on loopback with hypercorn's trio worker; `fake.sync` is its
sync-protocol websocket endpoint (`SyncEndpoint`, faults in `SyncFaults`). It answers as a dev
deployment or, with `prod=True`, as a production one; `CONVEX_MODES` names both for a
`pytest.mark.parametrize("mode", CONVEX_MODES)` with `serve_fake_convex(prod=mode == "prod")`.
`FakeLLM` / `serve_fake_llm` is a scripted OpenAI-compatible LLM for a real OpenCode;
`opencode_config` / `opencode_env` point an isolated `opencode serve` at it.
"""

from oco.testing._fake_convex import (
    CONVEX_MODES,
    Call,
    Chunk,
    CreatedWorker,
    FakeConvex,
    FakeFunctionError,
)
from oco.testing._fake_convex_faults import Fault, Faults
from oco.testing._fake_convex_server import FakeConvexServer, serve_fake_convex
from oco.testing._fake_llm import FakeLLM, FakeLLMServer, RecordedRequest, serve_fake_llm
from oco.testing._opencode_env import FAKE_MODEL, opencode_config, opencode_env
from oco.testing._processes import collect_output, kill_leftovers, output_lines, processes_in
from oco.testing._sync_server import SyncEndpoint, SyncFaults, sync_app, sync_endpoint

__all__ = [
    "CONVEX_MODES",
    "FAKE_MODEL",
    "Call",
    "Chunk",
    "CreatedWorker",
    "FakeConvex",
    "FakeConvexServer",
    "FakeFunctionError",
    "FakeLLM",
    "FakeLLMServer",
    "Fault",
    "Faults",
    "RecordedRequest",
    "SyncEndpoint",
    "SyncFaults",
    "collect_output",
    "kill_leftovers",
    "opencode_config",
    "opencode_env",
    "output_lines",
    "processes_in",
    "serve_fake_convex",
    "serve_fake_llm",
    "sync_app",
    "sync_endpoint",
]
