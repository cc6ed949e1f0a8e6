"""The soak run: `trio-oco run` under faults while the soak chats as the web app would.

Timeline: warm up (one answer per worker, then a baseline of fds and RSS), then phases, each
sending its share of messages round-robin over the live chat sessions while one fault acts:
latency spikes, bursts of 500/502/503/560, an OpenCode SIGKILL mid-answer, a Convex outage,
a worker deleted mid-answer, hanging requests, a second SIGKILL. The fake LLM adds latency and
500s (OpenCode retries those). Then drain, measure again, SIGTERM, and gather `SoakFacts`.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from oco._bench._proc import descendants, rss_bytes
from oco._bench._run_process import RunProcess, run_process
from oco.orchestrator import read_status
from oco.testing import FakeConvex, FakeLLMServer, serve_fake_convex

from ._checks import Placeholder, SentMessage, SoakFacts

COMPLETIONS = ("chat:completeStructuredMessage", "chat:completeMessage")
SETTINGS = {"turn_timeout_s": 120, "shutdown_timeout_s": 20}


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

    @classmethod
    def quick(cls, messages: int = 50) -> SoakPlan:
        return cls(messages=max(50, messages))

    @classmethod
    def short(cls) -> SoakPlan:
        return cls(workers=3, messages=15, sessions_per_worker=1, latency_spike_s=0.0,
                   error_statuses=(503, 503, 503), outage_s=3.0, hangs=0, opencode_kills=1,
                   delete_worker=False, llm_error_every=0, llm_latency_s=0.0, phase_timeout_s=60.0)


class CountingFakeConvex(FakeConvex):
    """The fake backend, also noting every completion that committed (retries included)."""

    def __init__(self) -> None:
        super().__init__()
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

    @property
    def fake(self) -> CountingFakeConvex:
        return self.convex.fake  # type: ignore[no-any-return]

    def send(self, worker: str, chat: str, script: str | None = None, *, after_deletion: bool = False) -> SentMessage:
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
            self.log(f"{label}: {len(still)} replies still open after "
                     f"{timeout or self.plan.phase_timeout_s:.0f} s ({shown})")

    async def opencode_pid(self, worker: str, timeout: float = 15) -> int:
        """The worker's OpenCode pid from status.json (rewritten every few seconds)."""
        with trio.fail_after(timeout):
            while True:
                snapshot = read_status(self.status_path)
                row = next((w for w in snapshot.workers if w.name == worker), None) if snapshot else None
                if row is not None and row.opencode_pid:
                    return row.opencode_pid
                await trio.sleep(0.2)

    async def kill_opencode_mid_answer(self, worker: str, chat: str) -> SentMessage:
        """Send a slow answer to `worker`, SIGKILL its OpenCode once text has streamed."""
        slow = self.send(worker, chat, "SLOW 8")
        await self.fake.wait_for(lambda: bool(self.fake.chunks(slow.reply_id)), 120)
        pid = await self.opencode_pid(worker)
        os.kill(pid, signal.SIGKILL)
        self.log(f"SIGKILLed {worker}'s OpenCode (pid {pid}) mid-answer")
        return slow


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


