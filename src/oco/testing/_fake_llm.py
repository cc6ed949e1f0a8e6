"""A fake OpenAI-compatible LLM server, scripted by the last user message, for a real OpenCode.

It speaks `POST /v1/chat/completions` with `stream: true` (SSE `chat.completion.chunk`s then
`data: [DONE]`), the way `@ai-sdk/openai-compatible` expects, so an unmodified `opencode serve`
can run whole turns (text, reasoning, tool calls, errors) offline. Scripts, by the last user
message: default → a reasoning delta then "Hello from fake LLM"; `ECHO <text>` → exactly <text>;
`USE_TOOL` → a bash call of an echo, `BASH <command>` → a bash call of <command>, each then
"tool said: <output>"; `SLOW <s>` → tokens spread over <s> seconds; `DEMO [<s>]` → reasoning and an
introduction spread over <s> seconds (default 2), then a bash `ls` call (the demo's one-turn
showcase); `BIG <bytes>` → exactly that many bytes of text (`big_text`) in about 300 deltas, for
answers over Convex's 1 MiB value limit; `FAIL400` / `FAIL500` → that HTTP error.
Title requests get a short title. `faults` (`LLMFaults`) injects HTTP 500s and extra latency
into any answer, whatever its script, for soak tests.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import trio
import trio_util

from oco.testing._asgi import answer_lifespan, read_body
from oco.testing._serve import require_hypercorn, serve_hypercorn

DEFAULT_REPLY = "Hello from fake LLM"
DEFAULT_REASONING = "Thinking about it."
TOOL_COMMAND = "echo hello-from-tool"
TITLE = "Fake title"
DEMO_REASONING = "The user wants a quick tour of this project. Listing its files will show what is here."
DEMO_INTRO = "Let me take a look around this project. I will list its files with the bash tool, then tell you what I found.\n\n"
DEMO_TOOL_COMMAND = "ls"
DEMO_SECONDS = 2.0
_TITLE_MARKER = "You are a title generator"
BIG_DEFAULT_BYTES = 3 * 1024 * 1024 // 2  # `BIG` without a size: 1.5 MiB
BIG_MAX_BYTES = 64 * 1024 * 1024  # a typo in a test must not eat the machine's memory
BIG_DELTAS = 300


def big_text(size: int) -> str:
    """The `BIG <size>` answer: `size` ASCII bytes of numbered 64-byte lines (so a cut is visible)."""
    line_count = size // 64 + 1
    lines = (f"big answer line {n:07d} ".ljust(63, ".") + "\n" for n in range(line_count))
    return "".join(lines)[:size]


#: The scripts, by how the last user message starts (`trio-oco fake-llm --help` prints them;
#: tests/test_fakes_from_the_shell.py pins them to the keywords `script_for` tests).
PROMPTS: tuple[tuple[str, str], ...] = (
    ("(anything else)", f"a reasoning delta, then {DEFAULT_REPLY!r}"),
    ("ECHO <text>", "exactly <text>"),
    ("SLOW <s>", "tokens spread over <s> seconds (default 5)"),
    ("USE_TOOL", f"a bash call of `{TOOL_COMMAND}`, then 'tool said: <output>'"),
    ("BASH <command>", "a bash call of <command>, then 'tool said: <output>'"),
    ("BIG <bytes>", "exactly that many bytes of text in about 300 deltas (default 1.5 MiB)"),
    (
        "DEMO [<s>]",
        f"reasoning and an introduction over <s> seconds (default {DEMO_SECONDS:g}), then a bash `ls`",
    ),
    ("FAIL400", "HTTP 400 (a bad request)"),
    ("FAIL500", "HTTP 500 (a server error)"),
)


def prompts_help() -> str:
    """The scripts as a table for `--help`."""
    width = max(len(prompt) for prompt, _ in PROMPTS)
    lines = [f"  {prompt.ljust(width)}  {effect}" for prompt, effect in PROMPTS]
    return "answers, by how the last user message starts:\n" + "\n".join(lines)


@attrs.frozen
class RecordedRequest:
    """One request the fake LLM received: path, lower-cased headers, parsed JSON body."""

    path: str
    headers: dict[str, str]
    body: Any


@attrs.frozen
class _Stream:
    """A scripted streaming answer: (reasoning, text) pieces, an optional tool call, a pace."""

    pieces: list[tuple[str, str]]  # ("reasoning" | "content", text)
    tool_call: dict[str, Any] | None = None
    interval: float = 0.0


@attrs.frozen
class _Failure:
    status: int
    message: str


def _text_of(content: Any) -> str:
    """The text of an OpenAI message `content` (a string or a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _tokens(text: str) -> list[str]:
    """Split into word-sized chunks whose concatenation is exactly `text`."""
    return re.findall(r"\s*\S+\s*|\s+", text) or [text]


def script_for(body: dict[str, Any], call_ids: Iterator[int]) -> _Stream | _Failure:
    """Decide the answer to one chat-completions request body (pure; the scripting rules)."""
    messages = body.get("messages") or []
    if any(m.get("role") == "system" and _TITLE_MARKER in _text_of(m.get("content")) for m in messages):
        return _Stream([("content", TITLE)])
    if messages and messages[-1].get("role") == "tool":
        return _Stream(
            [("content", t) for t in _tokens(f"tool said: {_text_of(messages[-1].get('content')).strip()}")]
        )
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    raw = _text_of(last_user.get("content")).lstrip() if last_user else ""
    text = raw.strip()
    if text.startswith("FAIL400"):
        return _Failure(400, "fake bad request: FAIL400")
    if text.startswith("FAIL500"):
        return _Failure(500, "fake server error: FAIL500")
    if text.startswith("ECHO "):
        return _Stream([("content", t) for t in _tokens(raw[len("ECHO ") :])])
    if text.startswith("USE_TOOL") or text.startswith("BASH "):
        command = text[len("BASH ") :].strip() if text.startswith("BASH ") else TOOL_COMMAND
        call = {
            "index": 0,
            "id": f"call_fake_{next(call_ids)}",
            "type": "function",
            "function": {
                "name": "bash",
                "arguments": json.dumps({"command": command, "description": "Run a command"}),
            },
        }
        return _Stream([], tool_call=call)
    if text.startswith("DEMO"):
        match = re.match(r"DEMO\s+(\d+(?:\.\d+)?)(?:\s|$)", text)
        seconds = float(match.group(1)) if match else DEMO_SECONDS
        pieces = [("reasoning", t) for t in _tokens(DEMO_REASONING)]
        pieces += [("content", t) for t in _tokens(DEMO_INTRO)]
        call = {
            "index": 0,
            "id": f"call_fake_{next(call_ids)}",
            "type": "function",
            "function": {
                "name": "bash",
                "arguments": json.dumps(
                    {"command": DEMO_TOOL_COMMAND, "description": "List the project's files"}
                ),
            },
        }
        return _Stream(pieces, tool_call=call, interval=seconds / len(pieces))
    if re.match(r"BIG(?:\s|$)", text):
        match = re.match(r"BIG\s+(\d+)(?:\s|$)", text)
        size = min(int(match.group(1)), BIG_MAX_BYTES) if match else BIG_DEFAULT_BYTES
        whole = big_text(size)
        step = max(1, -(-size // BIG_DELTAS))
        return _Stream([("content", whole[i : i + step]) for i in range(0, size, step)])
    if text.startswith("SLOW"):
        try:
            seconds = float(text.split()[1])
        except (IndexError, ValueError):
            seconds = 5.0
        count = max(4, int(seconds * 4))
        return _Stream([("content", f"tok{i} ") for i in range(count)], interval=seconds / count)
    return _Stream([("reasoning", DEFAULT_REASONING)] + [("content", t) for t in _tokens(DEFAULT_REPLY)])


@attrs.define
class LLMFaults:
    """Faults applied to chat-completion requests regardless of their script (off by default).

    `error_every=n` answers every n-th chat-completions request with HTTP 500 (OpenCode retries
    those itself); `latency` delays every answer by that many seconds before its first byte.
    """

    error_every: int = 0
    latency: float = 0.0
    seen: int = 0
    injected_errors: int = 0

    def take(self) -> bool:
        """Count one request; True when it must fail."""
        self.seen += 1
        if self.error_every > 0 and self.seen % self.error_every == 0:
            self.injected_errors += 1
            return True
        return False


class FakeLLM:
    """The ASGI app; `requests` records every request, `request_count` lets tests wait on them."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.request_count: trio_util.AsyncValue[int] = trio_util.AsyncValue(0)
        self._call_ids = itertools.count(1)
        self.faults = LLMFaults()

    async def wait_for_requests(self, count: int) -> RecordedRequest:
        """Wait until at least `count` requests arrived; return the `count`-th."""
        await self.request_count.wait_value(lambda n: n >= count)
        return self.requests[count - 1]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append(RecordedRequest(scope["path"], headers, body))
        self.request_count.value += 1

        if scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
            return await _json(send, 404, {"error": {"message": f"no route {scope['path']}"}})
        if not isinstance(body, dict):
            return await _json(send, 400, {"error": {"message": "body must be a JSON object"}})
        if self.faults.latency:
            await trio.sleep(self.faults.latency)
        if self.faults.take():
            return await _json(
                send, 500, {"error": {"message": "injected fault", "type": "fake_error", "code": 500}}
            )
        answer = script_for(body, self._call_ids)
        if isinstance(answer, _Failure):
            error = {"message": answer.message, "type": "fake_error", "code": answer.status}
            return await _json(send, answer.status, {"error": error})
        await self._stream(answer, body.get("model", "fake-model"), receive, send)

    async def _stream(self, answer: _Stream, model: str, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

        async def event(payload: dict[str, Any]) -> None:
            data = json.dumps({**base, **payload})
            await send(
                {"type": "http.response.body", "body": f"data: {data}\n\n".encode(), "more_body": True}
            )

        def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        async with trio.open_nursery() as nursery:
            # Stop streaming as soon as the client goes away (OpenCode aborting a turn).
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            await event(choice({"role": "assistant", "content": ""}))
            for kind, text in answer.pieces:
                if answer.interval:
                    await trio.sleep(answer.interval)
                field = "reasoning_content" if kind == "reasoning" else "content"
                await event(choice({field: text}))
            if answer.tool_call:
                await event(choice({"tool_calls": [answer.tool_call]}))
            await event(choice({}, "tool_calls" if answer.tool_call else "stop"))
            usage = {
                "prompt_tokens": 10,
                "completion_tokens": len(answer.pieces) + 1,
                "total_tokens": 11 + len(answer.pieces),
            }
            await event({"choices": [], "usage": usage})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
            nursery.cancel_scope.cancel()


async def _cancel_on_disconnect(receive: Any, scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _json(send: Any, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


@attrs.frozen
class FakeLLMServer:
    """A running fake LLM: `base_url` ends in `/v1`; `llm` holds the recorded requests."""

    base_url: str
    llm: FakeLLM

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.llm.requests

    @property
    def request_count(self) -> trio_util.AsyncValue[int]:
        return self.llm.request_count

    @property
    def faults(self) -> LLMFaults:
        return self.llm.faults

    async def wait_for_requests(self, count: int) -> RecordedRequest:
        return await self.llm.wait_for_requests(count)


@asynccontextmanager
async def serve_fake_llm(*, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[FakeLLMServer]:
    """Serve a fresh `FakeLLM` over real HTTP (hypercorn's trio worker) until the block ends.

    Needs the `trio-oco[testing]` extra (hypercorn): `MissingExtra` without it."""
    require_hypercorn()
    llm = FakeLLM()
    try:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(serve_hypercorn, llm, host, port, errorlog=logging.getLogger("oco.testing.fake_llm"))
            )
            url = next(b for b in binds if b.startswith("http://"))
            try:
                yield FakeLLMServer(base_url=f"{url}/v1", llm=llm)
            finally:
                nursery.cancel_scope.cancel()
    except ExceptionGroup as group:
        # Show a lone error (a bind failure, the caller's own exception) as itself.
        if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
            lone = group.exceptions[0]
            raise lone from lone.__cause__
        raise
