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
import trio
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


async def test_two_workers_in_one_project_never_reload_it_under_each_others_turn(tmp_path) -> None:
    async with two_workers(tmp_path, names=("alpha", "alpha")) as run:
        fake = run.fake
        project = run.configs[0].working_directory
        assert run.configs[1].working_directory == project
        first = [fake.send_message(chat, f"ECHO one {n}") for n, chat in enumerate(run.chats)]
        for n, message in enumerate(first):
            assert (await fake.wait_reply(message, timeout=90)).content == f"one {n}"

        config = {"provider": {"fake": {"models": {"other-model": OTHER_MODEL}}}}
        (project / "opencode.json").write_text(json.dumps(config))
        # The first worker's turn streams in the project when the second's turn begins there:
        # the second must not reload the project under it.
        slow = fake.send_message(run.chats[0], "SLOW 4")
        await fake.wait_for(lambda: bool(fake.chunks(slow)), timeout=90)
        meanwhile = fake.send_message(run.chats[1], "ECHO meanwhile")
        assert (await fake.wait_reply(meanwhile, timeout=90)).content == "meanwhile"
        assert (await fake.wait_reply(slow, timeout=90)).content == "".join(f"tok{i} " for i in range(16))
        # Alone in the project again (the first worker's turn has let the server go), a turn has
        # it reloaded and the new model answers.
        with trio.fail_after(60):
            while run.report(0).turns_in_flight:
                await trio.sleep(0.05)  # polling the worker's report under a deadline
        later = fake.send_message(run.chats[1], "ECHO later", model="fake/other-model")
        assert (await fake.wait_reply(later, timeout=90)).content == "later"
