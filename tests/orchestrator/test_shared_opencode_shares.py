"""Who holds a share of a shared OpenCode server, on a MockClock (no turn runs, so no process).

The orchestrator's `SharedOpenCode` lends one host per OpenCode environment: it opens with the
first worker that uses it, every worker of that environment gets the same one, a worker removed
by a reload gives its share back, and the host closes when the last one leaves.
"""

from __future__ import annotations

import os

import pytest
import trio

from oco.config import Settings, WorkerConfig, parse_token
from oco.orchestrator import Orchestrator, Reloaded, RestartPolicy, format_status_table, worker_factory
from oco.testing import FakeConvex, fake_models, in_process_connections


def _workers(fake: FakeConvex, tmp_path, count: int) -> tuple[list, dict[str, WorkerConfig]]:
    """`count` approved workers in `fake`, all in one directory (so alike: one shared server)."""
    created = [fake.create_worker(name=f"w{n}") for n in range(count)]
    configs = [
        WorkerConfig(
            token=parse_token(w.token),
            convex_url="http://fake.convex",
            working_directory=tmp_path,
            name=f"w{n}",
        )
        for n, w in enumerate(created)
    ]
    return created, {c.key: c for c in configs}


async def test_workers_alike_share_one_host_and_a_reload_that_removes_them_releases_it(
    autojump_clock, tmp_path
) -> None:
    fake = FakeConvex()
    _, configs = _workers(fake, tmp_path, 3)
    keys = list(configs)
    settings = Settings(opencode_server="shared")
    wanted = [dict(configs)]

    async with in_process_connections(fake) as connections:
        factory = worker_factory(
            opencode_bin="/nonexistent/opencode",
            state_dir=tmp_path / "state",
            opencode_env=dict(os.environ),
            catalog=fake_models(),
        )
        orch = Orchestrator(
            configs,
            settings,
            worker_factory=factory,
            connections=connections,
            policy=RestartPolicy(jitter=0.0),
            handle_signals=False,
            hard_exit=None,
            reload=lambda: Reloaded(wanted[0], settings),
        )
        hosts = connections.opencode.hosts

        with trio.fail_after(600):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(orch.run)
                await orch.started.wait()
                for key in keys:
                    await orch.slots[key].state.wait_value("ready")
                await hosts.open_count.wait_value(1)
                rows = orch.workers()
                labels = {row.opencode_server for row in rows}
                assert len(labels) == 1 and labels.pop().startswith("shared ")
                assert " -* " in format_status_table(orch.snapshot())  # no pid yet; "*": shared
                shared = {id(orch.slots[k].worker.host._borrowed.value) for k in keys}  # type: ignore[union-attr]
                assert len(shared) == 1  # the very same host for all three

                wanted[0] = {k: configs[k] for k in keys[1:]}
                plan = await orch.reload()
                assert plan.stop == (keys[0],)
                assert hosts.open_count.value == 1  # two workers still hold it

                wanted[0] = {}
                await orch.reload()
                await hosts.open_count.wait_value(0)  # the last one left: the host closed
                assert orch.workers() == []

                orch.request_stop("test")


@pytest.mark.parametrize("mode", ["shared", "per-worker"])
async def test_a_server_that_cannot_start_degrades_every_worker_that_uses_it(tmp_path, mode) -> None:
    # A real clock: starting a process runs `Popen` in a thread, and a MockClock would jump
    # past every deadline while that thread runs. The start fails at once (no such binary).
    fake = FakeConvex()
    created, configs = _workers(fake, tmp_path, 2)
    async with in_process_connections(fake) as connections:
        factory = worker_factory(
            opencode_bin="/nonexistent/opencode",
            state_dir=tmp_path / "state",
            opencode_env=dict(os.environ),
            catalog=fake_models(),
        )
        orch = Orchestrator(
            configs,
            Settings(opencode_server=mode),
            worker_factory=factory,
            connections=connections,
            policy=RestartPolicy(jitter=0.0),
            handle_signals=False,
            hard_exit=None,
        )
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(orch.run)
                await orch.started.wait()
                for key in configs:
                    await orch.slots[key].state.wait_value("ready")
                # One worker's chat tries the shared server: it cannot start (no such binary).
                chat = fake.start_session(created[0].worker_id)
                reply = fake.send_message(chat, "ECHO hi")
                answer = await fake.wait_reply(reply, timeout=30)
                assert "OpenCode failed to start" in answer.content
                expected = {"shared": {"degraded"}, "per-worker": {"degraded", "ready"}}[mode]
                while {row.state for row in orch.workers()} != expected:
                    await trio.sleep(0.05)  # the rows as the status file would read them
                degraded = [r for r in orch.workers() if r.state == "degraded"]
                assert all("cannot run /nonexistent/opencode" in (r.last_error or "") for r in degraded)
                # Shared: both workers, from the one start the chat of one of them asked for.
                assert len(degraded) == {"shared": 2, "per-worker": 1}[mode]
                orch.request_stop("test over")
