"""The composition root's shared resources: one Convex client and one sync socket per URL, owned by
the orchestrator's nursery and lent to workers (`Lender`, `ConvexConnections`).

The registry tests run without a network: a client is built but never called. The last test runs
real workers under the real orchestrator against the fake Convex in process (httpx-ws's ASGI
transport carries the HTTP calls and the websocket) on a MockClock.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from oco.config import Settings, WorkerConfig, parse_token
from oco.orchestrator import ConvexConnections, Lender, Orchestrator, ResourceLost, worker_factory
from oco.testing import FakeConvex, fake_models, in_process_connections, trio_ms


@asynccontextmanager
async def running(owner: ConvexConnections | Lender) -> AsyncIterator[None]:
    """`owner.run()` in a nursery of its own for the block (the orchestrator's root, in small)."""
    async with trio.open_nursery() as nursery:
        await nursery.start(owner.run)
        yield
        nursery.cancel_scope.cancel()


# -- ConvexConnections ---------------------------------------------------------------------


async def test_one_client_per_url_closed_when_its_last_borrower_leaves() -> None:
    connections = ConvexConnections()
    async with running(connections):
        async with connections.lend("http://127.0.0.1:9/") as a, connections.lend("http://127.0.0.1:9") as b:
            assert a.client is b.client
            async with connections.lend("http://127.0.0.1:10") as other:
                assert other.client is not a.client
                assert connections.clients.open_count.value == 2
            with trio.fail_after(5):
                await connections.clients.open_count.wait_value(1)
            assert other.client.http.is_closed and not a.client.http.is_closed
        with trio.fail_after(5):
            await connections.clients.open_count.wait_value(0)
        assert a.client.http.is_closed
        async with connections.lend("http://127.0.0.1:9") as fresh:
            assert fresh.client is not a.client


async def test_clients_close_when_the_owner_is_cancelled_with_its_borrowers() -> None:
    connections = ConvexConnections()
    with trio.CancelScope() as everything:
        async with running(connections):
            async with connections.lend("http://127.0.0.1:11") as link:
                everything.cancel()  # the process stops: borrower and owner at once
                await trio.sleep_forever()
    assert link.client.http.is_closed
    assert connections.clients.open_count.value == 0


# -- Lender ----------------------------------------------------------------------------------


class Opened:
    """An opener that counts what it opened and closed; `fail_open`/`crash_after` script faults."""

    def __init__(self, *, delay: float = 0.0, fail_open: int = 0, crash_after: float = math.inf) -> None:
        self.opened: list[str] = []
        self.closed: list[str] = []
        self._delay, self._fail_open, self._crash_after = delay, fail_open, crash_after

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[str]:
        await trio.sleep(self._delay)
        if self._fail_open:
            self._fail_open -= 1
            raise OSError("cannot open")
        name = f"resource {len(self.opened) + 1}"
        self.opened.append(name)
        try:
            async with trio.open_nursery() as inside:  # a resource with a task, like a socket
                inside.start_soon(self._crash, inside)
                yield name
                inside.cancel_scope.cancel()
        finally:
            self.closed.append(name)

    async def _crash(self, inside: trio.Nursery) -> None:
        await trio.sleep(self._crash_after)
        raise RuntimeError("the resource broke")


async def test_borrowers_arriving_together_share_one_opening(autojump_clock) -> None:
    lender: Lender[str, str] = Lender("thing")
    opener = Opened(delay=1.0)
    got: list[str] = []

    async def borrow() -> None:
        async with lender.lend("k", opener) as resource:
            got.append(resource)
            await trio.sleep(5)

    async with running(lender):
        async with trio.open_nursery() as borrowers:
            borrowers.start_soon(borrow)
            borrowers.start_soon(borrow)
        await lender.open_count.wait_value(0)
    assert got == ["resource 1", "resource 1"]
    assert opener.opened == opener.closed == ["resource 1"]


async def test_a_failed_opening_reaches_its_borrower_and_the_next_one_opens_again(autojump_clock) -> None:
    lender: Lender[str, str] = Lender("thing")
    opener = Opened(fail_open=1)
    async with running(lender):
        with pytest.raises(OSError, match="cannot open"):
            async with lender.lend("k", opener):
                pytest.fail("lent a resource that did not open")
        async with lender.lend("k", opener) as resource:
            assert resource == "resource 1"


async def test_a_resource_failing_while_lent_ends_its_borrowers_and_is_opened_afresh(autojump_clock) -> None:
    lender: Lender[str, str] = Lender("thing")
    opener = Opened(crash_after=10.0)
    async with running(lender):
        with pytest.raises(
            ResourceLost, match=r"the shared thing for k went away: .*the resource broke"
        ) as lost:
            async with lender.lend("k", opener):
                await trio.sleep_forever()
        assert trio.current_time() == pytest.approx(10.0)
        assert isinstance(lost.value.__cause__, BaseExceptionGroup)  # the resource's own failure
        assert opener.closed == ["resource 1"] and lender.open_count.value == 0
        async with lender.lend("k", opener) as resource:
            assert resource == "resource 2"  # the broken one is never lent again


async def test_borrowing_outside_a_running_owner_is_refused() -> None:
    lender: Lender[str, str] = Lender("thing")
    with pytest.raises(RuntimeError, match="run is not running"):
        async with lender.lend("k", Opened()):
            pass


# -- the orchestrator as the owner -----------------------------------------------------------


async def test_two_workers_on_one_url_share_one_client_and_one_socket_until_both_stop(
    autojump_clock, tmp_path
) -> None:
    fake = FakeConvex(clock=trio_ms)
    created = [fake.create_worker(name=f"w{n}") for n in range(2)]
    configs = [
        WorkerConfig(
            token=parse_token(c.token),
            convex_url="http://fake.convex",
            working_directory=tmp_path,
            name=f"w{n}",
        )
        for n, c in enumerate(created)
    ]
    first, second = (c.key for c in configs)
    settings = Settings(convex_transport="subscribe")
    async with in_process_connections(fake) as connections:
        orch = Orchestrator(
            {c.key: c for c in configs},
            settings,
            worker_factory=worker_factory(
                opencode_bin="/nonexistent/opencode",
                state_dir=tmp_path / "state",
                catalog=fake_models(),
            ),
            connections=connections,
            handle_signals=False,
            hard_exit=None,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(orch.run)
            with trio.fail_after(60):
                await orch.started.wait()
                for key in (first, second):
                    await orch.slots[key].state.wait_value("ready")
                await fake.sync.open_sockets.wait_value(1)
                await trio.testing.wait_all_tasks_blocked()
            workers = [orch.slots[key].worker for key in (first, second)]
            assert workers[0].backend.client is workers[1].backend.client  # type: ignore[union-attr]
            assert (connections.clients.open_count.value, connections.sockets.open_count.value) == (1, 1)
            assert (fake.sync.attempts.value, fake.sync.open_sockets.value) == (1, 1)

            await orch.stop_worker(first)
            assert fake.worker(created[0].worker_id).status == "offline"
            # The other worker keeps both, without even a reconnect.
            assert (connections.clients.open_count.value, connections.sockets.open_count.value) == (1, 1)
            assert (fake.sync.attempts.value, fake.sync.open_sockets.value) == (1, 1)

            await orch.stop_worker(second)  # the last worker on the URL leaves: both close
            with trio.fail_after(10):
                await connections.sockets.open_count.wait_value(0)
                await connections.clients.open_count.wait_value(0)
                await fake.sync.open_sockets.wait_value(0)
            assert fake.sync.attempts.value == 1
            orch.request_stop("test")
