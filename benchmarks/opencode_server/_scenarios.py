"""Issue 16's measurements for one `opencode_server` mode, each scenario with its own fake Convex.

Every scenario runs `trio-oco run` as a subprocess (`benchmarks.bench._run_process`: its own
HOME, so every run starts with no OpenCode server and a fresh OpenCode database) and fills
`ModeResults`. Times are the fake Convex's (wall clock, ms): sendMessage is the moment the bench
calls it in process, an answer is the moment its completion mutation reached the fake. Every
wait has a deadline.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import attrs
import trio

from benchmarks.bench._run_process import RunProcess, run_process
from oco.testing import FakeConvex, FakeLLMServer, serve_fake_convex

from ._memory import PeakMemory, mib
from ._timed_llm import TimedLLM

COMPLETIONS = ("chat:completeStructuredMessage", "chat:completeMessage")
TURN_TIMEOUT_S = 180.0  # one answer, cold OpenCode included, on a loaded 2-core machine


@attrs.frozen
class Plan:
    """Sizes; the defaults are issue 16's numbers, `quick()` a run of a few minutes."""

    busy_workers: int = 10
    cold_turns: int = 9  # the 2nd ... 10th worker's first turn
    connect_workers: int = 7  # the "opened" run: one starts the server, half the others are opened first
    warm_samples: int = 3
    throughput_workers: int = 20
    throughput_messages: int = 100
    burst_workers: int = 5
    completion_samples: int = 3
    completion_slow_s: float = 4.0
    busy_slow_s: float = 6.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            busy_workers=4,
            cold_turns=3,
            warm_samples=2,
            throughput_workers=8,
            throughput_messages=24,
            burst_workers=3,
            completion_samples=2,
            connect_workers=5,
        )


@attrs.define
class ModeResults:
    figures: dict[str, float] = attrs.field(factory=dict)
    details: dict[str, Any] = attrs.field(factory=dict)
    errors: dict[str, str] = attrs.field(factory=dict)


@attrs.define
class ModeBench:
    """What the scenarios of one mode share."""

    mode: str
    settings: dict[str, Any]  # workers.json "settings"
    plan: Plan
    llm: FakeLLMServer
    timed: TimedLLM
    opencode_bin: str
    scratch: Path
    results: ModeResults = attrs.field(factory=ModeResults)
    _runs: int = 0

    def run(self, convex: Any, label: str, count: int) -> AbstractAsyncContextManager[RunProcess]:
        self._runs += 1
        root = self.scratch / f"{self.mode}-{self._runs:02d}-{label}"
        return run_process(
            convex, self.llm, root, count, opencode_bin=self.opencode_bin, settings=self.settings
        )


def say(text: str) -> None:
    print(f"bench-opencode:   {text}", file=sys.stderr, flush=True)


def _now_ms() -> float:
    return time.time() * 1000


def completed_at(fake: FakeConvex, reply: str) -> float:
    """When the first completion of `reply` reached the fake (ms)."""
    return min(c.at for c in fake.calls if c.function in COMPLETIONS and c.args.get("messageId") == reply)


async def ask(fake: FakeConvex, chat: str, text: str) -> tuple[float, str]:
    """sendMessage; (when it was sent in ms, the reply's message id)."""
    sent = _now_ms()
    return sent, fake.send_message(chat, text)


async def answered_in(fake: FakeConvex, chat: str, text: str) -> float:
    """Seconds from sendMessage to the completion of its reply (which must be the answer)."""
    sent, reply = await ask(fake, chat, f"ECHO {text}")
    message = await fake.wait_reply(reply, timeout=TURN_TIMEOUT_S)
    if message.content != text:
        raise AssertionError(f"wrong answer to {text!r}: {message.content[:200]!r}")
    return (completed_at(fake, reply) - sent) / 1000


async def _ready(run: RunProcess) -> None:
    """Connected, models published, the listing's child gone: no OpenCode runs yet."""
    await run.wait_connected(120)
    await run.wait_models(120)
    await run.wait_no_children(120)


