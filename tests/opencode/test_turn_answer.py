"""`run_turn` hands the answer over when its message finishes, not when the session goes idle
(issue 16's completion tail).

After the model's last byte OpenCode stores the step, marks the assistant message finished
(`finish: "stop"`), does its bookkeeping, and only then says `session.idle`: 40 ms on a quiet
machine here, over 100 ms on a loaded one, all of it added to when the user saw the answer.
These run on a MockClock against a scripted OpenCode peer (its HTTP routes in process, its
events played into the turn's `EventHub` the way the hub hands them over), with the gap made
seconds long so the virtual times show which moment the answer came at.
"""

from __future__ import annotations

import json
import time
import types
from typing import Any

import httpx
import trio

from oco.opencode import EventHub, OpenCodeClient, TurnResult, run_turn
from oco.opencode._event_types import MessageUpdated, PartUpdated, SessionIdle, SessionStatus
from oco.testing import FAKE_MODEL

SESSION = "ses_1"
USER, FIRST, SECOND = "msg_1_user", "msg_2_assistant", "msg_3_assistant"
BOOKKEEPING_S = 5.0  # finish -> idle (OpenCode's own work after the answer), made long


class ScriptedOpenCode:
    """The routes `run_turn` calls, answered as OpenCode 1.18.33 does; `prompt_async` plays
    `steps` into the hub: each step is (seconds to wait first, events)."""

    def __init__(self, hub: EventHub, nursery: trio.Nursery, steps: list[tuple[float, list[Any]]]) -> None:
        self.hub = hub
        self.nursery = nursery
        self.steps = steps
        self.stored: list[dict[str, Any]] = []  # GET /session/{id}/message
        self.calls: list[tuple[float, str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        method, path = scope["method"], scope["path"]
        self.calls.append((trio.current_time(), method, path))
        status, body = 200, None
        if method == "POST" and path == f"/session/{SESSION}/prompt_async":
            status = 204
            self.nursery.start_soon(self._play)
        elif method == "GET" and path == f"/session/{SESSION}/message":
            body = self.stored
        elif method == "POST" and path == f"/session/{SESSION}/abort":
            body = True
        elif method == "GET" and path == "/session/status":
            body = {}
        else:
            status, body = 404, {"name": "NotFound"}
        data = b"" if body is None else json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": data})

    async def _play(self) -> None:
        now_ms = time.time() * 1000  # OpenCode stamps messages with the wall clock
        user = {"id": USER, "role": "user", "sessionID": SESSION, "time": {"created": now_ms}}
        self.hub.dispatch(MessageUpdated(SESSION, user))
        self.hub.dispatch(SessionStatus(SESSION, {"type": "busy"}))
        for delay, events in self.steps:
            await trio.sleep(delay)
            for event in events:
                self.hub.dispatch(event)


def assistant(message_id: str, **fields: Any) -> MessageUpdated:
    return MessageUpdated(SESSION, {"id": message_id, "role": "assistant", "parentID": USER, **fields})


def text_part(part_id: str, message_id: str, text: str) -> PartUpdated:
    return PartUpdated(SESSION, {"id": part_id, "messageID": message_id, "type": "text", "text": text})


def stored(message_id: str, role: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {"info": {"id": message_id, "role": role}, "parts": list(parts)}


IDLE = [SessionStatus(SESSION, {"type": "idle"}), SessionIdle(SESSION)]


async def play(steps: list[tuple[float, list[Any]]], stored_messages: list[dict[str, Any]]):
    """Run one turn against the script; (when on_answer was called, what with, when run_turn
    returned, its result, the peer)."""
    answers: list[tuple[float, TurnResult]] = []
    async with trio.open_nursery() as nursery:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=lambda *a: peer(*a))) as http:
            client = OpenCodeClient("http://opencode.test", "pw", "/project", http=http)
            hub = EventHub(client)
            peer = ScriptedOpenCode(hub, nursery, steps)
            peer.stored = stored_messages
            backend = types.SimpleNamespace(client=client, events=hub)
            started = trio.current_time()
            result = await run_turn(
                backend,
                SESSION,
                "hi",
                FAKE_MODEL,
                timeout=60,
                on_answer=lambda r: answers.append((trio.current_time() - started, r)),
            )
            returned = trio.current_time() - started
    return answers, returned, result, peer


async def test_the_answer_is_handed_over_when_its_message_finishes_not_when_the_session_goes_idle(
    autojump_clock,
):
    steps = [
        (
            1.0,  # the model streams for a second
            [
                assistant(FIRST),
                text_part("prt_1", FIRST, "the ans"),  # the stream missed the end of the text
                PartUpdated(SESSION, {"id": "prt_2", "messageID": FIRST, "type": "step-finish"}),
                assistant(FIRST, finish="stop"),
            ],
        ),
        (BOOKKEEPING_S, [assistant(FIRST, finish="stop", time={"completed": 1}), *IDLE]),
    ]
    messages = [
        stored(USER, "user", {"type": "text", "text": "hi"}),
        stored(FIRST, "assistant", {"type": "text", "text": "the answer"}),
    ]
    answers, returned, result, peer = await play(steps, messages)
    ((answered_at, answer),) = answers
    assert answered_at == 1.0  # at the finish, not BOOKKEEPING_S later at idle
    assert answer.content == "the answer" and answer.error is None  # reconciled from the stored messages
    assert returned == 1.0 + BOOKKEEPING_S  # run_turn itself still follows the session to idle
    assert result == answer
    assert [c for c in peer.calls if c[1] == "GET" and c[2].endswith("/message")] == [
        (1.0, "GET", f"/session/{SESSION}/message")
    ]  # one reconcile, at the answer
    assert not [c for c in peer.calls if c[2].endswith("/abort")]


async def test_a_step_that_calls_a_tool_is_not_the_answer(autojump_clock):
    steps = [
        (1.0, [assistant(FIRST), assistant(FIRST, finish="tool-calls")]),
        (2.0, [assistant(SECOND), text_part("prt_3", SECOND, "done"), assistant(SECOND, finish="stop")]),
        (BOOKKEEPING_S, IDLE),
    ]
    messages = [
        stored(USER, "user", {"type": "text", "text": "hi"}),
        stored(FIRST, "assistant", {"type": "tool", "tool": "bash", "id": "prt_t"}),
        stored(SECOND, "assistant", {"type": "text", "text": "done"}),
    ]
    answers, returned, result, _ = await play(steps, messages)
    assert [(at, r.content) for at, r in answers] == [(3.0, "done")]
    assert returned == 3.0 + BOOKKEEPING_S
    assert result.other_parts == [{"type": "tool", "tool": "bash", "id": "prt_t"}]


async def test_a_failed_message_ends_the_turn_at_idle_with_its_error(autojump_clock):
    error = {"name": "APIError", "data": {"message": "overloaded", "statusCode": 529}}
    steps = [
        (1.0, [assistant(FIRST), assistant(FIRST, finish="stop", error=error)]),
        (BOOKKEEPING_S, IDLE),
    ]
    messages = [stored(USER, "user", {"type": "text", "text": "hi"})]
    answers, returned, result, _ = await play(steps, messages)
    assert answers == []  # not an answer: the turn ends as before, at idle
    assert returned == 1.0 + BOOKKEEPING_S
    assert result.error is not None and "overloaded" in result.error


async def test_without_on_answer_the_turn_ends_at_idle_as_before(autojump_clock):
    steps = [
        (1.0, [assistant(FIRST), text_part("prt_1", FIRST, "hello"), assistant(FIRST, finish="stop")]),
        (BOOKKEEPING_S, IDLE),
    ]
    async with trio.open_nursery() as nursery:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=lambda *a: peer(*a))) as http:
            client = OpenCodeClient("http://opencode.test", "pw", "/project", http=http)
            hub = EventHub(client)
            peer = ScriptedOpenCode(hub, nursery, steps)
            peer.stored = [
                stored(USER, "user", {"type": "text", "text": "hi"}),
                stored(FIRST, "assistant", {"type": "text", "text": "hello"}),
            ]
            result = await run_turn(
                types.SimpleNamespace(client=client, events=hub), SESSION, "hi", FAKE_MODEL, timeout=60
            )
    assert result.content == "hello"
    (get_at,) = [at for at, method, path in peer.calls if path.endswith("/message")]
    assert get_at == 1.0 + BOOKKEEPING_S
