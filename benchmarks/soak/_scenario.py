"""The soak run: `trio-oco run` under faults while the soak chats as the web app would.

Timeline: warm up (one answer per worker, then a baseline of fds and RSS), then phases, each
sending its share of messages round-robin over the live chat sessions while one fault acts:
latency spikes, bursts of 500/502/503/560, an OpenCode SIGKILL mid-answer, a Convex outage,
a long Convex outage (90 s) begun while answers stream, an answer over 1 MiB, a stuck OpenCode
(SIGSTOP of its process group mid-answer), hostile sync frames (garbage, binary, FatalError, a
wrong-typed Transition), a worker deleted mid-answer, hanging requests, a second SIGKILL. The
fake LLM adds latency and 500s (OpenCode retries those). Then drain, measure again, SIGTERM,
and gather `SoakFacts`. `SoakPlan.prod` serves the fake as a production deployment (errors
redacted), so the same soak runs in both modes.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from benchmarks.bench._proc import descendants, rss_bytes
from benchmarks.bench._run_process import RunProcess, run_process
from oco.orchestrator import read_status
from oco.orchestrator._instance import instance_name, instances_root
from oco.testing import FakeConvex, FakeLLMServer, serve_fake_convex
from oco.testing._fake_llm import script_for

from ._checks import (
    BadFrameFacts,
    OversizedFacts,
    Placeholder,
    SentMessage,
    SoakFacts,
    StuckFacts,
)

COMPLETIONS = ("chat:completeStructuredMessage", "chat:completeMessage")
SHUTDOWN_TIMEOUT_S = 20
# What the sync phase sends, in order. The wrong-typed Transition comes first: it keeps the
# socket open (the watcher skips the values); each of the others closes it.
WRONG_TYPED = {
    "chat:subscribeToWorkerMessages": "not a list of messages",
    "chat:subscribeToWorkerSessions": {"not": "a list"},
    "workers:getByMachineAndWorker": 5,
}
BAD_FRAMES: tuple[str | bytes, ...] = (
    "}{ not json",
    b"\x00\xffbinary frame",
    '{"type": "FatalError", "error": "\u001b[31msoak says boom\u001b[0m"}',
)


@attrs.frozen
class SoakPlan:
    """How big and how hostile; `quick()` fits in 10 minutes, `short()` in a test."""

    workers: int = 5
    messages: int = 100
    sessions_per_worker: int = 2
    latency_spike_s: float = 1.5
    error_statuses: tuple[int, ...] = (500, 502, 503, 560)
    outage_s: float = 10.0
    hangs: int = 2
    opencode_kills: int = 2
    delete_worker: bool = True
    llm_error_every: int = 7
    llm_latency_s: float = 0.5
    phase_timeout_s: float = 240.0
    long_outage_s: float = 90.0  # 0: no long outage
    oversized_bytes: int = 3 * 1024 * 1024 // 2  # the `BIG` answer; 0: none
    stuck_opencode: bool = True
    bad_frames: bool = True
    turn_timeout_s: float = 120.0
    prod: bool = False  # serve the fake as a production deployment (errors redacted)

    @classmethod
    def quick(cls, messages: int = 50, *, prod: bool = False) -> SoakPlan:
        return cls(messages=max(50, messages), prod=prod)

    @classmethod
    def short(cls, *, prod: bool = False) -> SoakPlan:
        # The long outage is 30 s here, three times the old soak's 10 s and past the 10 s
        # cleanup scope that cut completions short (issue 13); 90 s would not fit a test.
        return cls(
            workers=3,
            messages=18,
            sessions_per_worker=1,
            latency_spike_s=0.0,
            error_statuses=(503, 503, 503),
            outage_s=3.0,
            hangs=0,
            opencode_kills=1,
            delete_worker=False,
            llm_error_every=0,
            llm_latency_s=0.0,
            phase_timeout_s=60.0,
            long_outage_s=30.0,
            turn_timeout_s=60.0,
            prod=prod,
        )

    @property
    def mode(self) -> str:
        return "prod" if self.prod else "dev"

    @property
    def settings(self) -> dict[str, Any]:
        return {"turn_timeout_s": self.turn_timeout_s, "shutdown_timeout_s": SHUTDOWN_TIMEOUT_S}

    def faults(self) -> list[str]:
        """Issue 13's faults this plan asks for (names of `benchmarks.soak._checks.FAULTS`)."""
        asked = {
            "long_outage": self.long_outage_s > 0,
            "oversized": self.oversized_bytes > 0,
            "stuck": self.stuck_opencode,
            "bad_frames": self.bad_frames,
        }
        return [name for name, wanted in asked.items() if wanted]


