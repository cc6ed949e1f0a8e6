"""One real `opencode serve` shared by two project directories, as the shared mode uses it.

These pin what the shared mode relies on in the pinned OpenCode (1.18.33): `POST /session`
honours `?directory=` (upstream reports say some versions ignore it; this test then fails and
the shared mode must be refused), each directory's project config applies, `/global/event`
carries every directory's events so one hub serves both, and a session of one directory is
never taken for another's through a view.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import trio

from oco.opencode import open_opencode_server, run_turn, view
from oco.testing import FAKE_MODEL, opencode_env, serve_fake_llm
from real_opencode import REAL_OPENCODE, opencode_bin

pytestmark = REAL_OPENCODE


async def turn_slow(backend, session: str, results: dict) -> None:
    results["slow beta"] = await run_turn(backend, session, "SLOW 3", FAKE_MODEL, timeout=60)


async def _cancel_after(arrived: trio.Event, scope: trio.CancelScope) -> None:
    await arrived.wait()
    scope.cancel()


def _project(root: Path, name: str) -> Path:
    project = root / name
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / f"only_{name}.txt").write_text(f"{name}\n")
    return project.resolve()


async def test_one_server_keeps_two_directories_apart(tmp_path) -> None:
    alpha, beta = _project(tmp_path, "alpha"), _project(tmp_path, "beta")
    (beta / "opencode.json").write_text(json.dumps({"username": "beta-user"}))
    neutral = tmp_path / "neutral"
    neutral.mkdir()
    async with serve_fake_llm() as llm:
        env = opencode_env(tmp_path / "home", llm.base_url)
        async with open_opencode_server(opencode_bin(), neutral, env=env, global_events=True) as server:
            # POST /session with ?directory= creates the session in that directory (raw call:
            # no check of ours in between, so this fails if OpenCode ignores the parameter).
            for directory in (alpha, beta):
                created = await server.client.http.post(
                    server.base_url + "/session",
                    params={"directory": str(directory)},
                    json={"title": "raw"},
                    auth=server.client.auth,
                )
                assert created.status_code == 200
                assert Path(created.json()["directory"]).resolve() == directory

            a, b = view(server, alpha), view(server, beta)
            assert (a.pid, b.pid) == (server.pid, server.pid)
            sa = await a.client.create_session("alpha chat")
            sb = await b.client.create_session("beta chat")
            assert (await a.client.get_session(sa))["directory"] == str(alpha)
            # OpenCode answers GET /session/{id} for any directory; the view does not.
            assert await b.client.get_session(sa) is None
            assert await a.client.get_session(sb) is None

            # Each directory's project config applies to it alone.
            assert (await b.client.request("GET", "/config")).get("username") == "beta-user"
            assert (await a.client.request("GET", "/config")).get("username") != "beta-user"

            # Two turns at once over the one /global/event hub: each gets its own events and
            # its tool runs in its own directory.
            results = {}

            async def turn(backend, session: str, name: str) -> None:
                results[name] = await run_turn(backend, session, "BASH ls; pwd", FAKE_MODEL, timeout=60)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(turn, a, sa, "alpha")
                nursery.start_soon(turn, b, sb, "beta")
            for name, other, directory in (("alpha", "beta", alpha), ("beta", "alpha", beta)):
                result = results[name]
                assert result.error is None, result.error
                assert f"only_{name}.txt" in result.content and f"only_{other}.txt" not in result.content
                assert str(directory) in result.content
            assert server.events.connections == 1  # one stream served both

            # Permission answers and aborts stay in their own session: both sessions ask before
            # bash; alpha's turn allows, beta's rejects, at the same time; then alpha's next turn
            # is cancelled (aborted) while beta's runs on to its end.
            asking = {}
            for directory in (alpha, beta):
                created = await server.client.http.post(
                    server.base_url + "/session",
                    params={"directory": str(directory)},
                    json={
                        "title": "asks",
                        "permission": [{"permission": "bash", "pattern": "*", "action": "ask"}],
                    },
                    auth=server.client.auth,
                )
                asking[directory.name] = created.json()["id"]
            policies = {"alpha": "allow", "beta": "reject"}

            async def asked(backend, name: str) -> None:
                results[name] = await run_turn(
                    backend,
                    asking[name],
                    "USE_TOOL",
                    FAKE_MODEL,
                    timeout=60,
                    permission_policy=policies[name],
                )

            async with trio.open_nursery() as nursery:
                nursery.start_soon(asked, a, "alpha")
                nursery.start_soon(asked, b, "beta")
            decided = {name: results[name].permissions for name in policies}
            assert [d.reply for d in decided["alpha"]] == ["once"]
            assert [d.reply for d in decided["beta"]] == ["reject"]
            assert not {d.id for d in decided["alpha"]} & {d.id for d in decided["beta"]}
            assert results["alpha"].content == "tool said: hello-from-tool"
            assert "hello-from-tool" not in results["beta"].content

            arrived = trio.Event()

            async with trio.open_nursery() as nursery:
                with trio.CancelScope() as alpha_turn:
                    nursery.start_soon(turn_slow, b, sb, results)
                    nursery.start_soon(_cancel_after, arrived, alpha_turn)
                    await run_turn(a, sa, "SLOW 30", FAKE_MODEL, timeout=60, on_text=lambda _: arrived.set())
            assert alpha_turn.cancelled_caught
            assert results["slow beta"].error is None
            assert results["slow beta"].content == "".join(f"tok{i} " for i in range(12))
            with trio.fail_after(10):  # alpha's was aborted, not left working
                while sa in await a.client.session_status():
                    await trio.sleep(0.1)  # polling OpenCode's state under a deadline

            # A crash is every view's: both see it lost, with the same readable message.
            server.process.kill()
            with trio.fail_after(10):
                await a.crashed.wait()
            assert a.lost and b.lost
            assert a.failure_message() == b.failure_message() == server.failure_message()
