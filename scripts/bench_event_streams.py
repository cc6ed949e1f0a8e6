"""`/global/event` (one stream for every directory) against per-directory `/event` streams, side by side.

One `opencode serve` serves two git projects; three streams are open on it at once: the global
one and one `/event?directory=` per project. Each round runs a `SLOW` turn in both projects at
the same moment. For every event of our sessions the script notes when each stream delivered it
(events carry the same `id` on every stream), then prints: events delivered by each, events of
the other directory seen on a per-directory stream, and how much later (or sooner) the global
stream delivered the same event. The shared mode reads `/global/event` (one connection per
server whatever the number of workers), so the question is whether that costs completeness or
latency. Usage: `.venv/bin/python scripts/bench_event_streams.py [--rounds N] [--seconds S]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import trio

from oco.demo._setup import locate_opencode
from oco.opencode import open_opencode_server, view
from oco.opencode._sse import SSEDecoder
from oco.testing import FAKE_MODEL, opencode_env, serve_fake_llm

REPO = Path(__file__).resolve().parents[1]


async def _read(
    server,
    path: str,
    params: dict[str, str],
    arrivals: dict[str, float],
    sizes: list[int],
    directories: dict[str, str | None],
    kinds: dict[str, str],
    duplicates: list[str],
    totals: list[int],
    ready: trio.Event,
) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http:
        async with http.stream(
            "GET", server.base_url + path, params=params, auth=server.client.auth
        ) as response:
            decoder = SSEDecoder()
            async for chunk in response.aiter_bytes():
                for data in decoder.feed(chunk):
                    now = time.perf_counter()
                    totals[0] += 1
                    totals[1] += len(data)
                    item = json.loads(data)
                    event = item.get("payload", item)
                    if event.get("type") == "server.connected":
                        ready.set()
                    event_id = event.get("id")
                    # `sync` events (global stream only) repeat an event's id in another shape.
                    if isinstance(event_id, str) and event.get("type") != "sync":
                        if event_id in arrivals:
                            duplicates.append(event_id)
                            continue
                        arrivals[event_id] = now
                        sizes.append(len(data))
                        props = event.get("properties") or {}
                        session = (
                            props.get("sessionID")
                            or (props.get("part") or {}).get("sessionID")
                            or (props.get("info") or {}).get("sessionID")
                        )
                        directories[event_id] = session
                        kinds[event_id] = str(event.get("type"))


async def measure(rounds: int, seconds: int, root: Path) -> dict[str, object]:
    projects = []
    for name in ("alpha", "beta"):
        project = root / name
        project.mkdir()
        await trio.run_process(["git", "init", "-q", str(project)])
        projects.append(project.resolve())
    neutral = root / "neutral"
    neutral.mkdir()
    opencode = locate_opencode(None)
    streams = {"global": ("/global/event", {})} | {
        p.name: ("/event", {"directory": str(p)}) for p in projects
    }
    arrivals: dict[str, dict[str, float]] = {name: {} for name in streams}
    sizes: dict[str, list[int]] = {name: [] for name in streams}
    sessions_of: dict[str, dict[str, str | None]] = {name: {} for name in streams}
    kinds: dict[str, dict[str, str]] = {name: {} for name in streams}
    duplicates: dict[str, list[str]] = {name: [] for name in streams}
    totals: dict[str, list[int]] = {name: [0, 0] for name in streams}
    async with serve_fake_llm() as llm:
        env = opencode_env(root / "home", llm.base_url)
        async with open_opencode_server(opencode, neutral, env=env, global_events=True) as server:
            views = [view(server, p) for p in projects]
            sessions = [await v.client.create_session(p.name) for v, p in zip(views, projects, strict=True)]
            async with trio.open_nursery() as nursery:
                for name, (path, params) in streams.items():
                    ready = trio.Event()
                    nursery.start_soon(
                        _read,
                        server,
                        path,
                        params,
                        arrivals[name],
                        sizes[name],
                        sessions_of[name],
                        kinds[name],
                        duplicates[name],
                        totals[name],
                        ready,
                    )
                    await ready.wait()
                for _ in range(rounds):
                    async with trio.open_nursery() as turns:
                        for v, s in zip(views, sessions, strict=True):
                            turns.start_soon(_turn, v, s, seconds)
                await trio.sleep(1)  # let the last events arrive on every stream
                nursery.cancel_scope.cancel()
    ours = {s: p.name for s, p in zip(sessions, projects, strict=True)}
    result: dict[str, object] = {"rounds": rounds, "slow_seconds": seconds}
    for name in streams:
        per_session = {d: 0 for d in ours.values()}
        for session in sessions_of[name].values():
            if session in ours:
                per_session[ours[session]] += 1
        result[f"{name}: events of alpha/beta sessions"] = per_session
        by_kind: dict[str, int] = {}
        for event_id, session in sessions_of[name].items():
            if session in ours:
                by_kind[kinds[name][event_id]] = by_kind.get(kinds[name][event_id], 0) + 1
        result[f"{name}: our events by type"] = dict(sorted(by_kind.items()))
        result[f"{name}: all events received, bytes (sync and other directories included)"] = tuple(
            totals[name]
        )
        result[f"{name}: repeated event ids"] = len(duplicates[name])
        result[f"{name}: mean event bytes"] = round(statistics.mean(sizes[name]), 1) if sizes[name] else 0
    for p in projects:
        own = arrivals[p.name]
        shared = [
            ident for ident in own if ident in arrivals["global"] and sessions_of[p.name][ident] in ours
        ]
        lag_ms = sorted((arrivals["global"][i] - own[i]) * 1000 for i in shared)
        result[f"global minus /event?directory={p.name} (ms): median, p95, max"] = (
            (
                round(statistics.median(lag_ms), 3),
                round(lag_ms[int(0.95 * (len(lag_ms) - 1))], 3),
                round(lag_ms[-1], 3),
            )
            if lag_ms
            else None
        )
        missing = [i for i in own if i not in arrivals["global"] and sessions_of[p.name][i] in ours]
        result[f"on /event?directory={p.name}, missing from global"] = len(missing)
    return result


async def _turn(backend, session: str, seconds: int) -> None:
    from oco.opencode import run_turn

    result = await run_turn(backend, session, f"SLOW {seconds}", FAKE_MODEL, timeout=60)
    assert result.error is None, result.error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oco-bench-events-") as tmp:
        result = trio.run(measure, args.rounds, args.seconds, Path(tmp))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