class CountingFakeConvex(FakeConvex):
    """The fake backend, also noting every completion that committed (retries included)."""

    def __init__(self, *, prod: bool = False) -> None:
        super().__init__(prod=prod)
        self.committed: dict[str, list[str]] = defaultdict(list)

    def execute(self, path: str, args: dict[str, Any]) -> Any:
        value = super().execute(path, args)
        if path in COMPLETIONS:
            self.committed[args["messageId"]].append(args["content"])
        return value


@attrs.define
class _Soak:
    plan: SoakPlan
    run: RunProcess
    convex: Any  # FakeConvexServer
    llm: FakeLLMServer
    status_path: Path
    log: Callable[[str], None]
    lanes: list[tuple[str, str]] = attrs.field(factory=list)  # (worker name, chat id)
    sent: list[SentMessage] = attrs.field(factory=list)
    counter: itertools.count = attrs.field(factory=itertools.count)
    deleted: list[str] = attrs.field(factory=list)
    timeouts: list[str] = attrs.field(factory=list)
    long_outage_s: float = 0.0
    long_outage_streaming: int = 0
    oversized: OversizedFacts | None = None
    stuck: StuckFacts | None = None
    bad_frames: BadFrameFacts | None = None

    @property
    def fake(self) -> CountingFakeConvex:
        return self.convex.fake  # type: ignore[no-any-return]

    def send(
        self, worker: str, chat: str, script: str | None = None, *, after_deletion: bool = False
    ) -> SentMessage:
        n = next(self.counter)
        if script is None:
            script = ("ECHO", "ECHO", "DEFAULT", "SLOW")[n % 4]
        if script == "ECHO":
            text, expected = f"ECHO soak message {n} for {worker}", f"soak message {n} for {worker}"
        elif script == "DEFAULT":
            text, expected = f"soak message {n}: say hello", None
        else:
            text, expected = f"{script} soak message {n}", None
        reply = self.fake.send_message(chat, text)
        message = SentMessage(worker, chat, reply, text, expected, after_deletion)
        self.sent.append(message)
        return message

    def send_round_robin(self, count: int) -> list[SentMessage]:
        live = [lane for lane in self.lanes if lane[0] not in self.deleted]
        return [self.send(*live[(len(self.sent) + i) % len(live)]) for i in range(count)]

    async def drain(self, label: str, messages: list[SentMessage], timeout: float | None = None) -> None:
        """Wait until these replies are completed; a timeout is noted, the checks judge it."""
        ids = [m.reply_id for m in messages]

        def done() -> bool:
            return all((reply := self.fake.message(i)) is not None and reply.completed for i in ids)

        try:
            await self.fake.wait_for(done, timeout or self.plan.phase_timeout_s)
        except trio.TooSlowError:
            self.timeouts.append(label)
            still = [m for m in messages if not ((r := self.fake.message(m.reply_id)) and r.completed)]
            shown = ", ".join(f"{m.worker}:{m.reply_id}:{m.text[:12]!r}" for m in still[:6])
            self.log(
                f"{label}: {len(still)} replies still open after "
                f"{timeout or self.plan.phase_timeout_s:.0f} s ({shown})"
            )

    async def opencode_pid(self, worker: str, timeout: float = 15, *, not_pid: int | None = None) -> int:
        """The worker's OpenCode pid from status.json (rewritten every few seconds), once it
        is one other than `not_pid`."""
        with trio.fail_after(timeout):
            while True:
                snapshot = read_status(self.status_path)
                row = next((w for w in snapshot.workers if w.name == worker), None) if snapshot else None
                if row is not None and row.opencode_pid and row.opencode_pid != not_pid:
                    return row.opencode_pid
                await trio.sleep(0.2)

    def restarts(self) -> int:
        """All workers' restarts so far, from status.json."""
        snapshot = read_status(self.status_path)
        return sum(w.restarts for w in snapshot.workers) if snapshot else 0

    async def restarts_now(self, timeout: float = 30) -> int:
        """`restarts()` from a status file written after this call (it is rewritten every 5 s
        and on every change), so a restart that just happened is counted."""
        asked = time.time()
        with trio.fail_after(timeout):
            while (snapshot := read_status(self.status_path)) is None or snapshot.updated_at <= asked:
                await trio.sleep(0.2)
        return sum(w.restarts for w in snapshot.workers)

    def streaming(self, messages: list[SentMessage]) -> list[SentMessage]:
        """Those with text streamed and no completion yet."""
        return [
            m
            for m in messages
            if self.fake.chunks(m.reply_id) and not ((r := self.fake.message(m.reply_id)) and r.completed)
        ]

    def lane_of(self, worker: str) -> str:
        return next(c for w, c in self.lanes if w == worker)

    async def kill_opencode_mid_answer(self, worker: str, chat: str) -> SentMessage:
        """Send a slow answer to `worker`, SIGKILL its OpenCode once text has streamed."""
        slow = self.send(worker, chat, "SLOW 8")
        await self.fake.wait_for(lambda: bool(self.fake.chunks(slow.reply_id)), 120)
        pid = await self.opencode_pid(worker)
        os.kill(pid, signal.SIGKILL)
        self.log(f"SIGKILLed {worker}'s OpenCode (pid {pid}) mid-answer")
        return slow

    async def long_outage(self, wave: list[SentMessage]) -> None:
        """Convex down for `long_outage_s`, from a moment when answers are streaming: turns end
        during it, so their completions must outlast it."""
        # Short answers on two workers, each in a chat of its own (not queued behind another
        # message): they finish streaming while Convex is away.
        workers = [
            (w, e["name"])
            for w, e in zip(self.run.workers, self.run.entries, strict=False)
            if e["name"] not in self.deleted
        ][:2]
        slow = [self.send(name, self.fake.start_session(w.worker_id), "SLOW 3") for w, name in workers]
        wave += slow
        await self.fake.wait_for(lambda: bool(self.streaming(slow)), 120)
        try:  # both, when they start close enough together
            await self.fake.wait_for(lambda: len(self.streaming(slow)) == len(slow), 2)
        except trio.TooSlowError:
            pass
        self.long_outage_streaming = len(self.streaming(wave))
        await self.convex.stop_listening()
        self.long_outage_s = self.plan.long_outage_s
        self.log(
            f"Convex refusing connections for {self.plan.long_outage_s:g} s "
            f"({self.long_outage_streaming} answer(s) streaming)"
        )
        try:
            await trio.sleep(self.plan.long_outage_s)  # the outage itself, not a wait for a condition
        finally:
            await self.convex.start_listening()

    async def oversized_answer(self, worker: str, wave: list[SentMessage]) -> None:
        """A message whose answer is over 1 MiB, in a chat of its own (its history would make
        every later request of a shared chat carry it)."""
        worker_id = next(
            w.worker_id
            for w, e in zip(self.run.workers, self.run.entries, strict=False)
            if e["name"] == worker
        )
        chat = self.fake.start_session(worker_id)
        await self.drain("before oversized", wave)  # alone, so its RSS is its own
        rss_before = await _settled(lambda: rss_bytes(self.run.pid))
        big = self.send(worker, chat, f"BIG {self.plan.oversized_bytes}")
        wave.append(big)
        self.log(f"asked {worker} for a {self.plan.oversized_bytes} byte answer")
        await self.drain("oversized", [big])
        rss_after = await _settled(lambda: rss_bytes(self.run.pid))
        sizes = [
            len(json.dumps(c.chunk, ensure_ascii=False).encode()) for c in self.fake.chunks(big.reply_id)
        ]
        self.oversized = OversizedFacts(big.reply_id, self.plan.oversized_bytes, sizes, rss_before, rss_after)

    async def stuck_opencode(self, worker: str, wave: list[SentMessage]) -> None:
        """SIGSTOP the process group of `worker`'s OpenCode once text has streamed: alive, not
        answering. Its reply must end readably and a new OpenCode answer the next message."""
        chat = self.lane_of(worker)
        slow = self.send(worker, chat, "SLOW 8")
        wave.append(slow)
        await self.fake.wait_for(lambda: bool(self.fake.chunks(slow.reply_id)), 120)
        pid = await self.opencode_pid(worker)
        group = os.getpgid(pid)
        os.killpg(group, signal.SIGSTOP)
        self.log(f"SIGSTOPped {worker}'s OpenCode (pid {pid}, group {group}) mid-answer")
        try:
            await self.drain("stuck", [slow], self.plan.turn_timeout_s + 60)
            follow = self.send(worker, chat, "ECHO")
            wave.append(follow)
            await self.drain("after stuck", [follow])
            try:
                new_pid: int | None = await self.opencode_pid(worker, 15, not_pid=pid)
            except trio.TooSlowError:
                new_pid = None
        finally:
            left = _exists(pid)
            if left:  # undo the fault, so the stop at the end is not judged on it
                os.killpg(group, signal.SIGCONT)
        self.stuck = StuckFacts(
            worker, slow.reply_id, _full_answer(slow.text), follow.reply_id, pid, new_pid, left
        )
        self.log(f"{worker}'s OpenCode afterwards: pid {new_pid}; stopped one still there: {left}")

    async def send_bad_frames(self, wave: list[SentMessage]) -> None:
        """Hostile frames on the sync socket while answers stream."""
        sync = self.fake.sync
        restarts_before, attempts_before = await self.restarts_now(), sync.attempts.value
        worker, chat = next((w, c) for w, c in self.lanes if w not in self.deleted)
        wave.append(self.send(worker, chat, "SLOW 6"))
        await self.fake.wait_for(lambda: bool(self.streaming(wave)), 120)
        injected = await sync.inject_transition(values=WRONG_TYPED)
        for frame in BAD_FRAMES:
            attempts = sync.attempts.value
            with trio.fail_after(120):
                await sync.open_sockets.wait_value(lambda n: n >= 1)
            injected += await sync.inject_frame(frame)
            with trio.fail_after(120):  # the client reads it, drops the socket, comes back
                await sync.attempts.wait_value(lambda n: n > attempts)  # noqa: B023 - the predicate is awaited in this iteration
        self.log(f"sent {injected} hostile sync frame(s)")
        await self.drain("bad frames", wave)
        self.bad_frames = BadFrameFacts(
            injected, restarts_before, await self.restarts_now(), sync.attempts.value - attempts_before
        )


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _settled(sample: Callable[[], int], samples: int = 5, spacing: float = 0.5) -> int:
    readings = []
    for n in range(samples):
        if n:
            await trio.sleep(spacing)
        readings.append(sample())
    return sorted(readings)[len(readings) // 2]


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _full_answer(text: str) -> str:
    """The answer the fake LLM gives to `text` when nothing interrupts it."""
    answer = script_for({"messages": [{"role": "user", "content": text}]}, itertools.count())
    return "".join(piece for kind, piece in getattr(answer, "pieces", ()) if kind == "content")


def _phase_list(plan: SoakPlan) -> list[str]:
    phases: list[str] = ["latency", "errors"]
    phases += ["kill"] if plan.opencode_kills >= 1 else []
    phases += ["outage"] if plan.outage_s else []
    phases += ["long_outage"] if plan.long_outage_s else []
    phases += ["oversized"] if plan.oversized_bytes else []
    phases += ["stuck"] if plan.stuck_opencode else []
    phases += ["bad_frames"] if plan.bad_frames else []
    phases += ["delete"] if plan.delete_worker else []
    phases += ["hang"] if plan.hangs else []
    phases += ["kill"] * max(0, plan.opencode_kills - 1)
    return phases


# Messages a phase sends beyond its share of the round robin.
_EXTRA_MESSAGES = {"kill": 1, "long_outage": 2, "oversized": 1, "stuck": 2, "bad_frames": 1, "delete": 3}


async def _phases(soak: _Soak) -> None:
    plan, fake, llm = soak.plan, soak.fake, soak.llm
    names = [f"w{n:02d}" for n in range(plan.workers)]
    victim, doomed = names[1 % plan.workers], names[-1]
    big_worker, stuck_worker = names[0], names[2 % plan.workers]
    phases = _phase_list(plan)
    budget = plan.messages - len(soak.sent)
    extras = sum(_EXTRA_MESSAGES.get(phase, 0) for phase in phases)
    shares = _split(max(0, budget - extras), len(phases))
    for phase, share in zip(phases, shares, strict=False):
        soak.log(f"phase {phase}: {share} message(s)")
        wave = soak.send_round_robin(share)
        try:
            if phase == "latency" and plan.latency_spike_s:
                fake.faults.add(latency=plan.latency_spike_s, times=30)
                llm.faults.latency = plan.llm_latency_s
            elif phase == "errors":
                for status in plan.error_statuses:
                    fake.faults.add(status=status, times=3)
                llm.faults.error_every = plan.llm_error_every
            elif phase == "kill":
                wave.append(await soak.kill_opencode_mid_answer(victim, soak.lane_of(victim)))
            elif phase == "outage":
                await soak.convex.stop_listening()
                soak.log(f"Convex refusing connections for {plan.outage_s:g} s")
                await trio.sleep(plan.outage_s)  # the outage itself, not a wait for a condition
                await soak.convex.start_listening()
            elif phase == "long_outage":
                await soak.long_outage(wave)
            elif phase == "oversized":
                await soak.oversized_answer(big_worker, wave)
            elif phase == "stuck":
                await soak.stuck_opencode(stuck_worker, wave)
            elif phase == "bad_frames":
                await soak.send_bad_frames(wave)
            elif phase == "delete":
                chat = soak.lane_of(doomed)
                in_flight = soak.send(doomed, chat, "SLOW 6")
                queued = soak.send(doomed, chat, "ECHO")
                wave += [in_flight, queued]
                await fake.wait_for(lambda: bool(fake.chunks(in_flight.reply_id)), 120)  # noqa: B023 - the predicate is awaited in this iteration
                worker_id = next(
                    w.worker_id
                    for w, e in zip(soak.run.workers, soak.run.entries, strict=False)
                    if e["name"] == doomed
                )
                fake.remove(worker_id)
                soak.deleted.append(doomed)
                soak.log(f"deleted {doomed} in the web app mid-answer")
                soak.send(doomed, chat, "ECHO", after_deletion=True)
            elif phase == "hang":
                fake.faults.add(hang=True, times=plan.hangs)
        except trio.TooSlowError:
            # A fault step that never came about (no streamed text to kill, say): note it, go
            # on with the next phase; the checks judge what happened.
            soak.timeouts.append(phase)
            soak.log(f"phase {phase}: a step timed out; last lines of trio-oco run:\n" + soak.run.tail(40))
        await soak.drain(phase, wave)
        fake.faults.clear()
    llm.faults.error_every, llm.faults.latency = 0, 0.0


def _leaks(secrets: list[str], root: Path, output: str, skip: Path) -> list[str]:
    """Where a secret appears: "output", or a file under `root` (the tokens' own file excluded)."""
    found = ["output" for s in secrets if s in output]
    for path in root.rglob("*"):
        if path == skip or not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found += [str(path.relative_to(root)) for s in secrets if s.encode() in data]
    return found


def _children_left(pgid: int, projects: list[Path]) -> int:
    """Processes still in the run's group or working in a project directory."""
    left = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) in projects or os.getpgid(int(entry.name)) == pgid:
                left.add(int(entry.name))
        except OSError:
            continue
    return len(left)


