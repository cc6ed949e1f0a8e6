"""Any ASGI app on a real loopback socket, with hypercorn's trio worker.

hypercorn (and h2, priority, wsproto with it) is the optional `trio-oco[testing]` extra: it
is needed only to put a fake on a socket (`serve_fake_convex`, `serve_fake_llm`, `serve_asgi`,
and so `trio-oco demo`, `fake-convex` and `fake-llm`); the fakes themselves, mounted in process
(`in_process_convex`), run without it. It is imported here and nowhere else, when first needed,
and its absence is one line naming the extra (`MissingExtra`), never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from oco.errors import UsageError
from oco.testing._asgi import answer_lifespan

INSTALL_TESTING = "pip install 'trio-oco[testing]'"
GRACEFUL_TIMEOUT_S = 0.5  # how long a stop waits for requests in flight

log = logging.getLogger("oco.testing.serve")

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class MissingExtra(UsageError):
    """An optional dependency is not installed; the message names the extra to install."""


def require_hypercorn(what: str = "serving a fake on 127.0.0.1") -> None:
    """Raise `MissingExtra` (one line: what needs it, and the install command) without hypercorn."""
    try:
        import hypercorn.trio  # noqa: F401
    except ModuleNotFoundError:
        raise MissingExtra(
            f"{what} needs hypercorn (the fakes' web server), which is not installed: {INSTALL_TESTING}"
        ) from None


async def serve_hypercorn(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    errorlog: logging.Logger = log,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on host:port until `shutdown_trigger` returns or the task is cancelled.

    `task_status.started` gets the bound URLs. Access lines are off; hypercorn's own lines go
    to `errorlog` (a logger, not its stderr banner).
    """
    require_hypercorn()
    import hypercorn.trio
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.accesslog = None
    config.errorlog = errorlog
    await hypercorn.trio.serve(
        app,  # type: ignore[arg-type]
        config,
        mode="asgi",
        shutdown_trigger=shutdown_trigger or trio.sleep_forever,
        task_status=task_status,
    )


def with_lifespan(app: ASGIApp) -> ASGIApp:
    """`app` with the server's lifespan events answered for it (any ASGI callable will do)."""

    async def served(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
        else:
            await app(scope, receive, send)

    return served


@asynccontextmanager
async def serve_asgi(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve `app` over real HTTP (and websockets) until the block ends; yields its URL.

    The server is cancelled when the block ends: whatever is in flight stops at once."""
    require_hypercorn()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve_hypercorn, with_lifespan(app), host, port))
        try:
            yield next(b for b in binds if b.startswith("http://"))
        finally:
            nursery.cancel_scope.cancel()
