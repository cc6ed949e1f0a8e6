"""The orchestrator with real `Worker`s against the fake Convex in process, on a MockClock.

No OpenCode is needed: no chat message is sent, so no turn starts a server.
"""

from __future__ import annotations

import trio

from oco.config import Settings, WorkerConfig, parse_token
from oco.orchestrator import Orchestrator, RestartPolicy, worker_factory
from oco.testing import FakeConvex, fake_models, in_process_connections


async def test_a_deleted_worker_is_parked_the_others_run_and_go_offline_on_stop(
    autojump_clock, tmp_path
) -> None:
    fake = FakeConvex()
    created = [fake.create_worker(name=f"w{n}") for n in range(3)]
    configs = [
        WorkerConfig(
            token=parse_token(c.token),
            convex_url="http://fake.convex",
            working_directory=tmp_path,
            name=f"w{n}",
        )
        for n, c in enumerate(created)
    ]
    settings = Settings()
    codes: list[int] = []
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
            policy=RestartPolicy(jitter=0.0),
            handle_signals=False,
            hard_exit=None,
        )

        async def main() -> None:
            codes.append(await orch.run())

        with trio.fail_after(600):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(main)
                await orch.started.wait()
                for config in configs:
                    await orch.slots[config.key].state.wait_value("ready")
                assert {fake.worker(c.worker_id).status for c in created} == {"online"}

                fake.remove(created[0].worker_id)  # deleted in the web app while it runs
                deleted = orch.slots[configs[0].key]
                await deleted.state.wait_value("parked")
                assert deleted.last_error and (
                    "deleted" in deleted.last_error or "not found" in deleted.last_error
                )
                assert [orch.slots[c.key].state.value for c in configs[1:]] == ["ready", "ready"]
                assert [orch.slots[c.key].attempts for c in configs[1:]] == [1, 1]

                orch.request_stop("test")
    assert codes == [0]
    assert [fake.worker(c.worker_id).status for c in created[1:]] == ["offline", "offline"]
    assert fake.worker(created[0].worker_id) is None
