"""The OpenCode HTTP API (v1 routes of opencode-ai 1.18.33) as one small typed client.

Every call is scoped to one project directory with `?directory=` and authenticated with the
per-start basic-auth password. HTTP and transport failures raise `OpenCodeError`: nothing is
silently ignored (the reference treated failed renames and prompts as success). Bodies
are read with a bound (`BODY_MAX_BYTES`, error bodies `ERROR_BODY_MAX_BYTES`), and what an
error quotes from OpenCode goes through `oco._text.external`.
"""

from __future__ import annotations

import json as _json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from oco._text import ERROR_BODY_MAX_BYTES, external
from oco.domain import ModelInfo

from ._errors import OpenCodeError

USERNAME = "opencode"
PermissionReply = Literal["once", "always", "reject"]

# Calls answer quickly (prompts are async); reading the event stream uses its own timeout.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# The largest answer we read (a long session's message list is a few MB; this is far above).
BODY_MAX_BYTES = 32 * 1024 * 1024
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _part(identifier: str) -> str:
    """An id from OpenCode's events, as one URL path segment whatever it holds."""
    return quote(str(identifier), safe="")


def split_model(model: str) -> dict[str, str]:
    """`provider/model/with/slashes` → `{providerID, modelID}`, split at the first "/"."""
    provider, sep, model_id = model.partition("/")
    if not sep or not provider or not model_id:
        raise ValueError(f"invalid model {model!r}: expected provider/model")
    return {"providerID": provider, "modelID": model_id}


def _summary(body: bytes, reason: str) -> str:
    """A short, inert, single-line description of an error body (OpenCode errors are JSON)."""
    text = body.decode(errors="replace")
    try:
        decoded = _json.loads(text)
    except ValueError:
        pass
    else:
        if isinstance(decoded, dict):
            data = d if isinstance(d := decoded.get("data"), dict) else {}
            text = str(decoded.get("message") or data.get("message") or decoded.get("name") or "") or text
    return external(" ".join(text.split()), 300) or reason


