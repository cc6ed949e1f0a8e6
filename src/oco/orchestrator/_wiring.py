"""Builds real workers for `dev` and `run`: one model catalog, one OpenCode binary, one state dir."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from oco.config import Settings, WorkerConfig
from oco.opencode import list_models_cli
from oco.worker import ModelCatalog, StopControl, Worker

from ._connections import ConvexLink

MODEL_LIST_TIMEOUT_S = 60.0


def worker_factory(
    settings: Settings,
    *,
    opencode_bin: str,
    state_dir: Path,
    opencode_env: Mapping[str, str] | None = None,
    catalog: ModelCatalog | None = None,
) -> Callable[[WorkerConfig, ConvexLink, StopControl], Worker]:
    """A factory the orchestrator calls for each attempt of each worker, with the connections
    it lends for the worker's deployment (shared by every worker on that URL)."""
    if catalog is None:

        async def lister(directory: Path, env: Mapping[str, str] | None):
            return await list_models_cli(opencode_bin, directory, env, timeout=MODEL_LIST_TIMEOUT_S)

        catalog = ModelCatalog(lister)

    def make(config: WorkerConfig, link: ConvexLink, stop: StopControl) -> Worker:
        share = None
        if settings.opencode_server == "shared" and link.opencode is not None:
            share = link.opencode.share(
                opencode_bin,
                opencode_env,
                secrets=(config.token.reveal(), config.secret),
                state_dir=state_dir,
                settings=settings,
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
