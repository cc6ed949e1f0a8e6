"""`trio-oco` as a user runs it: a child process, its exit code and output, and nothing left over.

`run_oco(*args)` runs a command to completion; `open_oco(*args)` starts one (`dev`, `run`,
`fake-convex`, ...) for the length of a block, collecting its output so a test can wait for a
line without polling, and kills it, and the OpenCode servers it left in the given directories,
if it is still running when the block ends. `DevProject` is a project set up for `trio-oco dev`
against a served fake Convex and fake LLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio
import trio_util

from oco.testing._fake_convex import CreatedWorker
from oco.testing._fake_convex_server import FakeConvexServer
from oco.testing._fake_llm import FakeLLMServer
from oco.testing._opencode_env import opencode_env
from oco.testing._processes import kill_leftovers


def oco_command(*args: str) -> list[str]:
    """The command line of `trio-oco ARGS` with this interpreter (no install needed)."""
    return [sys.executable, "-m", "oco", *args]


def run_oco(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `trio-oco ARGS` to completion; stdout and stderr captured as text."""
    return subprocess.run(
        oco_command(*args),
        input=input,
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        cwd=cwd,
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


class OcoProcess:
    """A running `trio-oco`: its `process`, and its output as it arrives.

    `output` is stdout, with stderr in it unless the process was opened with
    `stderr_apart=True` (then stderr is in `errors`).
    """

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output = trio_util.AsyncValue(b"")
        self.errors = trio_util.AsyncValue(b"")
        self.output_closed = trio_util.AsyncBool(False)
        self.errors_closed = trio_util.AsyncBool(True)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def text(self) -> str:
        return self.output.value.decode(errors="replace")

    def summary(self, limit: int = 6000) -> str:
        """The output's last `limit` characters without DEBUG lines, for failure messages."""
        lines = [line for line in self.text.splitlines() if " DEBUG " not in line]
        return "\n".join(lines)[-limit:]

    async def wait_for(self, text: str, timeout: float) -> None:
        """Return once `text` is in the output; `trio.TooSlowError` after `timeout` seconds."""
        with trio.fail_after(timeout):
            await self.output.wait_value(lambda data: text.encode() in data)

    async def first_line(self, timeout: float = 30) -> str:
        """The output's first line, once it is complete (EOFError if the process ended first)."""
        with trio.fail_after(timeout):
            await trio_util.wait_any(
                partial(self.output.wait_value, lambda data: b"\n" in data),
                partial(self.output_closed.wait_value, True),
            )
        data = self.output.value
        if b"\n" not in data:
            raise EOFError(f"trio-oco ended before it wrote a line; output: {data!r}")
        return data.split(b"\n", 1)[0].decode()

    async def json_line(self, timeout: float = 30) -> Any:
        """The first line of the output, parsed as JSON (what `fake-convex` and `fake-llm` print)."""
        return json.loads(await self.first_line(timeout))

    async def wait(self, timeout: float) -> int:
        """The exit code, once the process has ended (within `timeout` seconds)."""
        with trio.fail_after(timeout):
            return await self.process.wait()


async def _collect(
    stream: trio.abc.ReceiveStream,
    sink: trio_util.AsyncValue[bytes],
    closed: trio_util.AsyncBool | None = None,
) -> None:
    async for data in stream:
        sink.value += data
    if closed is not None:
        closed.value = True


@asynccontextmanager
async def open_oco(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stderr_apart: bool = False,
    leftovers_in: Sequence[Path] = (),
) -> AsyncIterator[OcoProcess]:
    """Start `trio-oco ARGS` for the block (stdin closed, output collected).

    When the block ends with the process still running (a failed test, or one that does not
    stop it), it is SIGKILLed and reaped, and so are the processes it left working in
    `leftovers_in` (its OpenCode servers live on in their own process groups).
    """
    process = await trio.lowlevel.open_process(
        oco_command(*args),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr_apart else subprocess.STDOUT,
    )
    running = OcoProcess(process)
    try:
        async with trio.open_nursery() as nursery:
            assert process.stdout is not None
            nursery.start_soon(_collect, process.stdout, running.output, running.output_closed)
            if process.stderr is not None:
                running.errors_closed.value = False
                nursery.start_soon(_collect, process.stderr, running.errors, running.errors_closed)
            try:
                yield running
            finally:
                killed = process.returncode is None
                if killed:
                    process.kill()
                # Reaping after a kill is immediate; shielded so a cancelled test still reaps.
                with trio.move_on_after(10, shield=True):
                    await process.wait()
                if killed:
                    kill_leftovers(*leftovers_in)
                # The output's last bytes follow the exit: keep them for the test to read.
                with trio.move_on_after(5, shield=True):
                    await running.output_closed.wait_value(True)
                    await running.errors_closed.wait_value(True)
                nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()


@attrs.define
class DevProject:
    """A git project whose `.env` names a worker of the served fake Convex, and the
    environment in which `trio-oco dev` runs it against the fake LLM with `opencode_bin`."""

    directory: Path
    env: dict[str, str]
    created: CreatedWorker

    @classmethod
    def make(
        cls,
        tmp_path: Path,
        convex: FakeConvexServer,
        llm: FakeLLMServer,
        opencode_bin: str,
        *,
        name: str = "dev-worker",
    ) -> DevProject:
        directory = tmp_path / "project"
        directory.mkdir()
        subprocess.run(["git", "init", "-q", str(directory)], check=True)
        created = convex.fake.create_worker(name=name)
        (directory / ".env").write_text(f"WORKER_TOKEN={created.token}\nCONVEX_URL={convex.url}\n")
        env = {
            **opencode_env(tmp_path / "home", llm.base_url, base=os.environ),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "OCO_OPENCODE_BIN": opencode_bin,
        }
        env.pop("WORKER_TOKEN", None)  # the project's .env names the worker, not the test's
        env.pop("CONVEX_URL", None)
        return cls(directory, env, created)

    def open_dev(self, *options: str) -> Any:
        """`trio-oco [OPTIONS] dev` in the project (an `open_oco` block)."""
        return open_oco(*options, "dev", cwd=self.directory, env=self.env, leftovers_in=[self.directory])
