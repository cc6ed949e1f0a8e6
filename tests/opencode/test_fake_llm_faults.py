"""The fake LLM's fault switch: every n-th request answers 500, and answers can be delayed."""

from __future__ import annotations

import httpx
import trio

from oco.testing import FakeLLM

BODY = {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "ECHO same text"}]}


async def _post(llm: FakeLLM) -> httpx.Response:
    transport = httpx.ASGITransport(app=llm)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        return await client.post("/v1/chat/completions", json=BODY)


async def test_every_third_request_fails_with_500_whatever_its_script():
    llm = FakeLLM()
    llm.faults.error_every = 3
    statuses = [(await _post(llm)).status_code for _ in range(6)]
    assert statuses == [200, 200, 500, 200, 200, 500]
    assert llm.faults.injected_errors == 2
    llm.faults.error_every = 0
    assert (await _post(llm)).status_code == 200


async def test_latency_delays_each_answer(autojump_clock):
    llm = FakeLLM()
    llm.faults.latency = 7.0
    started = trio.current_time()
    response = await _post(llm)
    assert response.status_code == 200 and "data: [DONE]" in response.text
    assert trio.current_time() - started >= 7.0


async def test_faults_are_off_by_default():
    llm = FakeLLM()
    assert [(await _post(llm)).status_code for _ in range(4)] == [200] * 4
    assert llm.faults.injected_errors == 0
