"""Builds real workers for `dev` and `run`: one model catalog, one OpenCode binary, one state dir."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from oco.config import WorkerConfig
from oco.opencode import list_models_cli
from oco.worker import LiveSettings, ModelCatalog, StopControl, Worker

from ._connections import ConvexLink

MODEL_LIST_TIMEOUT_S = 60.0


def worker_factory(
    *,
    opencode_bin: str,
    state_dir: Path,
    opencode_env: Mapping[str, str] | None = None,
    catalog: ModelCatalog | None = None,
) -> Callable[[WorkerConfig, ConvexLink, StopControl, LiveSettings], Worker]:
    """A factory the orchestrator calls for each attempt of each worker, with what it lends:
    the connections for the worker's deployment (shared by every worker on that URL), the stop
    control, and its live settings (a reload's live settings reach running workers through it).
    `opencode_bin` is the binary found for `settings.opencode_bin`: a change of that setting
    restarts the workers with a new factory (see `commands/run.py`)."""
    if catalog is None:

        async def lister(directory: Path, env: Mapping[str, str] | None):
            return await list_models_cli(opencode_bin, directory, env, timeout=MODEL_LIST_TIMEOUT_S)

        catalog = ModelCatalog(lister)

    def make(config: WorkerConfig, link: ConvexLink, stop: StopControl, settings: LiveSettings) -> Worker:
        share = None
        if settings.value.opencode_server == "shared" and link.opencode is not None:
            share = link.opencode.share(
                opencode_bin,
                opencode_env,
                secrets=(config.token.reveal(), config.secret),
                state_dir=state_dir,
                settings=settings.value,
            )
        return Worker(
            config,
            settings,
            convex=link.client,
            subscriptions=link.subscriptions,
            stop=stop,
            opencode_bin=opencode_bin,
            models=catalog,
            state_dir=state_dir,
            opencode_env=opencode_env,
            opencode_share=share,
        )

    return make
