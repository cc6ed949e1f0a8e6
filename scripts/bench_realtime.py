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

import trio
import trio.testing

from oco.convex import ConvexClient
from oco.testing import FakeConvex, in_process_convex, make_worker, running_worker, serve_fake_convex, trio_ms

TRANSPORTS = ("subscribe", "poll")


async def idle_calls(transport: str, directory: Path) -> dict[str, float]:
    """Calls in one virtual idle hour, after a minute to settle (run under a MockClock)."""
    fake = FakeConvex(clock=trio_ms)
    created = fake.create_worker()
    async with in_process_convex(fake) as convex:
        worker = make_worker(created, convex, directory, name=transport, convex_transport=transport, now_ms=trio_ms)
        async with running_worker(worker):
            await trio.sleep(60)
            before = fake.counts.copy()
            await trio.sleep(3600)
            spent = fake.counts - before
    return {"total": sum(spent.values()), "heartbeats": spent["workers:heartbeat"]}


async def pickups(transport: str, directory: Path, messages: int) -> list[float]:
    """Milliseconds from sendMessage to the completed placeholder, over loopback."""
    fake = FakeConvex()
    created = fake.create_worker()
    rng = random.Random(8)
    out: list[float] = []
    async with serve_fake_convex(fake) as server, ConvexClient(server.url) as convex:
        worker = make_worker(created, convex, directory, name=transport, convex_transport=transport)
        async with running_worker(worker, timeout=20):
            with trio.fail_after(20):
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
