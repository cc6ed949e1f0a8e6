"""The CLI imports only the chosen command: `trio-oco status` and the control commands load
neither trio, httpx, cattrs, the JSON5/dotenv readers nor importlib.metadata, while `--help`
still lists every command with its help (read from each module's source)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from oco.commands import COMMANDS
from oco.testing import run_oco

HEAVY = ("trio", "httpx", "cattrs", "json5", "dotenv", "importlib.metadata", "oco.config._workers_file")

PROBE = """
import sys
from oco.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("LOADED", ",".join(heavy), "CODE", code, file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [["status"], ["status", "--json"], ["restart", "alpha"], ["stop", "all"], ["reload"]]
)
def test_status_and_control_commands_load_no_heavy_module(tmp_path: Path, args: list[str]) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("LOADED  CODE "), done.stderr  # nothing heavy between the two words
    assert line.endswith(" 3" if args[0] == "status" else " 7")


def test_help_lists_every_command_with_its_help() -> None:
    done = run_oco("--help")
    assert done.returncode == 0
    for name, module in COMMANDS:
        listed = re.search(rf"^    {re.escape(name)} +(\S+)", done.stdout, re.MULTILINE)
        assert listed is not None and listed.group(1) == importlib.import_module(module).HELP.split()[0], name


def test_help_read_from_each_modules_source_is_its_help() -> None:
    from oco.cli import _help_of

    for _, module in COMMANDS:
        assert _help_of(module) == importlib.import_module(module).HELP, module


def test_a_commands_own_help_shows_its_options() -> None:
    done = run_oco("restart", "--help")
    assert done.returncode == 0 and "NAME" in done.stdout and "--config PATH" in done.stdout
    assert run_oco("--version").stdout.startswith("trio-oco ")
