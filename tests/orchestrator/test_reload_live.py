"""Reload applies what it can in place (issue 15): live settings reach running workers at their
next use, a rename relabels the running worker, and only the workers a change concerns
restart. Real workers against the fake Convex in process, or stub workers where only the
supervisor is under test, on a MockClock (exact virtual times)."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio
from stubs import SETTINGS, Script, StubFactory, config, configs, run_with

from oco.config import ConfigError, Settings, WorkerConfig, parse_token
from oco.logs import setup_logging
from oco.orchestrator import Orchestrator, Reloaded, RestartPolicy, worker_factory
from oco.testing import FakeConvex, fake_models, in_process_connections
from oco.worker import PendingReply, Worker
from oco.worker._opencode_host import OpenCodeUnavailable
from oco.worker._relay import JobKind


@pytest.fixture
def log_stream() -> AsyncIterator[io.StringIO]:
    out = io.StringIO()
    handler = setup_logging("INFO", "text", stream=out)
    yield out
    logging.getLogger().removeHandler(handler)


@asynccontextmanager
async def real_orchestrator(
    fake: FakeConvex, tmp_path: Path, settings: Settings, read: Callable[[], Reloaded], names: list[str]
) -> AsyncIterator[tuple[Orchestrator, list[WorkerConfig]]]:
    created = [fake.create_worker(name=name) for name in names]
    workers = [
        WorkerConfig(
            token=parse_token(c.token), convex_url="http://fake.convex", working_directory=tmp_path, name=name
        )
        for c, name in zip(created, names, strict=True)
    ]
    async with in_process_connections(fake) as connections:
        yield (
            Orchestrator(
                {w.key: w for w in workers},
                settings,
                worker_factory=worker_factory(
                    opencode_bin="/nonexistent/opencode", state_dir=tmp_path / "state", catalog=fake_models()
                ),
                connections=connections,
                policy=RestartPolicy(jitter=0.0),
                handle_signals=False,
                hard_exit=None,
                reload=read,
            ),
            workers,
        )


def pending_reply(fake: FakeConvex, chat: str, reply_id: str) -> PendingReply:
    """`reply_id` as the planner would hand it over: answering the chat's last user message."""
    user = [m for m in fake.messages(chat) if m.role == "user"][-1]
    return PendingReply(chat, user.id, reply_id, user.content, user.model or None, user.timestamp)


def beats(fake: FakeConvex) -> list[float]:
    """When each `workers:heartbeat` reached the fake, in trio seconds."""
    return [call.at / 1000 for call in fake.calls if call.function == "workers:heartbeat"]


async def test_a_new_heartbeat_interval_applies_without_a_restart(fake, autojump_clock, tmp_path) -> None:
    reloaded: list[Reloaded] = []
    async with real_orchestrator(
        fake, tmp_path, Settings(heartbeat_interval_s=30.0), lambda: reloaded[0], ["w1"]
    ) as (
        orch,
        (w1,),
    ):

        async def scenario() -> None:
            slot = orch.slots[w1.key]
            await slot.state.wait_value("ready")
            await trio.sleep(65)  # beats at 0, 30, 60 (from the first)
            first = beats(fake)[0]
            assert [t - first for t in beats(fake)] == pytest.approx([0, 30, 60])
            reloaded.append(Reloaded({w1.key: w1}, Settings(heartbeat_interval_s=5.0), source="workers.json"))
            plan = await orch.reload()
            reloaded_at = trio.current_time()
            assert plan.summary() == "reloaded workers.json: applied live: heartbeat_interval_s"
            await trio.sleep(12)
            after = [t - reloaded_at for t in beats(fake) if t >= reloaded_at]
            # 5 s after the last beat (at 60) had passed: one at once, then every 5 s.
            assert after == pytest.approx([0, 5, 10])
            assert (slot.attempts, slot.restarts) == (1, 0)
            assert orch.workers()[0].restarts == 0

        assert await run_with(orch, scenario) == 0