async def _busy_peak(run: RunProcess, chats: list[str], seconds: float, tag: str) -> PeakMemory:
    """Every chat streams a `SLOW seconds` answer at once; the tree's peak memory meanwhile."""
    fake = run.fake
    peak = PeakMemory(run.pid)
    replies = [(await ask(fake, chat, f"SLOW {seconds:g} {tag}{n}"))[1] for n, chat in enumerate(chats)]

    def streaming() -> bool:
        return all(fake.chunks(r) for r in replies)

    await fake.wait_for(streaming, timeout=TURN_TIMEOUT_S)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peak.sample)
        for reply in replies:
            await fake.wait_reply(reply, timeout=TURN_TIMEOUT_S)
        nursery.cancel_scope.cancel()
    return peak


# -- one worker: a cold first turn, warm turns, the completion tail, busy memory --------------


async def one_worker(bench: ModeBench) -> None:
    res, plan = bench.results, bench.plan
    async with serve_fake_convex() as convex:
        fake = convex.fake
        async with bench.run(convex, "one", 1) as run:
            await _ready(run)
            (worker,) = run.workers
            chat = fake.start_session(worker.worker_id)
            cold = await answered_in(fake, chat, "cold one")
            res.figures["cold_first_turn_s"] = round(cold, 3)
            warm = [await answered_in(fake, chat, f"warm {n}") for n in range(plan.warm_samples)]
            res.details["warm_turns_one_worker_s"] = [round(s, 3) for s in warm]
            say(f"cold first turn {cold:.2f} s, warm {statistics.median(warm):.3f} s; completion tail")
            await _completion_tail(bench, fake, chat)
            peak = await _busy_peak(run, [chat], plan.busy_slow_s, "busy-one-")
            res.details["busy_1"] = {
                "pss_mb": mib(peak.pss),
                "rss_mb": mib(peak.rss),
                "processes": peak.processes,
            }
            await run.stop(timeout=60)


async def _completion_tail(bench: ModeBench, fake: FakeConvex, chat: str) -> None:
    """`SLOW n` answers in a warm session: sendMessage → completion ÷ sendMessage → LLM last byte."""
    res, plan = bench.results, bench.plan
    samples = []
    for n in range(plan.completion_samples):
        text = f"SLOW {plan.completion_slow_s:g} tail{n}"
        sent, reply = await ask(fake, chat, text)
        await fake.wait_reply(reply, timeout=TURN_TIMEOUT_S)
        done, last = completed_at(fake, reply), bench.timed.last_byte_ms.get(text)
        if last is None:
            raise AssertionError(f"no last byte for {text!r}: {list(bench.timed.last_byte_ms)[-5:]}")
        samples.append({"llm_end_s": (last - sent) / 1000, "completion_s": (done - sent) / 1000})
        await trio.sleep(1.0)  # let the turn's aftermath (OpenCode's bookkeeping) pass between samples
    ratios = sorted(s["completion_s"] / s["llm_end_s"] for s in samples)
    res.figures["completion_over_llm_end"] = round(statistics.median(ratios), 4)
    res.figures["completion_tail_s"] = round(
        statistics.median(s["completion_s"] - s["llm_end_s"] for s in samples), 3
    )
    res.details["completion_samples"] = [{k: round(v, 3) for k, v in s.items()} for s in samples]


# -- ten workers: first turns once a server is up, busy memory ---------------------------------


