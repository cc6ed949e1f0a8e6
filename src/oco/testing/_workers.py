"""A real `Worker` for a worker the fake created, and running one for the length of a block.

    created = fake.create_worker()
    async with in_process_convex(fake) as convex:
        async with running_worker(make_worker(created, convex, tmp_path, now_ms=trio_ms)) as worker:
            ...  # the worker is READY here; it is cancelled when the block ends

What the worker would reach outside is stood in for: it lists `FAKE_MODELS` without starting
an OpenCode, and its OpenCode binary does not exist (`NO_OPENCODE`: a turn ends in a readable
"OpenCode failed to start" reply) unless a real one is given.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from oco.config import Settings, WorkerConfig, parse_token
from oco.convex import ConvexClient
from oco.domain import ModelInfo
from oco.testing._fake_convex import CreatedWorker
from oco.testing._opencode_env import FAKE_MODEL
from oco.worker import ModelCatalog, State, StopControl, Worker
from oco.worker._subscription_watch import SubscriptionsProvider

FAKE_MODELS = (ModelInfo(id=FAKE_MODEL, name="Fake Model", provider="fake"),)
NO_OPENCODE = "/nonexistent/opencode"


def _wall_clock_ms() -> float:
    return time.time() * 1000


def fake_models(models: tuple[ModelInfo, ...] = FAKE_MODELS) -> ModelCatalog:
    """A model catalog that lists `models` at once, without running OpenCode."""

    async def listing(directory: Path, env: Mapping[str, str] | None) -> list[ModelInfo]:
        return list(models)

    return ModelCatalog(listing)


def make_worker(
    worker: CreatedWorker | WorkerConfig,
    convex: ConvexClient,
    directory: Path,
    *,
    stop: StopControl | None = None,
    token: str | None = None,
    name: str = "w1",
    opencode_bin: str = NO_OPENCODE,
    opencode_env: Mapping[str, str] | None = None,
    models: ModelCatalog | None = None,
    state_dir: Path | None = None,
    now_ms: Callable[[], float] | None = None,
    subscriptions: SubscriptionsProvider | None = None,
    **settings: Any,
) -> Worker:
    """A `Worker` talking to `convex`, working in `directory`, its state in `directory/state`.

    `worker` is what `FakeConvex.create_worker` returned (`token` replaces its token, e.g. one
    with a wrong secret) or a whole `WorkerConfig` (then `directory` holds only the state).
    `settings` are `Settings` fields. `now_ms` is the worker's clock: give it the fake's
    (`trio_ms` on a MockClock); the default is the wall clock. `subscriptions` lends it a sync
    socket (as the orchestrator does); without it the worker opens its own.
    """
    if isinstance(worker, WorkerConfig):
        config = worker
    else:
        config = WorkerConfig(
            token=parse_token(token or worker.token),
            convex_url=convex.url,
            working_directory=directory,
            name=name,
        )
    return Worker(
        config,
        Settings(**settings),
        convex=convex,
        stop=stop or StopControl(),
        opencode_bin=opencode_bin,
        models=models or fake_models(),
        state_dir=state_dir or directory / "state",
        opencode_env=opencode_env,
        subscriptions=subscriptions,
        now_ms=now_ms or _wall_clock_ms,
    )


@asynccontextmanager
async def running_worker(
    worker: Worker,
    *,
    until: State | Callable[[State], bool] | None = State.READY,
    timeout: float = 30,
) -> AsyncIterator[Worker]:
    """Run `worker` for the block: entered once its state is `until` (None: at once, within
    `timeout` seconds), cancelled when the block ends. Its failure fails the block."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        if until is not None:
            with trio.fail_after(timeout):
                await worker.state.wait_value(until)
        yield worker
        nursery.cancel_scope.cancel()