async def run_soak(
    plan: SoakPlan,
    llm: FakeLLMServer,
    opencode_bin: str,
    root: Path,
    log: Callable[[str], None] = lambda line: print(f"soak: {line}", file=sys.stderr, flush=True),
) -> tuple[SoakFacts, dict[str, Any]]:
    """Run the whole soak in `root` (created here); returns the facts and extra measurements."""
    started = trio.current_time()
    async with serve_fake_convex(CountingFakeConvex(prod=plan.prod)) as convex:
        async with run_process(
            convex, llm, root, plan.workers, opencode_bin=opencode_bin, settings=plan.settings
        ) as run:
            state = root / "home" / ".local" / "state" / "opencode-orchestrator"
            status_path = instances_root(state) / instance_name("run", run.workers_file) / "status.json"
            soak = _Soak(plan, run, convex, llm, status_path, log)
            await run.wait_connected(120)
            await run.wait_models(120)
            for worker, entry in zip(run.workers, run.entries, strict=False):
                for _ in range(plan.sessions_per_worker):
                    soak.lanes.append((entry["name"], convex.fake.start_session(worker.worker_id)))
            log(f"{plan.workers} workers ready ({plan.mode} deployment); warming up")
            warm = [soak.send(name, chat, "ECHO") for name, chat in soak.lanes[:: plan.sessions_per_worker]]
            await soak.drain("warm-up", warm, 180)
            fd_warm = await _settled(lambda: _fd_count(run.pid))
            rss_warm = await _settled(lambda: rss_bytes(run.pid))
            await _phases(soak)
            log("draining")
            await soak.drain("final", [m for m in soak.sent if not m.after_deletion])
            fd_end = await _settled(lambda: _fd_count(run.pid))
            rss_end = await _settled(lambda: rss_bytes(run.pid))
            snapshot = read_status(status_path)
            parked = [w.name for w in snapshot.workers if w.state == "parked"] if snapshot else []
            restarts = sum(w.restarts for w in snapshot.workers) if snapshot else 0
            tree_children = len(descendants(run.pid))
            log("stopping with SIGTERM")
            try:
                exit_code: int | None = await run.stop(60)
            except trio.TooSlowError:
                exit_code = None
            output = run.output.value.decode(errors="replace")
            # Before run_process's own clean-up, which would SIGKILL whatever is left.
            projects = [Path(e["working_directory"]) for e in run.entries]
            children = _children_left(run.pid, projects)
        fake = convex.fake
        placeholders = {
            doc["messageId"]: Placeholder(bool(doc["completed"]), doc["content"])
            for doc in fake.store.find("chatMessages", role="assistant")
        }
        secrets = [w.secret for w in run.workers]
        facts = SoakFacts(
            sent=soak.sent,
            placeholders=placeholders,
            completions=dict(fake.committed),
            parked=parked,
            expected_parked=soak.deleted,
            exit_code=exit_code,
            secret_leaks=_leaks(secrets, root, output, run.workers_file),
            children_left=children,
            fd_warm=fd_warm,
            fd_end=fd_end,
            rss_warm=rss_warm,
            rss_end=rss_end,
            tracebacks=output.count("Traceback"),
            faults_planned=plan.faults(),
            long_outage_s=soak.long_outage_s,
            long_outage_streaming=soak.long_outage_streaming,
            oversized=soak.oversized,
            stuck=soak.stuck,
            bad_frames=soak.bad_frames,
            worker_restarts=restarts,
        )
        extra = {
            "elapsed_s": round(trio.current_time() - started),
            "mode": plan.mode,
            "workers": plan.workers,
            "phase_timeouts": soak.timeouts,
            "llm_requests": llm.request_count.value,
            "llm_injected_500s": llm.faults.injected_errors,
            "convex_http_requests": fake.http_requests,
            "sync_sockets": fake.sync.attempts.value,
            "children_before_stop": tree_children,
            "output_tail": run.tail(15) if exit_code != 0 else "",
            "output": output,  # not printed; __main__ saves it beside --json
        }
        return facts, extra