async def ten_workers(bench: ModeBench) -> None:
    res, plan = bench.results, bench.plan
    count = plan.busy_workers
    async with serve_fake_convex() as convex:
        fake = convex.fake
        async with bench.run(convex, "busy", count) as run:
            await _ready(run)
            chats = [fake.start_session(w.worker_id) for w in run.workers]
            first = await answered_in(fake, chats[0], "first of many")
            res.details["first_worker_cold_s"] = round(first, 3)
            cold = [await answered_in(fake, chats[n], f"first {n}") for n in range(1, 1 + plan.cold_turns)]
            rest = range(1 + plan.cold_turns, count)
            async with trio.open_nursery() as nursery:  # the workers not measured, warmed together
                for n in rest:
                    nursery.start_soon(answered_in, fake, chats[n], f"warm-up {n}")
            warm = [await answered_in(fake, chats[1], f"warm {n}") for n in range(plan.warm_samples)]
            res.figures["cold_turn_s"] = round(statistics.median(cold), 3)
            res.figures["warm_turn_s"] = round(statistics.median(warm), 3)
            res.figures["cold_turn_over_warm"] = round(statistics.median(cold) / statistics.median(warm), 2)
            res.details["cold_turns_s"] = [round(s, 3) for s in cold]
            res.details["warm_turns_s"] = [round(s, 3) for s in warm]
            say(f"first turns with a server up: {res.details['cold_turns_s']}; busy memory")
            peak = await _busy_peak(run, chats, plan.busy_slow_s, "busy-")
            res.details[f"busy_{count}"] = {
                "pss_mb": mib(peak.pss),
                "rss_mb": mib(peak.rss),
                "processes": peak.processes,
            }
            await run.stop(timeout=60)


# -- first turns after the web app opened the worker -------------------------------------------

TYPING_S = 2.0  # between opening a worker's chat in the web app and sending the first message


async def opened_first(bench: ModeBench) -> None:
    """The 2nd... worker's first turn once a server is up, as the web app makes it: the chat is
    opened (`workers:requestConnect`, which the web app calls when the chat view mounts), the
    user types for `TYPING_S`, then sends. Every other worker sends after the same pause without
    the connect, so both are measured side by side in one run."""
    res, plan = bench.results, bench.plan
    count = plan.connect_workers
    async with serve_fake_convex() as convex:
        fake = convex.fake
        async with bench.run(convex, "opened", count) as run:
            await _ready(run)
            chats = [fake.start_session(w.worker_id) for w in run.workers]
            await answered_in(fake, chats[0], "the server's first")
            opened, unopened = [], []
            for n in range(1, count):
                if n % 2:
                    worker_id = run.workers[n].worker_id
                    asked = fake.request_connect(worker_id)["requestedAt"]

                    def connected(worker_id: str = worker_id, asked: float = asked) -> bool:
                        record = fake.worker(worker_id)
                        return record is not None and (record.connected_at or 0) >= asked

                    await fake.wait_for(connected, timeout=TURN_TIMEOUT_S)
                await trio.sleep(TYPING_S)
                (opened if n % 2 else unopened).append(await answered_in(fake, chats[n], f"first {n}"))
            warm = [await answered_in(fake, chats[1], f"warm {n}") for n in range(plan.warm_samples)]
            for name, times in (("opened", opened), ("unopened", unopened)):
                if times:
                    res.figures[f"{name}_first_turn_s"] = round(statistics.median(times), 3)
                    res.details[f"{name}_first_turns_s"] = [round(s, 3) for s in times]
            res.figures["opened_first_turn_over_warm"] = round(
                statistics.median(opened) / statistics.median(warm), 2
            )
            res.details["opened_warm_turns_s"] = [round(s, 3) for s in warm]
            say(f"first turns, opened first: {opened}; not opened: {unopened}")
            await run.stop(timeout=60)


# -- a cold burst: N workers with no server get a chat at the same moment ----------------------


async def cold_burst(bench: ModeBench) -> None:
    """One worker with no server gets a chat, then (in a fresh run) N at the same moment."""
    res, plan = bench.results, bench.plan
    res.details["cold_burst_1_s"] = await _burst(bench, 1)
    res.details["cold_burst_each_s"] = await _burst(bench, plan.burst_workers)
    res.figures["cold_burst_1_s"] = max(res.details["cold_burst_1_s"])
    res.figures["cold_burst_s"] = max(res.details["cold_burst_each_s"])


