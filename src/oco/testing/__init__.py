"""Fakes that speak the real wire protocols, and the harness to test against them, shipped with
trio-oco like `trio.testing`.

The fakes: `FakeConvex` is the reference Convex backend in memory (ASGI app + web-app helpers;
`fake.sync` is its sync-protocol websocket endpoint). It answers as a dev deployment or, with
`prod=True`, as a production one; `CONVEX_MODES` names both for a
`pytest.mark.parametrize("mode", CONVEX_MODES)`. `FakeLLM` is a scripted OpenAI-compatible LLM
for a real OpenCode; `opencode_config` / `opencode_env` point an isolated `opencode serve` at it.

In process, on a MockClock (no extra needed): `in_process_convex(fake)` is a `ConvexClient`
that reaches the fake without a socket (`in_process_connections(fake)`: the orchestrator's
connections made of such clients); `trio_ms` is the clock to give the fake and the
worker; `make_worker` builds a real `Worker` for a worker the fake created, and
`running_worker(worker)` runs it for a block, entered once it is ready.

On loopback (the `trio-oco[testing]` extra, hypercorn): `serve_fake_convex`, `serve_fake_llm`
and `serve_asgi` (any ASGI app). Without the extra they raise `MissingExtra`, one line.

As a user runs it: `run_oco(*args)` / `open_oco(*args)` run `trio-oco` as a child process;
`DevProject` sets a project up for `trio-oco dev`; `processes_in`, `kill_leftovers` and
`wait_gone` check and clean what it left running.
"""

from oco.testing._fake_convex import CONVEX_MODES, CreatedWorker, FakeConvex, FakeFunctionError
from oco.testing._fake_convex_server import FakeConvexServer, serve_fake_convex
from oco.testing._fake_llm import FakeLLM, FakeLLMServer, serve_fake_llm
from oco.testing._in_process import IN_PROCESS_URL, in_process_connections, in_process_convex, trio_ms
from oco.testing._oco_process import DevProject, oco_command, open_oco, run_oco
from oco.testing._opencode_env import FAKE_MODEL, opencode_config, opencode_env
from oco.testing._processes import kill_leftovers, output_lines, processes_in, wait_gone
from oco.testing._serve import MissingExtra, require_hypercorn, serve_asgi
from oco.testing._sync_server import SyncFaults, sync_app, sync_endpoint
from oco.testing._workers import NO_OPENCODE, fake_models, make_worker, running_worker

__all__ = [
    "CONVEX_MODES",
    "FAKE_MODEL",
    "IN_PROCESS_URL",
    "NO_OPENCODE",
    "CreatedWorker",
    "DevProject",
    "FakeConvex",
    "FakeConvexServer",
    "FakeFunctionError",
    "FakeLLM",
    "FakeLLMServer",
    "MissingExtra",
    "SyncFaults",
    "fake_models",
    "in_process_connections",
    "in_process_convex",
    "kill_leftovers",
    "make_worker",
    "oco_command",
    "open_oco",
    "opencode_config",
    "opencode_env",
    "output_lines",
    "processes_in",
    "require_hypercorn",
    "run_oco",
    "running_worker",
    "serve_asgi",
    "serve_fake_convex",
    "serve_fake_llm",
    "sync_app",
    "sync_endpoint",
    "trio_ms",
    "wait_gone",
]
