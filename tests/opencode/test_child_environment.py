"""OpenCode's environment is built on purpose: the agent's tools never see a worker token.

OpenCode's bash tool inherits OpenCode's whole environment, so one `env` in a turn prints it
into the reply. The real test runs exactly that with a token exported the way `trio-oco dev`
users do.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess

import pytest

from oco.opencode import open_opencode_server, opencode_environment, run_turn
from oco.testing import FAKE_MODEL, opencode_env, serve_fake_llm
from real_opencode import opencode_bin


def _token() -> tuple[str, str]:
    secret = secrets.token_urlsafe(24).replace("-", "x")
    return f"machine_m1:worker_w1:secret_{secret}", secret


def test_trio_oco_variables_and_anything_holding_a_secret_are_left_out():
    token, secret = _token()
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "XDG_CONFIG_HOME": "/home/u/.config",
        "ANTHROPIC_API_KEY": "sk-ant-user-key",
        "GITHUB_TOKEN": "ghp_users_own_token",  # the user's tools need their own tokens
        "WORKER_TOKEN": "anything",
        "MY_TOKEN": f"  {token}  ",
        "COPY": f"export T={token}",
        "JUST_THE_SECRET": f"s={secret}",
        "OCO_CONFIG": "/etc/oco/workers.jsonc",
        "OCO_OPENCODE_BIN": "/usr/bin/opencode",
        "OPENCODE_SERVER_PASSWORD": "from the user's shell",
        "OPENCODE_SERVER_USERNAME": "someone",
        "SHORT": "abc",
    }
    kept = opencode_environment(base, secrets=[token, secret, "abc"])
    assert kept == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "XDG_CONFIG_HOME": "/home/u/.config",
        "ANTHROPIC_API_KEY": "sk-ant-user-key",
        "GITHUB_TOKEN": "ghp_users_own_token",
        "SHORT": "abc",  # a secret too short to search for does not strip unrelated values
    }


@pytest.mark.opencode
async def test_env_in_the_agents_bash_tool_shows_no_worker_token(tmp_path):
    token, secret = _token()
    project = tmp_path / "project"
    project.mkdir()
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(project)], check=True)
    async with serve_fake_llm() as llm:
        env = opencode_env(tmp_path / "home", llm.base_url)
        env |= {
            "WORKER_TOKEN": token,  # `export WORKER_TOKEN=...; trio-oco dev`
            "DEPLOY_NOTE": f"the secret is {secret}",
            "OCO_CONFIG": str(tmp_path / "workers.jsonc"),
            "USER_VISIBLE_MARKER": "kept-for-the-user",
        }
        async with open_opencode_server(opencode_bin(), project, env=env, secrets=[token, secret]) as server:
            session = await server.client.create_session("env")
            result = await run_turn(server, session, "BASH env", FAKE_MODEL, timeout=60)
    tools = [p for p in result.other_parts if p["type"] == "tool"]
    output = tools[0]["state"]["output"]
    assert result.error is None and tools[0]["state"]["status"] == "completed"
    assert "USER_VISIBLE_MARKER=kept-for-the-user" in output and "PATH=" in output  # `env` did run
    for shown in (output, result.content):
        assert secret not in shown
        assert "WORKER_TOKEN" not in shown and "OCO_CONFIG" not in shown