async def _burst(bench: ModeBench, workers: int) -> list[float]:
    """Seconds from one moment's sendMessages to each answer, `workers` workers from cold."""
    async with serve_fake_convex() as convex:
        fake = convex.fake
        async with bench.run(convex, f"burst-{workers}", workers) as run:
            await _ready(run)
            chats = [fake.start_session(w.worker_id) for w in run.workers]
            sent = _now_ms()
            replies = {
                fake.send_message(chat, f"ECHO burst {n}"): f"burst {n}" for n, chat in enumerate(chats)
            }
            for reply, text in replies.items():
                message = await fake.wait_reply(reply, timeout=TURN_TIMEOUT_S)
                if message.content != text:
                    raise AssertionError(f"wrong burst answer: {message.content[:200]!r}")
            await run.stop(timeout=60)
    return sorted(round((completed_at(fake, r) - sent) / 1000, 3) for r in replies)


# -- throughput: M messages over N workers at once, from cold ----------------------------------


async def throughput(bench: ModeBench) -> None:
    res, plan = bench.results, bench.plan
    workers = plan.throughput_workers
    per_worker = max(1, plan.throughput_messages // workers)
    async with serve_fake_convex() as convex:
        fake = convex.fake
        async with bench.run(convex, "throughput", workers) as run:
            await _ready(run)
            peak = PeakMemory(run.pid)
            expected: dict[str, str] = {}
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peak.sample)
                started = trio.current_time()
                for worker in run.workers:
                    for n in range(per_worker):
                        chat = fake.start_session(worker.worker_id)
                        text = f"answer {n} from {worker.worker_id}"
                        expected[fake.send_message(chat, f"ECHO {text}")] = text

                def completed() -> bool:
                    return all((m := fake.message(r)) and m.completed for r in expected)

                try:
                    await fake.wait_for(completed, timeout=600)
                except trio.TooSlowError:
                    res.details["throughput_timed_out"] = True
                wall = trio.current_time() - started
                nursery.cancel_scope.cancel()
            answered = sum(
                1 for r, t in expected.items() if (m := fake.message(r)) and m.completed and m.content == t
            )
            res.figures["throughput_messages"] = len(expected)
            res.figures["throughput_answered"] = answered
            res.figures["throughput_wall_s"] = round(wall, 2)
            res.figures["throughput_peak_pss_mb"] = mib(peak.pss)
            res.figures["throughput_peak_rss_mb"] = mib(peak.rss)
            res.details["throughput_peak_processes"] = peak.processes
            wrong = sorted(
                {m.content[:120] for r, t in expected.items() if (m := fake.message(r)) and m.content != t}
            )
            if wrong:
                res.details["throughput_wrong_examples"] = wrong[:3]
            await run.stop(timeout=60)


SCENARIOS: dict[str, Callable[[ModeBench], Awaitable[None]]] = {
    "one": one_worker,
    "busy": ten_workers,
    "opened": opened_first,
    "burst": cold_burst,
    "throughput": throughput,
}


def derive(res: ModeResults) -> None:
    """The ratios, from figures measured in the same mode's runs."""
    f, d = res.figures, res.details
    busy = [k for k in d if k.startswith("busy_") and k != "busy_1"]
    if "busy_1" in d and busy:
        res.figures["busy_memory_ratio_10_vs_1"] = round(d[busy[0]]["pss_mb"] / d["busy_1"]["pss_mb"], 3)
        res.figures["busy_pss_1_mb"] = d["busy_1"]["pss_mb"]
        res.figures["busy_pss_10_mb"] = d[busy[0]]["pss_mb"]
    if "cold_burst_s" in f and "cold_burst_1_s" in f:
        res.figures["cold_burst_5_over_1"] = round(f["cold_burst_s"] / f["cold_burst_1_s"], 3)
