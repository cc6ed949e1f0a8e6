"""A shared `opencode serve` as one worker sees it: every call bound to the worker's directory.

`view(server, directory)` is an `OpenCodeServer` (so a turn and a relay take it unchanged) whose
client sends the worker's `?directory=` on every request over the server's connection pool,
whose events are the server's one hub (routed by session id), and whose fate (crashed, stopped
answering) is the server's: a crash seen by one worker is seen by all of them.

Two checks keep one worker out of another's sessions, because OpenCode 1.18.33 answers
`GET /session/{id}` for any session whatever `?directory=` says: a session of another directory
is "not known" here (the relay then creates one in its own), and a session that `POST /session`
created outside the asked directory (upstream reports of versions ignoring `directory`) fails
the turn with a message saying to use per-worker servers, after deleting it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from oco._text import external

from ._client import OpenCodeClient, _part
from ._errors import OpenCodeError
from ._server import OpenCodeServer
from ._sharing import same_directory, wrong_directory_message

log = logging.getLogger("oco.opencode.view")


class DirectoryClient(OpenCodeClient):
    """An `OpenCodeClient` on a shared server's pool that never strays from its directory."""

    def __init__(self, origin: OpenCodeClient, directory: Path | str) -> None:
        super().__init__(origin.base_url, "", directory, http=origin.http)
        self.auth = origin.auth  # the server's password, not a copy of it in our own hands

    async def create_session(self, title: str) -> str:
        session = await self.request("POST", "/session", json={"title": title})
        session_id = self._session_id(session)
        where = session.get("directory") if isinstance(session, dict) else None
        if not isinstance(where, str) or not same_directory(where, self.directory):
            try:
                await self.request("DELETE", f"/session/{_part(session_id)}", allow_404=True)
            except OpenCodeError as exc:
                log.warning("could not delete session %s made in the wrong directory: %s", session_id, exc)
            raise OpenCodeError(200, wrong_directory_message(self.directory, external(where, 200)))
        return session_id

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        session = await super().get_session(session_id)
        if session is None:
            return None
        where = session.get("directory") if isinstance(session, dict) else None
        if not isinstance(where, str) or not same_directory(where, self.directory):
            log.info("session %s belongs to another directory; not ours", external(session_id, 100))
            return None
        return session


class ServerView(OpenCodeServer):
    """One worker's view of a shared server (see the module docstring)."""

    def __init__(self, origin: OpenCodeServer, directory: Path | str) -> None:
        super().__init__(
            origin.process,
            origin.base_url,
            DirectoryClient(origin.client, directory),
            origin.events,
            origin._tail,
            identity=origin.identity,
            health_timeout=origin.health_timeout,
        )
        self.origin = origin
        self.crashed = origin.crashed  # one fate for every view

    @property
    def stopped_answering(self) -> bool:
        return self.origin.stopped_answering

    @property
    def lost(self) -> bool:
        return self.origin.lost

    def failure_message(self) -> str:
        return self.origin.failure_message()

    async def check_health(self, timeout: float | None = None, attempts: int = 2) -> bool:
        return await self.origin.check_health(timeout, attempts)

    def report_unresponsive(self, reason: str) -> None:
        self.origin.report_unresponsive(reason)

    async def wait_reported(self) -> None:
        await self.origin.wait_reported()

    def __repr__(self) -> str:
        return f"ServerView(pid={self.pid}, directory={self.client.directory!r})"


def view(server: OpenCodeServer, directory: Path | str) -> OpenCodeServer:
    """`server` bound to `directory` (see `ServerView`)."""
    return ServerView(server, directory)
