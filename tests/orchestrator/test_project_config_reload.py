"""A project's OpenCode configuration edited while its OpenCode runs applies from the next turn.

OpenCode reads a directory's configuration (the project's `opencode.json`, the global config,
the stored provider logins) once, when it first serves that directory, and keeps it for the
server's life: a model added to the project stayed unknown to a running server, shared or not.
The worker notices the change before a turn and has OpenCode reload that one directory
(`POST /instance/dispose?directory=`); the sessions are kept and other directories are untouched.
"""

from __future__ import annotations

import json

import pytest
from shared_workers import two_workers

from real_opencode import REAL_OPENCODE

pytestmark = REAL_OPENCODE

OTHER_MODEL = {"name": "Other", "tool_call": True, "limit": {"context": 32000, "output": 4096}}


@pytest.mark.parametrize("mode", ["shared", "per-worker"])
async def test_a_model_added_to_the_project_is_usable_on_the_next_turn(tmp_path, mode) -> None:
    async with two_workers(tmp_path, opencode_server=mode) as run:
        fake = run.fake
        alpha = run.configs[0].working_directory
        first = fake.send_message(run.chats[0], "ECHO one")
        assert (await fake.wait_reply(first, timeout=90)).content == "one"
        (pid,) = {run.report(0).opencode_pid}

        # The project gains a model of the fake provider after OpenCode loaded it.
        config = {"provider": {"fake": {"models": {"other-model": OTHER_MODEL}}}}
        (alpha / "opencode.json").write_text(json.dumps(config))
        second = fake.send_message(run.chats[0], "ECHO two", model="fake/other-model")
        assert (await fake.wait_reply(second, timeout=90)).content == "two"
        assert run.report(0).opencode_pid == pid  # the same server: only the directory reloaded
        later = fake.send_message(run.chats[0], "ECHO three", model="fake/other-model")
        assert (await fake.wait_reply(later, timeout=90)).content == "three"

        # The other project never had the model, and its turns go on.
        beta = fake.send_message(run.chats[1], "ECHO four")
        assert (await fake.wait_reply(beta, timeout=90)).content == "four"
