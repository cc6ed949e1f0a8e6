"""`trio-oco demo`: its pure output pieces, its one-line errors, and the whole run end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from oco.demo import DEMO_PROMPT, PROJECTS, MessageTiming, format_summary, tool_lines
from oco.demo._setup import read_opencode_config, workers_document
from oco.demo._view import is_error_reply, one_line
from oco.domain import ChatMessage
from oco.errors import UsageError
from oco.testing import processes_in, run_oco
from oco.testing._fake_llm import DEMO_INTRO
from real_opencode import OPENCODE, needs_opencode


def _message(content: str) -> ChatMessage:
    return ChatMessage(
        id="m", session_id="s", role="assistant", content=content, timestamp=0.0, completed=True
    )


def test_tool_lines_show_the_command_status_and_output_of_each_tool_part():
    parts = [
        {"type": "step-start"},
        {
            "type": "tool",
            "tool": "bash",
            "state": {"status": "completed", "input": {"command": "ls"}, "output": "a\nb\n"},
        },
        {
            "type": "tool",
            "tool": "read",
            "state": {"status": "error", "input": {"path": "x"}, "error": "no such file"},
        },
    ]
    assert tool_lines(json.dumps(parts)) == [
        "bash(ls) completed -> a⏎b",
        'read({"path": "x"}) error -> no such file',
    ]
    assert tool_lines(None) == []
    assert tool_lines("{not json") == ["(otherParts is not JSON)"]


def test_summary_lists_each_message_and_the_convex_calls_by_count():
    timings = [
        MessageTiming("alpha", "DEMO: a long prompt " * 5, 0.4, 2.5, 7),
        MessageTiming("beta", "hi", None, None, 0),
    ]
    text = format_summary(timings, {"chat:writeChunk": 9, "workers:register": 2}, http_requests=11)
    lines = text.splitlines()
    alpha = next(line for line in lines if line.startswith("alpha"))
    assert re.search(r"0\.40\s+2\.50\s+7$", alpha)
    assert re.search(r"^beta\s+hi\s+-\s+-\s+0$", next(line for line in lines if line.startswith("beta")))
    assert "11 calls in 11 HTTP requests" in text
    assert lines.index(next(line for line in lines if line.startswith("chat:writeChunk"))) < lines.index(
        next(line for line in lines if line.startswith("workers:register"))
    )


def test_one_line_and_error_replies():
    assert one_line("a\nb", 10) == "a⏎b"
    assert one_line("x" * 30, 10) == "x" * 9 + "…"
    assert is_error_reply(_message("partial text\n\nError: OpenCode failed to start"))
    assert not is_error_reply(_message("Error handling is discussed below.\n\nAll good."))


def test_workers_document_holds_the_entries_and_demo_settings(tmp_path):
    document = json.loads(
        workers_document("http://127.0.0.1:1", [("alpha", "machine_a:worker_b:secret_c", tmp_path)])
    )
    assert document["workers"] == [
        {
            "name": "alpha",
            "token": "machine_a:worker_b:secret_c",
            "working_directory": str(tmp_path),
            "convex_url": "http://127.0.0.1:1",
        }
    ]
    assert document["settings"]["approval_poll_interval_s"] <= 1


def test_opencode_config_needs_a_model_and_accepts_jsonc(tmp_path):
    good = tmp_path / "good.jsonc"
    good.write_text('{\n  // my provider\n  "model": "anthropic/claude-x",\n}\n')
    assert read_opencode_config(good).model == "anthropic/claude-x"
    assert json.loads(read_opencode_config(good).config_content) == {"model": "anthropic/claude-x"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"provider": {}}')
    with pytest.raises(UsageError, match='set "model"'):
        read_opencode_config(bad)
    with pytest.raises(UsageError, match="cannot read"):
        read_opencode_config(tmp_path / "missing.json")


def test_cli_reports_a_bad_opencode_config_in_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    result = run_oco("demo", "--opencode-config", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["demo", "fake-convex", "fake-llm"])
def test_without_the_testing_extra_the_fake_commands_say_what_to_install_in_one_line(command):
    # hypercorn hidden as if `pip install trio-oco` had been run without `[testing]`.
    hide = (
        "import sys; sys.modules['hypercorn'] = None; from oco.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run([sys.executable, "-c", hide, command], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"trio-oco: trio-oco {command} needs hypercorn (the fakes' web server), which is not installed: "
        "pip install 'trio-oco[testing]'\n"
    )


@pytest.mark.opencode
@pytest.mark.slow
@needs_opencode
def test_demo_runs_two_workers_end_to_end_and_leaves_nothing_running(tmp_path):
    env = {**os.environ, "OCO_OPENCODE_BIN": OPENCODE, "TMPDIR": str(tmp_path)}
    started = time.monotonic()
    result = run_oco("demo", env=env, timeout=90)
    elapsed = time.monotonic() - started
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in out + result.stderr
    assert result.stderr == ""  # WARNING and above only, and nothing went wrong
    for name, files in PROJECTS.items():
        assert f"user -> {name}: {one_line(DEMO_PROMPT, 100)}" in out
        assert re.search(rf"^\s*[\d.]+s  {name}\s+chunk 1: ", out, re.M), f"{name} streamed no chunks"
        listing = "⏎".join(sorted(files))
        assert f"{name:<8} tool call: bash(ls) completed -> {listing}" in out
        assert f"{name:<8} state: ready" in out and f"{name:<8} state: stopped" in out
        assert f"web app  {name} is offline" in out
    assert out.count("answer complete after") == 2
    assert out.count(f"| {DEMO_INTRO.strip()}") == 2  # both answers, as the web app renders them
    assert "Summary" in out and "first chunk s" in out and "chat:writeChunk" in out
    assert "problem:" not in out
    assert re.search(r"trio-oco-demo-\w+", out)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == [], "the demo (or its OpenCode) left files in TMPDIR"
    assert processes_in(tmp_path) == [], "a process was left behind in the demo's directories"
    print(f"\ndemo took {elapsed:.1f} s")
