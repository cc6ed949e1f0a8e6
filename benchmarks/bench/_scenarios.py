"""The measurements of issue 7, one coroutine per scenario, each with its own fake Convex.

Every scenario runs `trio-oco run` as a subprocess (see `_run_process`) and fills `Results`
with figures (issue 7's names) and details (what the figures were computed from). Every wait
has a deadline; windows and repetition counts come from `Plan` (`--quick` shrinks them).
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import attrs
import trio

from oco.testing import (
    CreatedWorker,
    FakeConvex,
    FakeConvexServer,
    FakeLLMServer,
    serve_fake_convex,
)

from ._run_process import RunProcess, run_process

STREAM_SECONDS = 10.0
INJECTED_LATENCY_S = 0.2
RTT_BOUND_S = 2 * INJECTED_LATENCY_S + 0.5
LIVE_WINDOW_S = 60.0  # oco.worker._watch.LIVE_WINDOW_S: ticks stay fast this long after activity
HEAVY_QUERY = "chat:subscribeToWorkerMessages"
COMPLETIONS = ("chat:completeStructuredMessage", "chat:completeMessage")


@attrs.frozen
class Plan:
    """How long and how often; `--quick` keeps the whole suite under 10 minutes on 2 cores."""

    idle_window_s: float = 120.0
    pickup_samples: int = 20
    settle_s: float = 5.0
    settings: dict[str, Any] = attrs.field(factory=dict)  # workers.json "settings" (e.g. transport)

    @classmethod
    def quick(cls, settings: dict[str, Any] | None = None) -> Plan:
        return cls(idle_window_s=30.0, pickup_samples=8, settle_s=2.0, settings=settings or {})


@attrs.define
class Results:
    figures: dict[str, float] = attrs.field(factory=dict)
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class Bench:
    """What every scenario shares: the plan, the fake LLM, the binary, a scratch directory."""

    plan: Plan
    llm: FakeLLMServer
    opencode_bin: str
    scratch: Path
    results: Results = attrs.field(factory=Results)
    _runs: int = 0

    def root(self, label: str) -> Path:
        self._runs += 1
        return self.scratch / f"{self._runs:02d}-{label}"

    def run(
        self, convex: FakeConvexServer, label: str, count: int
    ) -> AbstractAsyncContextManager[RunProcess]:
        """`trio-oco run` for `count` new workers of `convex`, in a fresh directory."""
        return run_process(
            convex,
            self.llm,
            self.root(label),
            count,
            opencode_bin=self.opencode_bin,
            settings=self.plan.settings,
        )


def say(text: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"bench:   {text}", file=sys.stderr, flush=True)


def _now_ms() -> float:
    return time.time() * 1000  # the fake Convex's clock


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _ready(run: RunProcess, plan: Plan, timeout: float = 120) -> None:
    """Connected, models published, no child process left, then a short settle."""
    await run.wait_connected(timeout)
    await run.wait_models(timeout)
    await run.wait_no_children(timeout)
    await trio.sleep(plan.settle_s)  # let start-up garbage and first ticks pass before measuring


async def _pickup(
    fake: FakeConvex, llm: FakeLLMServer, chat: str, text: str, timeout: float = 120
) -> tuple[float, str]:
    """Send a message; seconds until the fake LLM's next request, and the reply's message id."""
    before = llm.request_count.value
    started = trio.current_time()
    reply = fake.send_message(chat, text)
    with trio.fail_after(timeout):
        await llm.request_count.wait_value(lambda n: n > before)
    return trio.current_time() - started, reply


# -- one worker: idle memory, a streamed answer, pickup on active ticks ----------------------


async def one_worker(bench: Bench) -> int:
    """Returns the idle RSS of a one-worker orchestrator (for the 20-vs-1 ratio)."""
    plan, llm, res = bench.plan, bench.llm, bench.results
    async with serve_fake_convex() as convex:
        fake = convex.fake
        async with bench.run(convex, "one", 1) as run:
            await _ready(run, plan)
            rss = await run.settled_rss()
            say(f"idle RSS with 1 worker: {rss / 2**20:.1f} MiB; warming up, then a 10 s answer")
            res.details["idle_rss_1_worker_mb"] = round(rss / 2**20, 1)

            (worker,) = run.workers
            chat = fake.start_session(worker.worker_id)
            cold, reply = await _pickup(fake, llm, chat, "ECHO warm up")
            await fake.wait_reply(reply, timeout=120)
            res.details["pickup_cold_opencode_s"] = round(cold, 3)

            await _streamed_answer(fake, llm, chat, res)

            say(f"streamed answer: {res.details['stream']}; pickup samples on active ticks")
            samples = []
            for n in range(plan.pickup_samples):
                await trio.sleep(random.uniform(0, 0.5))  # spread sends over the 0.5 s tick phase
                seconds, reply = await _pickup(fake, llm, chat, f"ECHO active {n}")
                samples.append(seconds)
                await fake.wait_reply(reply, timeout=60)
            res.figures["pickup_active_p50_s"] = round(_percentile(samples, 0.5), 3)
            res.figures["pickup_active_p95_s"] = round(_percentile(samples, 0.95), 3)
            res.details["pickup_active_samples_s"] = [round(s, 3) for s in samples]
            await run.stop(timeout=60)
    return rss


async def _streamed_answer(fake: FakeConvex, llm: FakeLLMServer, chat: str, res: Results) -> None:
    """A warm worker, an active session, an answer streamed evenly over 10 s."""
    sent = _now_ms()
    reply = fake.send_message(chat, f"SLOW {STREAM_SECONDS:g}")
    await fake.wait_reply(reply, timeout=STREAM_SECONDS + 60)
    calls = [c for c in fake.calls if c.at >= sent]
    mine = [c for c in calls if c.args.get("messageId") == reply]
    chunk_at = min(c.at for c in mine if c.function == "chat:writeChunk")
    done_at = min(c.at for c in mine if c.function in COMPLETIONS)
    answer = [
        c for c in calls if c.kind == "mutation" and c.at <= done_at and c.function != "workers:heartbeat"
    ]
    first, total = (chunk_at - sent) / 1000, (done_at - sent) / 1000
    res.figures["first_chunk_over_completion"] = round(first / total, 4)
    res.figures["mutations_per_streamed_second"] = round(len(answer) / STREAM_SECONDS, 2)
    res.details["stream"] = {
        "first_chunk_s": round(first, 3),
        "completion_s": round(total, 3),
        "mutations": dict(Counter(c.function for c in answer)),
        "heavy_queries_while_streaming": sum(
            1 for c in calls if c.function == HEAVY_QUERY and c.at <= done_at
        ),
    }


# -- twenty workers: idle memory and traffic, throughput, pickup on idle ticks ---------------


async def twenty_workers(bench: Bench, rss_one: int | None) -> None:
    plan, llm, res = bench.plan, bench.llm, bench.results
    async with serve_fake_convex() as convex:
        fake = convex.fake
        async with bench.run(convex, "twenty", 20) as run:
            await _ready(run, plan)
            rss = await run.settled_rss()
            res.details["idle_rss_20_workers_mb"] = round(rss / 2**20, 1)
            say(f"idle RSS with 20 workers: {rss / 2**20:.1f} MiB; idle window of {plan.idle_window_s:g} s")
            if rss_one:
                res.figures["idle_memory_ratio_20_vs_1"] = round(rss / rss_one, 3)

            requests, heavy = fake.http_requests, fake.counts[HEAVY_QUERY]
            started = trio.current_time()
            await trio.sleep(plan.idle_window_s)  # the idle window being measured
            minutes = (trio.current_time() - started) / 60
            requests, heavy = fake.http_requests - requests, fake.counts[HEAVY_QUERY] - heavy
            per_worker_minute = requests / len(run.workers) / minutes
            res.figures["idle_requests_per_worker_minute"] = round(per_worker_minute, 2)
            res.figures["heavy_queries_per_idle_minute"] = round(heavy / minutes, 2)
            res.details["idle_window_s"] = round(minutes * 60, 1)

            say(f"idle: {per_worker_minute:.2f} requests/worker/min; throughput: 20 x 5")
            chats = await _throughput(run, res)
            say(f"throughput done; waiting out the {LIVE_WINDOW_S:g} s live window")
            await _idle_pickups(run, llm, chats, plan, res)
            await run.stop(timeout=60)


async def _throughput(run: RunProcess, res: Results, per_worker: int = 5) -> dict[str, str]:
    """20 workers × 5 messages sent at once; returns one chat per worker for later use."""
    fake = run.fake
    expected: dict[str, str] = {}
    chats: dict[str, str] = {}
    cpu_before = run.cpu_seconds()
    started = trio.current_time()
    for worker in run.workers:
        for n in range(per_worker):
            chat = fake.start_session(worker.worker_id)
            chats.setdefault(worker.worker_id, chat)
            text = f"answer {n} from {worker.worker_id}"
            expected[fake.send_message(chat, f"ECHO {text}")] = text

    def answered() -> int:
        return sum(
            1 for m, text in expected.items() if (r := fake.message(m)) and r.completed and r.content == text
        )

    def completed() -> bool:
        return all((r := fake.message(m)) and r.completed for m in expected)

    try:
        await fake.wait_for(completed, timeout=600)
    except trio.TooSlowError:
        res.details["throughput_timed_out"] = True
    res.figures["throughput_answered"] = answered()
    for worker in run.workers:
        mine = [(m, text) for m, text in expected.items() if worker.worker_id in text]
        if any((r := fake.message(m)) and r.content == text for m, text in mine):
            run.warm.add(worker.worker_id)
    wrong = [r.content for m, text in expected.items() if (r := fake.message(m)) and r.content != text]
    if wrong:
        examples = sorted(set(wrong))[:3]
        res.details["throughput_wrong_replies"] = {"count": len(wrong), "examples": examples}
    res.figures["throughput_messages"] = len(expected)
    res.figures["throughput_wall_s"] = round(trio.current_time() - started, 2)
    res.figures["throughput_orchestrator_cpu_s"] = round(run.cpu_seconds() - cpu_before, 2)
    return chats


async def _idle_pickups(
    run: RunProcess, llm: FakeLLMServer, chats: dict[str, str], plan: Plan, res: Results
) -> None:
    """Once every chat is past the live window, one message per (warm) worker on idle ticks."""
    fake = run.fake
    # Pickup must not include an OpenCode start: warm, one at a time, the workers the throughput
    # run left cold (a worker whose every reply failed has no OpenCode up).
    cold = [w for w in run.workers[: plan.pickup_samples] if w.worker_id not in run.warm]
    say(f"warming {len(cold)} worker(s) that have no OpenCode up")
    for worker in cold:
        reply = fake.send_message(chats[worker.worker_id], "ECHO warm")
        await fake.wait_reply(reply, timeout=120)
    last = max(s["lastActivity"] for s in fake.store.find("chatSessions"))
    quiet_until = last / 1000 + LIVE_WINDOW_S + 2 * 3.0  # two idle ticks past the live window
    await trio.sleep(max(0.0, quiet_until - time.time()))  # the worker's own rule decides the wait
    samples = []
    for worker in run.workers[: plan.pickup_samples]:
        seconds, reply = await _pickup(fake, llm, chats[worker.worker_id], "ECHO idle")
        samples.append(seconds)
        await fake.wait_reply(reply, timeout=60)
    res.figures["pickup_idle_p50_s"] = round(_percentile(samples, 0.5), 3)
    res.figures["pickup_idle_p95_s"] = round(_percentile(samples, 0.95), 3)
    res.details["pickup_idle_samples_s"] = [round(s, 3) for s in samples]


# -- fifty workers: start, parallel stop, sequential stop ------------------------------------


async def fifty_workers_start_and_stop(bench: Bench) -> None:
    res = bench.results
    async with serve_fake_convex() as convex:
        fake = convex.fake
        async with bench.run(convex, "fifty", 50) as run:
            await run.wait_connected(120)
            res.figures["start_50_workers_s"] = round(trio.current_time() - run.started_at, 3)
            res.details["start_50_workers"] = _start_phases(run)
            await _ready(run, bench.plan)
            fake.faults.add(latency=INJECTED_LATENCY_S)
            started = trio.current_time()
            code = await run.stop(timeout=120)
            seconds = trio.current_time() - started
            offline = sum(1 for w in run.workers if fake.worker(w.worker_id).status == "offline")
    res.figures["stop_50_workers_over_rtt_bound"] = round(seconds / RTT_BOUND_S, 3)
    res.details["stop_50_workers_parallel"] = {
        "seconds": round(seconds, 3),
        "exit_code": code,
        "offline": offline,
    }


async def fifty_workers_sequential_stop(bench: Bench) -> None:
    """The same stop one worker at a time: drop one entry from workers.json per SIGHUP."""
    res = bench.results
    async with serve_fake_convex() as convex:
        fake = convex.fake
        async with bench.run(convex, "fifty-seq", 50) as run:
            await _ready(run, bench.plan)
            fake.faults.add(latency=INJECTED_LATENCY_S)
            total = 0.0
            for n, worker in enumerate(run.workers[:-1]):
                run.rewrite(run.entries[n + 1 :])
                started = trio.current_time()
                run.reload()
                await fake.wait_for(lambda w=worker: _offline(fake, w), timeout=60)
                total += trio.current_time() - started
            started = trio.current_time()
            await run.stop(timeout=60)
            total += trio.current_time() - started
    res.figures["stop_50_workers_sequential_s"] = round(total, 3)


def _start_phases(run: RunProcess) -> dict[str, float]:
    """Seconds from the spawn to the first and last register and markConnected calls."""
    spawn_ms = run.started_wall * 1000

    def span(function: str) -> list[float]:
        times = [c.at for c in run.fake.calls if c.function == function]
        return [round((min(times) - spawn_ms) / 1000, 3), round((max(times) - spawn_ms) / 1000, 3)]

    return {
        "register_first_last_s": span("workers:register"),
        "mark_connected_first_last_s": span("workers:markConnected"),
    }


def _offline(fake: FakeConvex, worker: CreatedWorker) -> bool:
    record = fake.worker(worker.worker_id)
    return record is not None and record.status == "offline"
