"""A rejected worker parks with the precise reason, no traceback, within two calls: dev and prod.

A production Convex deployment redacts what a function throws to `[Request ID: …] Server
Error`, so the error text cannot say why `workers:register` failed; the worker asks
`workers:getByMachineAndWorker` (public, no secret) and decides from the record. On a dev
deployment the text is a fast path (one call). The worker runs under its real supervisor slot
against the fake Convex mounted in process, on a MockClock.
"""

from __future__ import annotations

import logging
import os
import signal
from functools import partial
from pathlib import Path

import pytest
import trio

from oco._retry import HEARTBEAT
from oco.config import WorkerConfig, parse_token
from oco.convex import ConvexClient
from oco.orchestrator import RestartPolicy
from oco.orchestrator._supervisor import WorkerSlot
from oco.testing import (
    IN_PROCESS_URL,
    CreatedWorker,
    FakeConvex,
    in_process_convex,
    make_worker,
    open_oco,
    serve_fake_convex,
    trio_ms,
)
from oco.worker import Worker


def make_fake(prod: bool) -> FakeConvex:
    return FakeConvex(clock=trio_ms, prod=prod)


def slot_for(
    fake: FakeConvex, created: CreatedWorker, tmp_path: Path, token: str | None = None
) -> WorkerSlot:
    """The worker under its real supervisor slot, the fake in process (polled, one attempt a call)."""
    config = WorkerConfig(parse_token(token or created.token), IN_PROCESS_URL, tmp_path, "w1")

    def worker_for(convex: ConvexClient) -> Worker:
        return make_worker(config, convex, tmp_path, convex_transport="poll", now_ms=trio_ms)

    return WorkerSlot(config, worker_for, partial(in_process_convex, fake), RestartPolicy())


async def run_until_parked(slot: WorkerSlot) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(slot.run)
        with trio.fail_after(60):
            await slot.state.wait_value("parked")
        nursery.cancel_scope.cancel()


def wrong_secret(fake: FakeConvex) -> tuple[CreatedWorker, str]:
    created = fake.create_worker()
    return created, created.token_with_secret("NotTheRightOne42")


def unknown(fake: FakeConvex) -> tuple[CreatedWorker, str]:
    # A well-formed token the backend never issued (a typo in the ids, another deployment).
    real = fake.create_worker()
    created = CreatedWorker(
        f"machine_{real.machine_id}:worker_nosuchworker:secret_s3cr3t", real.machine_id, "nosuchworker"
    )
    return created, created.token


def deleted(fake: FakeConvex) -> tuple[CreatedWorker, str]:
    created = fake.create_worker()
    fake.remove(created.worker_id)
    return created, created.token


CASES = {
    "wrong secret": (wrong_secret, "wrong secret in the token"),
    "unknown worker": (unknown, "unknown worker (deleted in the web app, or a wrong token)"),
    "deleted worker": (deleted, "unknown worker (deleted in the web app, or a wrong token)"),
}


@pytest.mark.parametrize("prod", [True, False], ids=["prod", "dev"])
@pytest.mark.parametrize("case", list(CASES))
async def test_a_rejected_worker_parks_with_its_reason_in_one_line_within_two_calls(
    case: str, prod: bool, tmp_path: Path, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake(prod)
    make_token, reason = CASES[case]
    created, token = make_token(fake)
    slot = slot_for(fake, created, tmp_path, token)
    caplog.set_level(logging.DEBUG)

    await run_until_parked(slot)

    assert fake.counts["workers:register"] == 1
    # Prod asks the worker's record once; dev's error text already said why.
    assert fake.counts["workers:getByMachineAndWorker"] == (1 if prod else 0)
    assert slot.last_error is not None and slot.last_error.startswith(reason), slot.last_error
    assert "calling workers:register on http://fake.convex" in slot.last_error
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in loud] == [f"parked: {slot.last_error} (retrying in 600 s, or on reload)"]
    assert not any(r.exc_info for r in caplog.records)
    assert "NotTheRightOne42" not in caplog.text and "s3cr3t" not in caplog.text