async def read_at_most(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of a streamed response's body, and whether there was more."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


class OpenCodeClient:
    """Calls one `opencode serve` on behalf of one working directory.

    `http` lets tests (or a shared pool) supply the `httpx.AsyncClient`; otherwise one is made
    and closed by `aclose()`.
    """

    def __init__(
        self,
        base_url: str,
        password: str,
        directory: Path | str,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.directory = str(directory)
        self.auth = httpx.BasicAuth(USERNAME, password)
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)

    def __repr__(self) -> str:
        return f"OpenCodeClient({self.base_url!r}, directory={self.directory!r})"

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    @property
    def params(self) -> dict[str, str]:
        return {"directory": self.directory}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        allow_404: bool = False,
        timeout: float | None = None,
        limit: int = BODY_MAX_BYTES,
        query: Mapping[str, str | int] | None = None,
    ) -> Any:
        """One call; returns the decoded JSON (None for 204, or for 404 when allowed).

        `timeout` replaces the client's for this call (health checks want a short one); an
        answer over `limit` bytes is an error, not a memory spike. `query`: parameters beside
        the directory (which it cannot replace).
        """
        extra: dict[str, Any] = {} if timeout is None else {"timeout": httpx.Timeout(timeout)}
        params = {**(query or {}), **self.params}
        try:
            async with self.http.stream(
                method, self.base_url + path, params=params, json=json, auth=self.auth, **extra
            ) as response:
                status = response.status_code
                if allow_404 and status == 404:
                    return None
                if response.is_error:
                    body, _ = await read_at_most(response, ERROR_BODY_MAX_BYTES)
                    raise OpenCodeError(status, f"{method} {path}: {_summary(body, response.reason_phrase)}")
                body, too_large = await read_at_most(response, limit)
        except httpx.RequestError as exc:
            detail = external(exc, 300)
            reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
            raise OpenCodeError(None, f"{method} {path}: {reason}") from exc
        if too_large:
            raise OpenCodeError(status, f"{method} {path}: answer larger than {limit // (1024 * 1024)} MiB")
        if status == 204 or not body:
            return None
        try:
            return _json.loads(body)
        except ValueError as exc:
            raise OpenCodeError(status, f"{method} {path}: not JSON") from exc

    async def health(self, timeout: float | None = None) -> dict[str, Any]:
        """`{"healthy": true, "version": "1.18.33"}`."""
        return await self.request("GET", "/global/health", timeout=timeout, limit=ERROR_BODY_MAX_BYTES)

    async def prepare(self) -> None:
        """Have OpenCode load this directory ahead of a turn: its project, config, agents and
        providers. On opencode-ai 1.18.33 that is about half of a directory's first-turn cost
        (0.7 of 1.4 s here, `scripts/bench_opencode_dirs.py`); the rest (snapshot, tools, file
        watcher) happens inside the first prompt and no cheaper call triggers it. The answers
        are read and dropped."""
        await self.request("GET", "/agent")
        await self.request("GET", "/config/providers")

    async def create_session(self, title: str) -> str:
        """A new session with a title (a title avoids OpenCode's extra title-generation call)."""
        session = await self.request("POST", "/session", json={"title": title})
        return self._session_id(session)

    @staticmethod
    def _session_id(session: Any) -> str:
        """The id of a created session; the id goes into URLs, log lines and Convex, so only the
        shape OpenCode uses is accepted."""
        session_id = session.get("id") if isinstance(session, dict) else None
        if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
            raise OpenCodeError(200, f"POST /session: no usable session id in {external(session, 100)}")
        return session_id

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        """The session, or None when OpenCode does not know it (404)."""
        return await self.request("GET", f"/session/{_part(session_id)}", allow_404=True)

    async def rename_session(self, session_id: str, title: str) -> None:
        await self.request("PATCH", f"/session/{_part(session_id)}", json={"title": title})

    async def prompt_async(self, session_id: str, text: str, model: str) -> None:
        """Queue a user message and start the turn; returns at once (HTTP 204)."""
        body = {"parts": [{"type": "text", "text": text}], "model": split_model(model)}
        await self.request("POST", f"/session/{_part(session_id)}/prompt_async", json=body)

    async def messages(self, session_id: str, *, last: int | None = None) -> list[dict[str, Any]]:
        """The session's messages, `[{info, parts}, …]`, oldest first: every one, or only the
        `last` N (OpenCode's `limit`, which counts from the newest)."""
        query = None if last is None else {"limit": last}
        return await self.request("GET", f"/session/{_part(session_id)}/message", query=query)

    async def session_status(self) -> dict[str, Any]:
        """Busy sessions only: `{session_id: {"type": "busy" | "retry", …}}`."""
        return await self.request("GET", "/session/status")

    async def abort(self, session_id: str) -> bool:
        """Stop the running turn; the assistant message ends with `MessageAbortedError`."""
        return bool(await self.request("POST", f"/session/{_part(session_id)}/abort"))

    async def permissions(self) -> list[dict[str, Any]]:
        """Pending permission requests `[{id, sessionID, permission, patterns, …}]`."""
        return await self.request("GET", "/permission")

    async def reply_permission(self, permission_id: str, reply: PermissionReply) -> None:
        await self.request("POST", f"/permission/{_part(permission_id)}/reply", json={"reply": reply})

    async def reject_question(self, request_id: str) -> None:
        """Dismiss a `question` tool request; the agent continues without an answer."""
        await self.request("POST", f"/question/{_part(request_id)}/reject")


def models_from_providers(body: Any) -> list[ModelInfo]:
    """`GET /config/providers` → ModelInfo list (pure; tolerant of extra fields)."""
    found: list[ModelInfo] = []
    providers = body.get("providers", []) if isinstance(body, dict) else []
    for provider in providers:
        provider_id = str(provider.get("id", ""))
        models = provider.get("models") or {}
        for key, model in models.items():
            model_id = str(model.get("id") or key)
            name = str(model.get("name") or model_id)
            found.append(ModelInfo(id=f"{provider_id}/{model_id}", name=name, provider=provider_id))
    return sorted(found, key=lambda m: m.id)
