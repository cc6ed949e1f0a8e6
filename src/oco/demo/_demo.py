"""`trio-oco demo`: the whole product offline, in one process, narrated as the web app sees it.

The fake Convex (and, unless a real OpenCode config is given, the fake LLM) serve on loopback;
two workers are created in the "web app", configured through a private workers.json and run by
the same `Orchestrator` as `trio-oco run`, with a real OpenCode. The demo then plays the user:
approves the workers, sends each a chat message, prints states, chunks and tool calls as they
arrive, stops gracefully and prints a summary. Everything it made lives in one temporary
directory, removed after the orchestrator (and so every OpenCode) has exited.
"""

from __future__ import annotations

import json
import sys
import tempfile
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import TextIO

import attrs
import trio

from oco.config import WorkerConfig, load_workers_file
from oco.opencode import list_models_cli
from oco.orchestrator import Orchestrator, SlotState, WorkerSlot, worker_factory
from oco.testing import FakeConvex, serve_fake_convex, serve_fake_llm
from oco.worker import ModelCatalog

from ._setup import (
    DEMO_PROMPT,
    PROJECTS,
    LLMChoice,
    demo_opencode_env,
    fake_llm_choice,
    locate_opencode,
    make_project,
    read_opencode_config,
    write_workers_file,
)
from ._view import MessageTiming, Screen, format_summary, is_error_reply, one_line

READY_TIMEOUT_S = 60.0  # registration and approval (the model list is already cached)
FIRST_LISTING_TIMEOUT_S = 120.0  # OpenCode's first start in a fresh home migrates its database
FAKE_HINT = (
    "The fake LLM answers `ECHO <text>` with <text>, `DEMO` and `USE_TOOL` with a tool call, "
    "`SLOW <s>` slowly; anything else gets a fixed reply."
)


@attrs.frozen
class DemoOptions:
    """`keep_running`: chat with the first worker from stdin afterwards; `opencode_config`: a
    real OpenCode configuration file to use instead of the fake LLM."""

    keep_running: bool = False
    opencode_config: Path | None = None
    reply_timeout_s: float = 300.0