async def test_a_rename_relabels_the_running_worker_in_status_and_log(
    fake, autojump_clock, tmp_path, log_stream
) -> None:
    reloaded: list[Reloaded] = []
    async with real_orchestrator(fake, tmp_path, Settings(), lambda: reloaded[0], ["w1", "w2"]) as (
        orch,
        (w1, w2),
    ):

        async def scenario() -> None:
            for worker in (w1, w2):
                await orch.slots[worker.key].state.wait_value("ready")
            reloaded.append(Reloaded({w1.key: attrs.evolve(w1, name="alpha"), w2.key: w2}, Settings()))
            plan = await orch.reload()
            assert plan.summary() == "reloaded: renamed w1 → alpha"
            rows = {row.key: row for row in orch.workers()}
            assert rows[w1.key].name == "alpha" and rows[w1.key].state == "ready"
            assert [orch.slots[w.key].attempts for w in (w1, w2)] == [1, 1]  # nobody restarted
            assert (await orch.restart_worker("alpha")).changed  # the new name is the one known
            await orch.slots[w1.key].state.wait_value("ready")

        assert await run_with(orch, scenario) == 0
    text = log_stream.getvalue()
    # Lines the running worker logs after the rename carry the new name (its restart, its stop).
    assert "[alpha] ready -> stopping" in text and "[w1] ready -> stopping" not in text
    assert "[oco] reloaded: renamed w1 → alpha" in text
    assert "[w2] ready -> stopping" in text


async def test_an_invalid_file_keeps_the_old_config_and_settings(fake, autojump_clock, tmp_path) -> None:
    answers: list[Reloaded | Exception] = [ConfigError("workers.json: not valid JSON5")]

    def read() -> Reloaded:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    settings = Settings(turn_timeout_s=100.0)
    async with real_orchestrator(fake, tmp_path, settings, read, ["w1"]) as (orch, (w1,)):

        async def scenario() -> None:
            slot = orch.slots[w1.key]
            await slot.state.wait_value("ready")
            with pytest.raises(ConfigError, match="not valid JSON5"):
                await orch.reload()
            assert orch.settings == settings and orch.live_settings.value == settings
            assert slot.worker is not None and slot.worker.settings == settings  # type: ignore[attr-defined]
            # What runs is still the old config: reloading it again changes nothing.
            answers.append(Reloaded({w1.key: w1}, settings))
            assert (await orch.reload()).summary() == "reloaded: nothing changed"
            assert (slot.attempts, orch.workers()[0].state) == (1, "ready")

        assert await run_with(orch, scenario) == 0


# -- restarts only where they are needed (stub workers: the supervisor is under test) -------------


async def test_a_restart_setting_restarts_the_running_workers_and_a_worker_field_only_its_own(
    autojump_clock,
) -> None:
    factory = StubFactory()
    answers: list[Reloaded] = []
    orch = Orchestrator(
        configs(1, 2, 3),
        SETTINGS,
        worker_factory=factory,
        hard_exit=None,
        handle_signals=False,
        reload=lambda: answers.pop(0),
    )
    k1, k2, k3 = (config(n).key for n in (1, 2, 3))

    async def scenario() -> None:
        for key in (k1, k2, k3):
            await orch.slots[key].state.wait_value("ready")
        await orch.stop_worker("w3")
        moved = attrs.evolve(config(1), working_directory=Path("/srv/elsewhere"))
        answers.append(Reloaded({**configs(1, 2, 3), k1: moved}, attrs.evolve(SETTINGS, turn_timeout_s=5.0)))
        plan = await orch.reload()
        assert (
            plan.summary()
            == "reloaded: restarted w1 (working_directory changed); applied live: turn_timeout_s"
        )
        await orch.slots[k1].state.wait_value("ready")
        assert [len(factory.record(k).starts) for k in (k1, k2, k3)] == [2, 1, 1]

        answers.append(
            Reloaded(
                {**configs(1, 2, 3), k1: moved},
                attrs.evolve(SETTINGS, turn_timeout_s=5.0, convex_transport="poll"),
            )
        )
        plan = await orch.reload()
        assert plan.summary() == (
            "reloaded: restarted w1, w2 (convex_transport changed); w3 stay stopped (new config when started)"
        )
        for key in (k1, k2):
            await orch.slots[key].state.wait_value("ready")
        assert [len(factory.record(k).starts) for k in (k1, k2, k3)] == [3, 2, 1]  # w3 was stopped: still is

    assert await run_with(orch, scenario) == 0
    assert all(factory.record(k).most_alive_at_once() == 1 for k in (k1, k2))


