"""`trio-oco check --online`: ask each worker's deployment about it, and find OpenCode.

Per worker one `workers:getByMachineAndWorker` query (public: it takes no secret, so none is
sent and none can leak), all workers at once, each bounded in time and tried once (a check is
a snapshot; running it again is the retry). The secret itself is checked only by the calls a
running worker makes (`workers:register`): asking it here would mark the worker online.

`verdict` (pure) turns what a deployment answered into the line's words and whether the
worker can run; the trio shell only asks.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from oco.config import WorkerConfig
from oco.domain import WorkerRecord

QUERY_TIMEOUT_S = 10.0  # per worker: a deployment that does not answer by then is unreachable
WORKER_QUERY = "workers:getByMachineAndWorker"


@attrs.frozen
class BackendAnswer:
    """What one worker's deployment said: `ok` when the worker exists and is approved."""

    name: str
    convex_url: str
    ok: bool
    state: str  # approved, pending, rejected, missing, unreachable, error
    detail: str


@attrs.frozen
class OpenCodeAnswer:
    """Whether the opencode binary was found, and its version (or why not)."""

    ok: bool
    path: str | None
    version: str | None
    detail: str


def verdict(record: WorkerRecord | None) -> tuple[bool, str, str]:
    """(can run, state, words) for a worker's record as its deployment returned it (pure)."""
    if record is None:
        return (
            False,
            "missing",
            "no such worker: deleted in the web app, or a wrong token (copy it from the web app again)",
        )
    status = record.approval_status
    if status == "approved":
        return True, "approved", "exists and is approved (the secret is checked when it starts)"
    if status == "pending":
        return False, "pending", "exists, waiting for approval: approve it in the web app"
    return False, status, f"exists, approval status {status!r}: approve it again in the web app"


async def ask_backends(
    workers: Sequence[WorkerConfig], timeout: float = QUERY_TIMEOUT_S
) -> list[BackendAnswer]:
    """Every worker's answer, in order; one client per deployment, all queries at once."""
    import trio

    from oco._retry import CONVEX_CALL
    from oco.convex import ConvexClient, ConvexException, ConvexUnavailable
    from oco.convex.api import WorkerBackend

    once = attrs.evolve(CONVEX_CALL, attempts=1)
    answers: list[BackendAnswer | None] = [None] * len(workers)
    clients: dict[str, ConvexClient] = {}

    async def ask(index: int, worker: WorkerConfig, client: ConvexClient) -> None:
        # No secret: the record query is public (WorkerBackend sends the secret only to
        # the calls that check it, and none of those is made here).
        backend = WorkerBackend(client, worker.machine_id, worker.worker_id, secret="")
        try:
            with trio.fail_after(timeout):
                record = await backend.get_worker()
        except trio.TooSlowError:
            state, ok, words = (
                "unreachable",
                False,
                f"{worker.convex_url} gave no answer within {timeout:g} s",
            )
        except ConvexException as exc:
            state = "unreachable" if isinstance(exc, ConvexUnavailable) else "error"
            ok, words = False, exc.describe()
        else:
            ok, state, words = verdict(record)
        answers[index] = BackendAnswer(worker.name, worker.convex_url, ok, state, words)

    try:
        async with trio.open_nursery() as nursery:
            for index, worker in enumerate(workers):
                client = clients.get(worker.convex_url)
                if client is None:
                    client = clients[worker.convex_url] = ConvexClient(worker.convex_url, retry=once)
                nursery.start_soon(ask, index, worker, client)
    finally:
        for client in clients.values():
            with trio.CancelScope(shield=True):
                await client.aclose()
    return [answer for answer in answers if answer is not None]


def find_opencode(configured: str | None, cache_dir) -> OpenCodeAnswer:
    """The opencode the workers would run, and its version (cached per binary)."""
    from oco.opencode import OpenCodeNotFound, find_opencode_bin
    from oco.opencode._binary import OpenCodeError, cached_opencode_version, version_warning

    try:
        path = find_opencode_bin(configured)
    except OpenCodeNotFound as exc:
        return OpenCodeAnswer(False, None, None, str(exc))
    try:
        version = cached_opencode_version(path, cache_dir)
    except OpenCodeError as exc:
        return OpenCodeAnswer(False, path, None, f"{path}: {exc.summary}")
    warning = version_warning(version)
    words = f"opencode {version} ({path})" + (f"; {warning}" if warning else "")
    return OpenCodeAnswer(True, path, version, words)


__all__ = ["BackendAnswer", "OpenCodeAnswer", "ask_backends", "find_opencode", "verdict"]
