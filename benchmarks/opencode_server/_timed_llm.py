"""The fake LLM, served on loopback, noting when it sent the last byte of each answer.

`completion_over_llm_end` divides by "sendMessage → the fake LLM's last byte": the moment the
model is done, after which only OpenCode and the worker can add time. The fake itself does not
record it, so this wraps its ASGI app and watches the final body message go out.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs

from oco.testing import FakeLLM, FakeLLMServer, serve_asgi


def last_user_text(body: Any) -> str:
    """The text of the last user message of a chat-completions request body ("" if none)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content if isinstance(content, str) else ""
    return ""


@attrs.define
class TimedLLM:
    """ASGI app: `FakeLLM` plus `last_byte_ms[text]`, when the answer to the last request whose
    last user message was `text` was sent whole (wall clock, ms, the fake Convex's clock)."""

    llm: FakeLLM = attrs.field(factory=FakeLLM)
    last_byte_ms: dict[str, float] = attrs.field(factory=dict)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.llm(scope, receive, send)
            return

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                # Noted before the send: the fake's streaming task is cancelled as soon as the
                # client hangs up after the last byte, so code after `send` may never run.
                # FakeLLM records the request before it sends anything: it is the latest one.
                text = last_user_text(self.llm.requests[-1].body) if self.llm.requests else ""
                self.last_byte_ms[text.strip()] = time.time() * 1000
            await send(message)

        await self.llm(scope, receive, timed_send)


@asynccontextmanager
async def serve_timed_llm() -> AsyncIterator[tuple[FakeLLMServer, TimedLLM]]:
    """The fake LLM on 127.0.0.1 (as `serve_fake_llm` serves it) and its last-byte record."""
    timed = TimedLLM()
    async with serve_asgi(timed) as url:
        yield FakeLLMServer(base_url=f"{url}/v1", llm=timed.llm), timed
