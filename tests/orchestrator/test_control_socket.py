"""The control socket's bounds, in process on a MockClock over a real Unix socket: a client that
sends nothing times out with an error reply, too many at once get `busy`, a long state path still
binds, and the protocol's parsing refuses what it must (pure)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import trio
import trio.testing
from stubs import StubFactory, configs
from test_control import orchestrator, run_with

from oco.orchestrator import _control_protocol as protocol
from oco.orchestrator._control_socket import unix_address
from oco.orchestrator._instance import SOCKET_FILE


async def _connect(path: Path) -> trio.SocketStream:
    with unix_address(path) as address:
        return await trio.open_unix_socket(address)


async def _reply(stream: trio.SocketStream) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return json.loads(data)


async def test_a_silent_client_gets_a_timeout_reply_after_the_read_timeout(autojump_clock, tmp_path) -> None:
    orch = orchestrator(StubFactory(), configs(1), status_dir=tmp_path)

    async def scenario() -> None:
        stream = await _connect(tmp_path / SOCKET_FILE)
        began = trio.current_time()
        reply = await _reply(stream)  # sends nothing
        assert reply["error"]["code"] == "timeout"
        assert trio.current_time() - began == pytest.approx(protocol.READ_TIMEOUT_S)
        await stream.aclose()
        ping = await _connect(tmp_path / SOCKET_FILE)  # still serving
        await ping.send_all(protocol.request("ping"))
        assert (await _reply(ping))["ok"] is True

    assert await run_with(orch, scenario) == 0


async def test_past_the_connection_limit_a_client_is_told_busy_and_later_ones_are_served(
    autojump_clock, tmp_path
) -> None:
    orch = orchestrator(StubFactory(), configs(1), status_dir=tmp_path)

    async def scenario() -> None:
        idle = [await _connect(tmp_path / SOCKET_FILE) for _ in range(protocol.MAX_CONNECTIONS)]
        await trio.testing.wait_all_tasks_blocked()  # every idle one is accepted, waiting for its line
        extra = await _connect(tmp_path / SOCKET_FILE)
        assert (await _reply(extra))["error"]["code"] == "busy"
        for stream in idle:
            await stream.aclose()
        await trio.testing.wait_all_tasks_blocked()
        served = await _connect(tmp_path / SOCKET_FILE)
        await served.send_all(protocol.request("workers"))
        reply = await _reply(served)
        assert [w["name"] for w in reply["result"]["workers"]] == ["w1"]

    assert await run_with(orch, scenario) == 0


async def test_the_socket_binds_under_a_state_path_longer_than_sun_path_allows(
    autojump_clock, tmp_path
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(str(deep / SOCKET_FILE)) > 108
    orch = orchestrator(StubFactory(), configs(1), status_dir=deep)

    async def scenario() -> None:
        path = deep / SOCKET_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stream = await _connect(path)
        await stream.send_all(protocol.request("stop", "w1"))
        reply = await _reply(stream)
        assert reply["ok"] is True and reply["result"]["worker"]["state"] == "stopped"

    assert await run_with(orch, scenario) == 0
    assert not (deep / SOCKET_FILE).exists()  # removed when the orchestrator ends


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"", "bad_request"),
        (b"{", "bad_request"),
        (b"\xc3\x28", "bad_request"),
        (b'"ping"', "bad_request"),
        (b'{"cmd": null}', "bad_request"),
        (b'{"cmd": "stop", "worker": 3}', "bad_request"),
        (b'{"cmd": "stop", "worker": ""}', "bad_request"),
        (b'{"cmd": "ping", "v": 2}', "bad_request"),
        (b"{" + b" " * protocol.MAX_REQUEST_BYTES + b"}", "too_large"),
    ],
)
def test_parse_request_refuses_with_a_code(line: bytes, code: str) -> None:
    with pytest.raises(protocol.BadRequest) as caught:
        protocol.parse_request(line)
    assert caught.value.code == code and "\n" not in str(caught.value)


def test_parse_request_accepts_every_command_and_ignores_unknown_keys() -> None:
    for cmd in protocol.COMMANDS:
        worker = "alpha" if cmd in protocol.WORKER_COMMANDS else None
        line = protocol.request(cmd, worker).rstrip(b"\n")
        data = json.loads(line)
        data["future_field"] = 1
        assert protocol.parse_request(json.dumps(data).encode())["cmd"] == cmd


def test_replies_are_one_line_and_parse_back() -> None:
    assert protocol.ok({"a": "x\ny"}).count(b"\n") == 1
    reply = protocol.parse_reply(protocol.error("unknown_worker", "no worker named 'x'"))
    assert reply == {
        "v": 1,
        "ok": False,
        "error": {"code": "unknown_worker", "message": "no worker named 'x'"},
    }
    with pytest.raises(ValueError):
        protocol.parse_reply(b'{"ok": false}')