@pytest.mark.parametrize("prod", [True, False], ids=["prod", "dev"])
async def test_a_worker_deleted_while_it_runs_parks_as_deleted(
    prod: bool, tmp_path: Path, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake(prod)
    created = fake.create_worker()
    slot = slot_for(fake, created, tmp_path)
    caplog.set_level(logging.DEBUG)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(slot.run)
        with trio.fail_after(60):
            await slot.state.wait_value("ready")
        fake.remove(created.worker_id)
        with trio.fail_after(120):
            await slot.state.wait_value("parked")
        nursery.cancel_scope.cancel()
    assert slot.last_error and slot.last_error.startswith("the worker was deleted in the web app")
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.real_backoff(HEARTBEAT)
async def test_a_backend_fault_in_the_heartbeat_of_a_known_worker_is_retried_not_a_rejection(
    tmp_path: Path, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Prod: a redacted heartbeat failure of an approved worker whose secret worked is the
    backend's fault; the heartbeat is retried and the worker stays ready."""
    fake = make_fake(prod=True)
    created = fake.create_worker()
    slot = slot_for(fake, created, tmp_path)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(slot.run)
        with trio.fail_after(60):
            await slot.state.wait_value("ready")
        fake.faults.add(function="workers:heartbeat", status=560, times=2)
        beats = fake.counts["workers:heartbeat"]
        with trio.fail_after(300):
            await fake.wait_for(lambda: fake.counts["workers:heartbeat"] >= beats + 3, timeout=300)
        assert slot.state.value == "ready" and slot.restarts == 0
        nursery.cancel_scope.cancel()
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("prod", [True, False], ids=["prod", "dev"])
@pytest.mark.parametrize("case", list(CASES))
async def test_dev_with_a_rejected_token_exits_2_with_one_line(case: str, prod: bool, tmp_path: Path) -> None:
    """`trio-oco dev` as a subprocess (no terminal): a rejected token is not parked for ever
    (dev mode has no reload) but ends the process with exit 2 and one line naming the .env,
    the reason and what to do; no traceback, no secret, no "retrying on reload"."""
    project = tmp_path / "project"
    project.mkdir()
    async with serve_fake_convex(prod=prod) as convex:
        fake = convex.fake
        make_token, reason = CASES[case]
        _created, token = make_token(fake)
        (project / ".env").write_text(f"WORKER_TOKEN={token}\nCONVEX_URL={convex.url}\n")
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "OCO_OPENCODE_BIN": "/bin/false"}
        env.pop("WORKER_TOKEN", None)
        env.pop("CONVEX_URL", None)
        async with open_oco("dev", cwd=project, env=env, stderr_apart=True) as dev:
            code = await dev.wait(timeout=30)
    errors = dev.errors.value.decode()
    assert code == 2, errors
    assert "Traceback" not in errors and "parked" not in errors and "reload" not in errors, errors
    loud = [line for line in errors.splitlines() if " ERROR " in line or " WARNING " in line]
    assert loud == [], errors
    last = errors.strip().splitlines()[-1]
    assert last.startswith(f"trio-oco: {project / '.env'}: the backend rejected WORKER_TOKEN: {reason}"), (
        errors
    )
    assert f"calling workers:register on {convex.url}" in last
    assert "NotTheRightOne42" not in errors and "s3cr3t" not in errors
    assert fake.counts["workers:register"] == 1


async def test_dev_waiting_for_approval_is_not_a_rejection(tmp_path: Path) -> None:
    """A worker not yet approved waits (as in `run`); approving it lets it connect."""
    project = tmp_path / "project"
    project.mkdir()
    async with serve_fake_convex(prod=True) as convex:
        fake = convex.fake
        created = fake.create_worker(approved=False)
        (project / ".env").write_text(f"WORKER_TOKEN={created.token}\nCONVEX_URL={convex.url}\n")
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "OCO_OPENCODE_BIN": "/bin/false"}
        env.pop("WORKER_TOKEN", None)
        env.pop("CONVEX_URL", None)
        async with open_oco("dev", cwd=project, env=env) as dev:
            await dev.wait_for("approval", timeout=30)
            fake.approve(created.worker_id)
            await fake.wait_for(lambda: (fake.worker(created.worker_id).connected_at or 0) > 0, timeout=30)
            assert dev.process.returncode is None
            dev.process.send_signal(signal.SIGINT)
            assert await dev.wait(timeout=15) == 0, dev.text


def test_dev_on_a_terminal_offers_a_new_token_writes_it_and_goes_on(tmp_path: Path) -> None:
    """On a terminal the rejection asks for a new token (not echoed), writes it to the .env
    (0600, other lines kept) and runs with it; Ctrl+C then stops cleanly."""
    import stat

    from terminal import on_terminal

    project = tmp_path / "project"
    project.mkdir()

    async def main() -> tuple[int, str, FakeConvex, CreatedWorker]:
        async with serve_fake_convex(prod=True) as convex:
            created, token = wrong_secret(convex.fake)
            (project / ".env").write_text(f"# mine\nWORKER_TOKEN={token}\nCONVEX_URL={convex.url}\nOTHER=1\n")
            env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "OCO_OPENCODE_BIN": "/bin/false"}
            env.pop("WORKER_TOKEN", None)
            env.pop("CONVEX_URL", None)
            dialogue = [
                ("Enter a new worker token", "not-a-token"),
                # The prompt again, not "try again" before it: typed earlier, the token could
                # meet the terminal while echo is still on (getpass flushes and hides only then).
                ("Enter a new worker token", created.token),
                ("-> ready", "\x03"),
            ]
            code, shown = await trio.to_thread.run_sync(
                lambda: on_terminal("dev", dialogue=dialogue, env=env, cwd=project)
            )
            return code, shown, convex.fake, created

    code, shown, fake, created = trio.run(main)
    assert code == 0, shown
    assert "the backend rejected WORKER_TOKEN: wrong secret in the token" in shown
    assert "token must have 3 ':'-separated parts" in shown  # the bad answer was refused
    assert created.token.split(":secret_")[1] not in shown and "NotTheRightOne42" not in shown
    assert "Traceback" not in shown
    env_file = project / ".env"
    lines = env_file.read_text().splitlines()
    assert lines[:2] == ["# mine", f"WORKER_TOKEN={created.token}"] and lines[3:] == ["OTHER=1"]
    assert lines[2].startswith("CONVEX_URL=http://127.0.0.1:")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert fake.counts["workers:register"] == 2