def run_demo(options: DemoOptions, out: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """Run the demo to its end; returns the exit code (0: every scripted reply arrived, clean stop)."""
    choice = read_opencode_config(options.opencode_config) if options.opencode_config else fake_llm_choice()
    main = partial(_main, options, choice, out or sys.stdout, stdin or sys.stdin)
    return trio.run(main, restrict_keyboard_interrupt_to_checkpoints=True)


async def _main(options: DemoOptions, choice: LLMChoice, out: TextIO, stdin: TextIO) -> int:
    # The directory outlives the servers and the orchestrator: OpenCode has exited before rmtree.
    with tempfile.TemporaryDirectory(prefix="trio-oco-demo-", ignore_cleanup_errors=True) as tmp:
        async with AsyncExitStack() as stack:
            convex = await stack.enter_async_context(serve_fake_convex())
            llm_url = None
            if choice.config_content is None:
                llm_url = (await stack.enter_async_context(serve_fake_llm())).base_url
            screen = Screen(out, trio.current_time())
            source = f"the fake LLM at {llm_url}" if llm_url else f"{options.opencode_config}"
            screen.say(
                trio.current_time(), "demo", f"fake Convex at {convex.url}; model {choice.model} via {source}"
            )
            demo = _Demo(options, choice, convex.fake, screen, stdin)
            return await demo.run(Path(tmp), convex.url, llm_url)
    raise AssertionError("unreachable")  # pragma: no cover


class _Demo:
    """The scripted user: approves, chats, follows replies; owns the figures for the summary."""

    def __init__(
        self, options: DemoOptions, choice: LLMChoice, fake: FakeConvex, screen: Screen, stdin: TextIO
    ) -> None:
        self.options = options
        self.choice = choice
        self.fake = fake
        self.screen = screen
        self.stdin = stdin
        self.timings: list[MessageTiming] = []
        self.failures: list[str] = []
        self.chats: dict[str, str] = {}  # worker name -> chat session id

    def say(self, who: str, text: str) -> None:
        self.screen.say(trio.current_time(), who, text)

    async def run(self, root: Path, convex_url: str, llm_url: str | None) -> int:
        created = {name: self.fake.create_worker(name=name, approved=False) for name in PROJECTS}
        self.worker_ids = {name: c.worker_id for name, c in created.items()}
        for name in PROJECTS:
            self.say("web app", f"created worker {name} (waiting for approval)")
        projects = {
            name: await make_project(root / "projects", name, files) for name, files in PROJECTS.items()
        }
        path = write_workers_file(
            root / "config" / "workers.json",
            convex_url,
            [(name, created[name].token, projects[name]) for name in PROJECTS],
        )
        loaded = load_workers_file(path)
        self.configs: dict[str, WorkerConfig] = {w.name: w for w in loaded.enabled_workers}
        settings = loaded.settings
        state = root / "state"
        self.say("demo", f"wrote {path} (mode 0600) with {len(self.configs)} workers")
        opencode_bin = locate_opencode(settings.opencode_bin)
        env = demo_opencode_env(root / "home", llm_url, self.choice)
        catalog = await self._first_listing(opencode_bin, projects[next(iter(PROJECTS))], env)
        self.say("demo", "starting the orchestrator (the same one `trio-oco run` uses)")
        self.orchestrator = Orchestrator(
            {w.key: w for w in loaded.enabled_workers},
            settings,
            worker_factory=worker_factory(
                opencode_bin=opencode_bin, state_dir=state, opencode_env=env, catalog=catalog
            ),
            status_dir=state,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._drive, nursery)
            code = await self.orchestrator.run()
            nursery.cancel_scope.cancel()  # the watchers; the script already asked for the stop
        for name, worker_id in self.worker_ids.items():
            record = self.fake.worker(worker_id)
            self.say("web app", f"{name} is {record.status if record else 'gone'}")
        self.screen.raw(format_summary(self.timings, self.fake.counts, self.fake.http_requests))
        for failure in self.failures:
            self.screen.raw(f"problem: {failure}\n")
        return code if not self.failures else max(code, 1)

    async def _first_listing(self, opencode_bin: str, directory: Path, env: dict[str, str]) -> ModelCatalog:
        """List the models once, before any worker starts, and share that listing with them.

        OpenCode's first start in a fresh home creates and migrates its database; two servers
        doing that at once in the same home fail or overrun their start timeout, so the demo
        lets one short `opencode models` do it first (it takes several seconds).
        """

        async def lister(where: Path, with_env):
            return await list_models_cli(opencode_bin, where, with_env, timeout=FIRST_LISTING_TIMEOUT_S)

        catalog = ModelCatalog(lister)
        self.say("demo", "preparing OpenCode in a fresh home (its first start creates its database)")
        models = await catalog.models(directory, env)
        self.say(
            "demo",
            f"OpenCode offers {len(models)} model(s): {one_line(', '.join(m.id for m in models), 120)}",
        )
        if self.choice.model not in {m.id for m in models}:
            self.say("demo", f"warning: {self.choice.model} is not among them; the workers will say so")
        return catalog

    # -- the script ---------------------------------------------------------------------

    async def _drive(self, watchers: trio.Nursery) -> None:
        await self.orchestrator.started.wait()
        for name, config in self.configs.items():
            watchers.start_soon(self._watch_state, name, self.orchestrator.slots[config.key])
        watchers.start_soon(self._watch_web_app)
        async with trio.open_nursery() as chats:
            for name in self.configs:
                chats.start_soon(self._first_chat, name)
        if self.options.keep_running and not self.failures:
            await self._chat_from_stdin(next(iter(self.configs)))
        self.orchestrator.request_stop("the demo is done")

    async def _first_chat(self, name: str) -> None:
        slot = self.orchestrator.slots[self.configs[name].key]
        with trio.move_on_after(READY_TIMEOUT_S):
            await slot.state.wait_value(
                lambda s: s in (SlotState.WAITING_APPROVAL, SlotState.READY, SlotState.PARKED)
            )
            if slot.state.value is SlotState.WAITING_APPROVAL:
                self.say("web app", f"user approves {name}")
                self.fake.approve(self.worker_ids[name])
            await slot.state.wait_value(lambda s: s in (SlotState.READY, SlotState.PARKED))
        if slot.state.value is not SlotState.READY:
            self.failures.append(f"{name} did not become ready ({slot.state.value}: {slot.last_error})")
            return
        self.chats[name] = self.fake.start_session(self.worker_ids[name])
        await self._exchange(name, DEMO_PROMPT)

    async def _chat_from_stdin(self, name: str) -> None:
        self.screen.raw(f"\nType a message for {name} and press Enter; Ctrl+D or Ctrl+C stops the demo.\n")
        if self.choice.config_content is None:
            self.screen.raw(FAKE_HINT + "\n")
        while True:
            # A blocked read cannot be cancelled; abandoning the thread is trio's way out.
            line = await trio.to_thread.run_sync(self.stdin.readline, abandon_on_cancel=True)
            if not line:
                self.say("demo", "end of input")
                return
            if line.strip():
                await self._exchange(name, line.strip())

    async def _exchange(self, name: str, prompt: str) -> None:
        """Send `prompt` in `name`'s chat and print the reply as it streams, until completed."""
        fake = self.fake
        self.say("web app", f"user -> {name}: {one_line(prompt, 100)}")
        sent = trio.current_time()
        message_id = fake.send_message(self.chats[name], prompt, model=self.choice.model)
        printed, first_chunk_s, completed_s = 0, None, None
        seen = -1
        with trio.move_on_after(self.options.reply_timeout_s):
            while True:
                seen = fake.version.value
                for chunk in fake.chunks(message_id)[printed:]:
                    now = trio.current_time()
                    first_chunk_s = now - sent if first_chunk_s is None else first_chunk_s
                    self.say(name, f"chunk {printed}: {json.dumps(chunk.chunk, ensure_ascii=False)}")
                    printed += 1
                message = fake.message(message_id)
                if message is not None and message.completed:
                    completed_s = trio.current_time() - sent
                    self.screen.completed(trio.current_time(), name, message, completed_s)
                    break
                await fake.version.wait_value(lambda v: v != seen)  # noqa: B023 - the predicate is awaited in this iteration
        if completed_s is None:
            self.failures.append(f"{name}: no complete reply within {self.options.reply_timeout_s:.0f} s")
        elif is_error_reply(fake.message(message_id)):
            self.failures.append(f"{name}: the reply is an error (see above)")
        self.timings.append(MessageTiming(name, prompt, first_chunk_s, completed_s, printed))

    # -- watchers (cancelled once the orchestrator has returned) ------------------------

    async def _watch_state(self, name: str, slot: WorkerSlot) -> None:
        async for state in slot.state.eventual_values():
            between = state in (SlotState.BACKOFF, SlotState.PARKED)
            detail = f" ({slot.last_error})" if between and slot.last_error else ""
            self.say(name, f"state: {state}{detail}")

    async def _watch_web_app(self) -> None:
        """Each worker's row as the web app lists it: approval and online status."""
        shown: dict[str, tuple[str, str]] = {}
        seen = -1
        while True:
            seen = self.fake.version.value
            for name, worker_id in self.worker_ids.items():
                record = self.fake.worker(worker_id)
                row = (record.approval_status, record.status) if record else ("deleted", "-")
                if shown.get(name) != row:
                    shown[name] = row
                    self.say("web app", f"{name}: {row[0]}, {row[1]}")
            await self.fake.version.wait_value(lambda v: v != seen)  # noqa: B023 - the predicate is awaited in this iteration