# -- the concurrency limit, followed at once --------------------------------------------------------


class GatedHost:
    """OpenCode's stand-in: each lease waits until the test lets it go, then reports OpenCode
    unavailable (the turn ends with a readable error reply). Holds a turn in flight for as
    long as the test wants, which is all the concurrency limit cares about."""

    def __init__(self) -> None:
        self.waiting: list[trio.Event] = []

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[None]:
        gate = trio.Event()
        self.waiting.append(gate)
        await gate.wait()
        raise OpenCodeUnavailable("OpenCode failed to start: gated")
        yield  # pragma: no cover

    def release(self, count: int) -> None:
        for gate in self.waiting[:count]:
            gate.set()
        del self.waiting[:count]


async def test_a_lower_concurrency_limit_cuts_no_running_turn_and_new_ones_wait(
    fake, new_worker, autojump_clock
) -> None:
    created = fake.create_worker(online=True)
    worker: Worker = new_worker(created, max_concurrent_sessions=3)
    host = GatedHost()
    worker.relay._host = host  # type: ignore[assignment]
    relay = worker.relay

    def submit() -> str:
        chat = fake.start_session(created.worker_id)
        reply = pending_reply(fake, chat, fake.send_message(chat, "hello"))
        relay.submit(JobKind.ANSWER, reply)
        return reply.reply_message_id

    async def settle() -> None:
        await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        await nursery.start(relay.run)
        replies = [submit() for _ in range(3)]
        await settle()
        assert relay.turns.value == 3
        worker.live_settings.value = attrs.evolve(worker.settings, max_concurrent_sessions=1)
        await settle()
        assert relay.turns.value == 3  # none of the running turns is cut
        assert not any(fake.message(r).completed for r in replies)  # type: ignore[union-attr]
        replies.append(submit())
        await settle()
        assert relay.turns.value == 3 and len(host.waiting) == 3  # the new one waits
        host.release(1)
        await settle()
        assert relay.turns.value == 2 and len(host.waiting) == 2  # still 2 >= 1: it waits on
        host.release(2)
        await settle()
        assert relay.turns.value == 1 and len(host.waiting) == 1  # now the fourth runs, alone
        replies += [submit(), submit()]
        await settle()
        assert relay.turns.value == 1
        worker.live_settings.value = attrs.evolve(worker.settings, max_concurrent_sessions=10)
        await settle()
        assert relay.turns.value == 3  # a higher limit starts the waiting ones at once
        host.release(3)
        await settle()
        assert relay.turns.value == 0
        nursery.cancel_scope.cancel()
    assert all(fake.message(r).completed for r in replies)  # type: ignore[union-attr]


async def test_a_rename_shows_at_once_while_another_worker_restarts(autojump_clock) -> None:
    k1, k2 = config(1).key, config(2).key
    factory = StubFactory({k2: Script(cleanup=5.0)})
    new = {
        k1: attrs.evolve(config(1), name="alpha"),
        k2: attrs.evolve(config(2), convex_url="http://127.0.0.1:8"),
    }
    orch = Orchestrator(
        configs(1, 2),
        SETTINGS,
        worker_factory=factory,
        hard_exit=None,
        handle_signals=False,
        reload=lambda: Reloaded(new, SETTINGS),
    )

    async def scenario() -> None:
        for key in (k1, k2):
            await orch.slots[key].state.wait_value("ready")
        orch.request_reload()
        await trio.sleep(1)  # w2 is still cleaning up for its restart
        assert orch.reloads_done.value == 0
        assert [row.name for row in orch.workers()] == ["alpha", "w2"]  # w2: its new entry after the restart
        assert orch.slots[k1].state.value == "ready"
        await orch.reloads_done.wait_value(1)
        await orch.slots[k2].state.wait_value("ready")  # its new slot
        assert [len(factory.record(k).starts) for k in (k1, k2)] == [1, 2]

    assert await run_with(orch, scenario) == 0
