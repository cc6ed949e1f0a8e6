"""The shipped harness (`oco.testing`) does what the tests built on it take for granted."""

from __future__ import annotations

import signal
import sys

import pytest

from oco.convex import InvalidSecret
from oco.testing import (
    FakeConvex,
    MissingExtra,
    in_process_convex,
    open_oco,
    running_worker,
    serve_asgi,
    serve_fake_convex,
    serve_fake_llm,
)
from oco.worker import State


async def test_without_hypercorn_serving_a_fake_is_one_missing_extra_and_in_process_still_works(monkeypatch):
    monkeypatch.setitem(sys.modules, "hypercorn", None)  # as after `pip install trio-oco`
    fake = FakeConvex()
    for serving in (serve_fake_convex(fake), serve_fake_llm(), serve_asgi(fake.app)):
        with pytest.raises(MissingExtra, match=r"needs hypercorn .*: pip install 'trio-oco\[testing\]'$"):
            async with serving:
                pass
    created = fake.create_worker()
    async with in_process_convex(fake) as convex:
        record = await convex.query(
            "workers:getByMachineAndWorker", {"machineId": created.machine_id, "workerId": created.worker_id}
        )
    assert record["workerId"] == created.worker_id


async def test_a_running_worker_is_ready_in_the_block_and_stopped_after_it(fake, new_worker, autojump_clock):
    created = fake.create_worker()
    async with running_worker(new_worker(created)) as worker:
        assert worker.state.value is State.READY
        assert fake.worker(created.worker_id).status == "online"
    assert worker.state.value is State.STOPPED
    assert fake.worker(created.worker_id).status == "offline"


async def test_a_worker_that_fails_before_it_is_ready_fails_the_block(fake, new_worker, autojump_clock):
    created = fake.create_worker()
    entered = False
    with pytest.RaisesGroup(InvalidSecret, allow_unwrapped=True, flatten_subgroups=True):
        async with running_worker(new_worker(created, token=created.token_with_secret("wrong"))):
            entered = True
    assert not entered


async def test_open_oco_kills_a_command_still_running_when_the_block_ends():
    async with open_oco("fake-convex", "--workers", "0", stderr_apart=True) as fake_convex:
        line = await fake_convex.json_line()
    assert line["url"].startswith("http://127.0.0.1:") and line["workers"] == []
    assert fake_convex.process.returncode == -signal.SIGKILL


async def test_open_oco_reads_the_first_line_or_says_there_was_none():
    async with open_oco("--version") as version:
        assert (await version.first_line()).startswith("trio-oco ")
        assert await version.wait(timeout=30) == 0
    async with open_oco("check", "--nope", stderr_apart=True) as refused:
        with pytest.raises(EOFError, match="ended before it wrote a line"):
            await refused.first_line()
        assert await refused.wait(timeout=30) == 2
    assert "unrecognized arguments: --nope" in refused.errors.value.decode()  # all of it, kept
    assert refused.output_closed.value and refused.errors_closed.value
