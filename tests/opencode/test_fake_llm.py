"""The fake LLM over real loopback HTTP, without OpenCode: its scripts are what tests rely on."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from oco.testing import open_oco, opencode_config, opencode_env, serve_fake_llm
from oco.testing._fake_llm import (
    BIG_DEFAULT_BYTES,
    DEFAULT_REASONING,
    DEFAULT_REPLY,
    DEMO_INTRO,
    DEMO_REASONING,
    DEMO_TOOL_COMMAND,
    TITLE,
    TOOL_COMMAND,
    big_text,
)


async def _chat(base_url: str, messages: list[dict], **extra) -> tuple[int, list[dict] | dict]:
    body = {"model": "fake-model", "stream": True, "messages": messages, **extra}
    async with httpx.AsyncClient() as client:
        with trio.fail_after(10):
            response = await client.post(
                f"{base_url}/chat/completions", json=body, headers={"x-session-id": "ses_1"}
            )
    if response.headers["content-type"].startswith("application/json"):
        return response.status_code, response.json()
    chunks = []
    for line in response.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            chunks.append(json.loads(line[len("data: ") :]))
    assert response.text.rstrip().endswith("data: [DONE]")
    return response.status_code, chunks


def _joined(chunks: list[dict], field: str) -> str:
    return "".join(c["choices"][0]["delta"].get(field) or "" for c in chunks if c.get("choices"))


def user(text: str) -> list[dict]:
    return [{"role": "system", "content": "You are opencode"}, {"role": "user", "content": text}]


async def test_default_answer_streams_reasoning_then_the_fixed_reply():
    async with serve_fake_llm() as llm:
        assert llm.base_url.startswith("http://127.0.0.1:") and llm.base_url.endswith("/v1")
        status, chunks = await _chat(llm.base_url, user("hello"))
    assert status == 200
    assert _joined(chunks, "reasoning_content") == DEFAULT_REASONING
    assert _joined(chunks, "content") == DEFAULT_REPLY
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert "usage" in chunks[-1]


async def test_echo_replies_exactly_the_text_and_parts_lists_are_understood():
    async with serve_fake_llm() as llm:
        parts = [{"type": "text", "text": "ECHO  two  spaces\nand a line "}]
        _, chunks = await _chat(llm.base_url, [{"role": "user", "content": parts}])
    assert _joined(chunks, "content") == " two  spaces\nand a line "


async def test_use_tool_calls_bash_then_reports_the_tool_output():
    async with serve_fake_llm() as llm:
        _, first = await _chat(llm.base_url, user("USE_TOOL please"))
        call = first[-3]["choices"][0]["delta"]["tool_calls"][0]
        assert call["function"]["name"] == "bash"
        assert json.loads(call["function"]["arguments"])["command"] == TOOL_COMMAND
        assert first[-2]["choices"][0]["finish_reason"] == "tool_calls"
        followup = [
            *user("USE_TOOL please"),
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "hello-from-tool\n"},
        ]
        _, second = await _chat(llm.base_url, followup)
    assert _joined(second, "content") == "tool said: hello-from-tool"


@pytest.mark.parametrize("trigger,status", [("FAIL400", 400), ("FAIL500", 500)])
async def test_fail_triggers_return_that_http_error(trigger, status):
    async with serve_fake_llm() as llm:
        got, body = await _chat(llm.base_url, user(trigger))
    assert got == status
    assert trigger in body["error"]["message"]


async def test_title_requests_get_a_short_title():
    async with serve_fake_llm() as llm:
        messages = [
            {"role": "system", "content": "You are a title generator. ..."},
            {"role": "user", "content": "FAIL400"},
        ]
        _, chunks = await _chat(llm.base_url, messages)
    assert _joined(chunks, "content") == TITLE


async def test_slow_spreads_tokens_over_the_requested_time():
    async with serve_fake_llm() as llm, httpx.AsyncClient() as client:
        body = {"model": "m", "stream": True, "messages": user("SLOW 1")}
        arrivals = []
        with trio.fail_after(10):
            async with client.stream("POST", f"{llm.base_url}/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if '"content": "tok' in line:
                        arrivals.append(trio.current_time())
    assert len(arrivals) >= 4
    assert arrivals[-1] - arrivals[0] >= 0.6  # spread out, not one burst


async def test_demo_thinks_streams_over_the_requested_time_then_calls_ls():
    async with serve_fake_llm() as llm, httpx.AsyncClient() as client:
        body = {"model": "m", "stream": True, "messages": user("DEMO 1: show me around")}
        arrivals, chunks = [], []
        with trio.fail_after(10):
            async with client.stream("POST", f"{llm.base_url}/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        chunks.append(json.loads(line[len("data: ") :]))
                        arrivals.append(trio.current_time())
    assert _joined(chunks, "reasoning_content") == DEMO_REASONING
    assert _joined(chunks, "content") == DEMO_INTRO
    call = chunks[-3]["choices"][0]["delta"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"])["command"] == DEMO_TOOL_COMMAND
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert arrivals[-1] - arrivals[0] >= 0.8  # spread over about 1 s, not one burst


@pytest.mark.parametrize(
    "script,size", [("BIG 1300000", 1_300_000), ("BIG", BIG_DEFAULT_BYTES), ("BIG 100", 100)]
)
async def test_big_answers_exactly_that_many_bytes_in_a_few_hundred_deltas(script, size):
    async with serve_fake_llm() as llm:
        _, chunks = await _chat(llm.base_url, user(script))
    text = _joined(chunks, "content")
    assert len(text.encode()) == size and text == big_text(size)
    assert text.startswith("big answer line 0000000 ")
    deltas = [c for c in chunks if c.get("choices") and c["choices"][0]["delta"].get("content")]
    assert len(deltas) <= 300 and (size < 300 or len(deltas) >= 100)


async def test_big_needs_a_word_of_its_own():
    async with serve_fake_llm() as llm:
        _, chunks = await _chat(llm.base_url, user("BIGGER plans"))
    assert _joined(chunks, "content") == DEFAULT_REPLY


async def test_requests_are_recorded_with_headers_and_can_be_awaited():
    async with serve_fake_llm() as llm:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_chat, llm.base_url, user("ECHO hi"))
            with trio.fail_after(10):
                first = await llm.wait_for_requests(1)
    assert first.path == "/v1/chat/completions"
    assert first.headers["x-session-id"] == "ses_1"
    assert first.body["messages"][-1]["content"] == "ECHO hi"
    assert llm.request_count.value == 1


def test_opencode_config_and_env_point_opencode_at_the_fake(tmp_path):
    config = opencode_config("http://127.0.0.1:1234/v1")
    assert config["provider"]["fake"]["options"]["baseURL"] == "http://127.0.0.1:1234/v1"
    assert config["model"] == "fake/fake-model" and config["enabled_providers"] == ["fake"]
    assert config["permission"]["webfetch"] == "deny" and config["autoupdate"] is False
    env = opencode_env(tmp_path, "http://127.0.0.1:1234/v1", base={"PATH": "/bin"})
    assert env["PATH"] == "/bin" and env["HOME"] == str(tmp_path)
    assert all(
        env[k].startswith(str(tmp_path))
        for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")
    )
    assert json.loads(env["OPENCODE_CONFIG_CONTENT"]) == config
    assert env["npm_config_registry"] == "http://127.0.0.1:9/"


async def test_cli_prints_one_json_line_and_stops_on_sigterm():
    async with open_oco("fake-llm", "--port", "0", stderr_apart=True) as fake_llm:
        line = await fake_llm.json_line()
        assert line["base_url"].startswith("http://127.0.0.1:")
        assert line["opencode_config"]["provider"]["fake"]["options"]["baseURL"] == line["base_url"]
        async with httpx.AsyncClient() as http:
            reply = await http.post(
                f"{line['base_url']}/chat/completions",
                json={"messages": user("ECHO ok"), "stream": True},
                timeout=10,
            )
        assert "ok" in reply.text
        fake_llm.process.terminate()
        assert await fake_llm.wait(timeout=10) == 0
