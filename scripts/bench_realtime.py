#!/usr/bin/env python3
"""Issue 8's figures, subscriptions against polling in the same run, printed as a table.

- idle_function_calls_per_worker_hour: HTTP function calls one idle worker makes in an hour,
  on a MockClock against the in-process fake Convex (exact counts, a virtual hour).
- pickup_p50_ms: `chat:sendMessage` -> the reply placeholder completed, for a model-less
  message (the worker answers it itself, no OpenCode), real time over loopback (hypercorn).

Usage: .venv/bin/python scripts/bench_realtime.py [--messages N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio
import trio.testing
from httpx_ws.transport import ASGIWebSocketTransport

from oco.config import Settings, WorkerConfig, parse_token
from oco.convex import ConvexClient, RetryPolicy
from oco.convex.types import ModelInfo
from oco.testing import CreatedWorker, FakeConvex, serve_fake_convex
from oco.worker import ModelCatalog, State, StopControl, Worker

TRANSPORTS = ("subscribe", "poll")
MODELS = [ModelInfo(id="fake/fake-model", name="Fake Model", provider="fake")]


async def _models(directory: Path, env: object) -> list[ModelInfo]:
    return MODELS


def _worker(convex: ConvexClient, created: CreatedWorker, directory: Path, transport: str,
            now_ms) -> Worker:
    config = WorkerConfig(token=parse_token(created.token), convex_url=convex.url,
                          working_directory=directory, name=transport)
    return Worker(config, Settings(convex_transport=transport), convex=convex,
                  stop=StopControl(), opencode_bin="/nonexistent/opencode",
                  models=ModelCatalog(_models), state_dir=directory / "state", now_ms=now_ms)


async def idle_calls(transport: str, directory: Path) -> dict[str, float]:
    """Calls in one virtual idle hour, after a minute to settle (run under a MockClock)."""
    fake = FakeConvex(clock=lambda: trio.current_time() * 1000)
    created = fake.create_worker()
    async with httpx.AsyncClient(transport=ASGIWebSocketTransport(fake.app)) as http:
        convex = ConvexClient("http://fake.convex", http=http, retry=RetryPolicy.never())
        async with trio.open_nursery() as nursery:
            worker = _worker(convex, created, directory, transport,
                             lambda: trio.current_time() * 1000)
            nursery.start_soon(worker.run)
            await worker.state.wait_value(State.READY)
            await trio.sleep(60)
            before = fake.counts.copy()
            await trio.sleep(3600)
            spent = fake.counts - before
            nursery.cancel_scope.cancel()
    return {"total": sum(spent.values()), "heartbeats": spent["workers:heartbeat"]}


async def pickups(transport: str, directory: Path, messages: int) -> list[float]:
    """Milliseconds from sendMessage to the completed placeholder, over loopback."""
    fake = FakeConvex()
    created = fake.create_worker()
    rng = random.Random(8)
    out: list[float] = []
    async with serve_fake_convex(fake) as server, ConvexClient(server.url) as convex:
        async with trio.open_nursery() as nursery:
            worker = _worker(convex, created, directory, transport, lambda: time.time() * 1000)
            nursery.start_soon(worker.run)
            with trio.fail_after(20):
                await worker.state.wait_value(State.READY)
                if transport == "subscribe":
                    await fake.sync.open_sockets.wait_value(lambda n: n >= 1)
            chat = fake.start_session(created.worker_id)
            for _ in range(messages):
                # A random phase against the polling tick, as users would hit it.
                await trio.sleep(rng.uniform(0.2, 1.2))
                started = time.perf_counter()
                reply = fake.send_message(chat, "which model?", model="")
                await fake.wait_reply(reply, timeout=20)
                out.append((time.perf_counter() - started) * 1000)
            nursery.cancel_scope.cancel()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20, help="pickups per transport")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for transport in TRANSPORTS:
            directory = Path(tmp) / transport
            directory.mkdir()
            idle = trio.run(idle_calls, transport, directory,
                            clock=trio.testing.MockClock(autojump_threshold=0))
            times = trio.run(pickups, transport, directory, args.messages)
            figures[transport] = {
                "idle_function_calls_per_worker_hour": idle["total"],
                "idle_heartbeats_per_worker_hour": idle["heartbeats"],
                "pickup_p50_ms": round(statistics.median(times), 1),
                "pickup_max_ms": round(max(times), 1),
            }
    names = list(figures["subscribe"])
    print(f"{'figure':40} {'subscribe':>10} {'poll':>10}")
    for name in names:
        print(f"{name:40} {figures['subscribe'][name]:>10} {figures['poll'][name]:>10}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
