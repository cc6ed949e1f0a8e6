"""The `opencode_server` setting: "shared" or "per-worker", one clear line for anything else."""

from __future__ import annotations

import pytest
from config_support import entry

from oco.config import ConfigError, Settings, load_workers_file
from oco.config._model import DEFAULT_OPENCODE_SERVER


@pytest.mark.parametrize("mode", ["shared", "per-worker"])
def test_either_mode_is_accepted(write_config, mode) -> None:
    loaded = load_workers_file(write_config({"workers": [entry()], "settings": {"opencode_server": mode}}))
    assert loaded.settings.opencode_server == mode


def test_left_out_it_is_the_one_default(write_config) -> None:
    loaded = load_workers_file(write_config({"workers": [entry()]}))
    assert loaded.settings.opencode_server == DEFAULT_OPENCODE_SERVER == Settings().opencode_server
    assert DEFAULT_OPENCODE_SERVER in ("shared", "per-worker")


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("Shared", "'Shared'"),
        ("per_worker", "'per_worker'"),
        (True, "a boolean"),
        (1, "a number"),
        (None, "null"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting_and_the_choices(write_config, value, got) -> None:
    path = write_config({"workers": [entry()], "settings": {"opencode_server": value}})
    with pytest.raises(ConfigError) as info:
        load_workers_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert f"settings.opencode_server: must be one of 'shared', 'per-worker' (got {got})" in message
    assert "\n" not in message and "Traceback" not in message


def test_a_misspelt_key_suggests_the_setting(write_config) -> None:
    path = write_config({"workers": [entry()], "settings": {"opencode_servers": "shared"}})
    with pytest.raises(ConfigError) as info:
        load_workers_file(path)
    assert "unknown key 'opencode_servers' (did you mean 'opencode_server'?)" in str(info.value)
