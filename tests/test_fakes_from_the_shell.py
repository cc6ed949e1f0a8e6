"""The README's shell session against the fakes runs as written (bash, curl, jq, a real
opencode), and `fake-llm --help` lists exactly the scripts the fake LLM knows."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oco.testing import opencode_env, run_oco
from oco.testing._fake_llm import PROMPTS, script_for
from real_opencode import OPENCODE, needs_opencode

README = Path(__file__).parents[1] / "README.md"


def readme_session() -> str:
    text = README.read_text()
    block = text.split("<!-- fakes-session:begin -->", 1)[1].split("<!-- fakes-session:end -->", 1)[0]
    return block.split("```sh\n", 1)[1].rsplit("```", 1)[0]


def keywords_of_script_for() -> set[str]:
    """The message prefixes `script_for` tests, read from its source."""
    source = inspect.getsource(script_for)
    found = set(re.findall(r'text\.startswith\("([A-Z0-9_]+)', source))
    found |= set(re.findall(r're\.match\(r"([A-Z0-9_]+)', source))
    return found


def test_fake_llm_help_lists_every_script() -> None:
    done = run_oco("fake-llm", "--help")
    assert done.returncode == 0
    listed = {prompt.split()[0] for prompt, _ in PROMPTS if not prompt.startswith("(")}
    assert listed == keywords_of_script_for()  # no script without its help line, and back
    for prompt, effect in PROMPTS:
        assert f"{prompt}  " in done.stdout and effect in done.stdout


@pytest.mark.parametrize("prompt", [p for p, _ in PROMPTS if not p.startswith("(")])
def test_each_listed_prompt_is_not_answered_by_the_default_script(prompt: str) -> None:
    message = prompt.replace("<text>", "x").replace("<s>", "1").replace("<command>", "ls")
    message = message.replace("<bytes>", "10").replace("[", "").replace("]", "")
    default = script_for({"messages": [{"role": "user", "content": "hello"}]}, iter(range(9)))
    assert script_for({"messages": [{"role": "user", "content": message}]}, iter(range(9))) != default


@pytest.mark.opencode
@pytest.mark.slow
@needs_opencode
@pytest.mark.skipif(not (shutil.which("jq") and shutil.which("curl")), reason="needs jq and curl")
def test_the_readme_shell_session_approves_a_worker_and_gets_its_answer(tmp_path: Path) -> None:
    shim = tmp_path / "bin" / "trio-oco"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m oco "$@"\n')
    shim.chmod(0o755)
    env = opencode_env(tmp_path / "home", "http://127.0.0.1:9/v1")
    env.pop("OPENCODE_CONFIG_CONTENT")  # the session sets it from fake-llm's line
    for name in ("OCO_CONFIG", "WORKER_TOKEN", "CONVEX_URL"):
        env.pop(name, None)
    env.update(PATH=f"{shim.parent}:{env['PATH']}", OCO_OPENCODE_BIN=OPENCODE)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_session()],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    log = (work / "run.log").read_text() if (work / "run.log").exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + log
    assert done.stdout.strip().splitlines()[-1] == "hello from the shell", done.stdout + log
    assert "Traceback" not in done.stderr + log