async def _phases(soak: _Soak) -> None:
    plan, fake, llm = soak.plan, soak.fake, soak.llm
    names = [f"w{n:02d}" for n in range(plan.workers)]
    victim, doomed = names[1 % plan.workers], names[-1]
    phases: list[str] = ["latency", "errors"]
    phases += ["kill"] if plan.opencode_kills >= 1 else []
    phases += ["outage"]
    phases += ["delete"] if plan.delete_worker else []
    phases += ["hang"] if plan.hangs else []
    phases += ["kill"] * max(0, plan.opencode_kills - 1)
    budget = plan.messages - len(soak.sent)
    kills_and_deletes = phases.count("kill") + (3 if plan.delete_worker else 0)
    shares = _split(max(0, budget - kills_and_deletes), len(phases))
    for phase, share in zip(phases, shares):
        soak.log(f"phase {phase}: {share} message(s)")
        wave = soak.send_round_robin(share)
        if phase == "latency" and plan.latency_spike_s:
            fake.faults.add(latency=plan.latency_spike_s, times=30)
            llm.faults.latency = plan.llm_latency_s
        elif phase == "errors":
            for status in plan.error_statuses:
                fake.faults.add(status=status, times=3)
            llm.faults.error_every = plan.llm_error_every
        elif phase == "kill":
            chat = next(c for w, c in soak.lanes if w == victim)
            wave.append(await soak.kill_opencode_mid_answer(victim, chat))
        elif phase == "outage":
            await soak.convex.stop_listening()
            soak.log(f"Convex refusing connections for {plan.outage_s:g} s")
            await trio.sleep(plan.outage_s)  # the outage itself, not a wait for a condition
            await soak.convex.start_listening()
        elif phase == "delete":
            chat = next(c for w, c in soak.lanes if w == doomed)
            in_flight = soak.send(doomed, chat, "SLOW 6")
            queued = soak.send(doomed, chat, "ECHO")
            wave += [in_flight, queued]
            await fake.wait_for(lambda: bool(fake.chunks(in_flight.reply_id)), 120)
            worker_id = next(w.worker_id for w, e in zip(soak.run.workers, soak.run.entries) if e["name"] == doomed)
            fake.remove(worker_id)
            soak.deleted.append(doomed)
            soak.log(f"deleted {doomed} in the web app mid-answer")
            soak.send(doomed, chat, "ECHO", after_deletion=True)
        elif phase == "hang":
            fake.faults.add(hang=True, times=plan.hangs)
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


async def run_soak(plan: SoakPlan, llm: FakeLLMServer, opencode_bin: str, root: Path,
                   log: Callable[[str], None] = lambda line: print(f"soak: {line}", file=sys.stderr, flush=True),
                   ) -> tuple[SoakFacts, dict[str, Any]]:
    """Run the whole soak in `root` (created here); returns the facts and extra measurements."""
    started = trio.current_time()
    async with serve_fake_convex(CountingFakeConvex()) as convex:
        async with run_process(convex, llm, root, plan.workers, opencode_bin=opencode_bin, settings=SETTINGS) as run:
            status_path = root / "home" / ".local" / "state" / "opencode-orchestrator" / "status.json"
            soak = _Soak(plan, run, convex, llm, status_path, log)
            await run.wait_connected(120)
            await run.wait_models(120)
            for worker, entry in zip(run.workers, run.entries):
                for _ in range(plan.sessions_per_worker):
                    soak.lanes.append((entry["name"], convex.fake.start_session(worker.worker_id)))
            log(f"{plan.workers} workers ready; warming up")
            warm = [soak.send(name, chat, "ECHO") for name, chat in soak.lanes[:: plan.sessions_per_worker]]
            await soak.drain("warm-up", warm, 180)
            fd_warm = await _settled(lambda: _fd_count(run.pid))
            rss_warm = await _settled(lambda: rss_bytes(run.pid))
            try:
                await _phases(soak)
            except trio.TooSlowError:
                # A fault step that never came about (no streamed text to kill, say): note it and
                # go on to drain and judge what happened.
                soak.timeouts.append("phases")
                log("a phase step timed out; last lines of trio-oco run:\n" + run.tail(40))
            log("draining")
            await soak.drain("final", [m for m in soak.sent if not m.after_deletion])
            fd_end = await _settled(lambda: _fd_count(run.pid))
            rss_end = await _settled(lambda: rss_bytes(run.pid))
            snapshot = read_status(status_path)
            parked = [w.name for w in snapshot.workers if w.state == "parked"] if snapshot else []
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
        secrets = [w.token.split(":secret_", 1)[1] for w in run.workers]
        facts = SoakFacts(
            sent=soak.sent, placeholders=placeholders, completions=dict(fake.committed),
            parked=parked, expected_parked=soak.deleted, exit_code=exit_code,
            secret_leaks=_leaks(secrets, root, output, run.workers_file), children_left=children,
            fd_warm=fd_warm, fd_end=fd_end, rss_warm=rss_warm, rss_end=rss_end,
            tracebacks=output.count("Traceback"),
        )
        extra = {
            "elapsed_s": round(trio.current_time() - started),
            "workers": plan.workers,
            "phase_timeouts": soak.timeouts,
            "llm_requests": llm.request_count.value,
            "llm_injected_500s": llm.faults.injected_errors,
            "convex_http_requests": fake.http_requests,
            "children_before_stop": tree_children,
            "output_tail": run.tail(15) if exit_code != 0 else "",
            "output": output,  # not printed; __main__ saves it beside --json
        }
        return facts, extra
