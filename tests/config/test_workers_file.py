"""workers.json: JSON5 parsing, strict structure, per-entry skips and file-level errors."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import attrs
import pytest
from config_support import SECRET, entry

from oco.config import ConfigError, Settings, load_workers_file
from oco.logs import SecretRedactor


def problems_of(loaded) -> list[str]:
    return [f"{p.json_path}: {p.message}" for p in loaded.problems]


def test_a_good_file_loads_every_worker(write_config, config_dir: Path) -> None:
    path = write_config({"workers": [entry("w1", name="Front end"), entry("w2", enabled=False)]})
    loaded = load_workers_file(path)
    assert loaded.problems == ()
    assert [w.name for w in loaded.workers] == ["Front end", "w2"]
    assert [w.enabled for w in loaded.workers] == [True, False]
    assert [w.name for w in loaded.enabled_workers] == ["Front end"]
    first = loaded.workers[0]
    assert (first.machine_id, first.worker_id, first.secret) == ("m1", "w1", SECRET)
    assert first.convex_url == "https://happy-otter-123.convex.cloud"
    assert first.working_directory == (config_dir / "project").resolve()
    assert loaded.settings == Settings()


def test_json5_comments_trailing_commas_and_comment_markers_inside_strings(
    write_config, config_dir: Path
) -> None:
    (config_dir / "a//b").mkdir(parents=True)
    (config_dir / "odd" / "x-*").mkdir(parents=True)
    text = f"""
    // a comment
    {{
      /* block */ workers: [
        {{ token: "machine_m1:worker_w1:secret_{SECRET}", // trailing comment
           working_directory: "a//b", convex_url: "https://x.convex.cloud/", name: "has // and /* inside", }},
        {{ token: 'machine_m1:worker_w2:secret_{SECRET}', working_directory: "odd/x-*",
           convex_url: "https://x.convex.cloud", }},
      ], /* after */
    }}
    """
    loaded = load_workers_file(write_config(text))
    assert loaded.problems == ()
    assert loaded.workers[0].name == "has // and /* inside"
    assert loaded.workers[0].working_directory == (config_dir / "a" / "b").resolve()
    assert loaded.workers[1].working_directory.name == "x-*"


def test_a_byte_order_mark_is_tolerated(write_config) -> None:
    text = json.dumps({"workers": [entry()]})
    assert len(load_workers_file(write_config(b"\xef\xbb\xbf" + text.encode())).workers) == 1


def test_unicode_names_and_directories(write_config, config_dir: Path) -> None:
    (config_dir / "проект").mkdir()
    loaded = load_workers_file(
        write_config({"workers": [entry(name="日本語 ✓", working_directory="проект")]})
    )
    assert loaded.workers[0].name == "日本語 ✓"
    assert loaded.workers[0].working_directory.name == "проект"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("  \n// only a comment\n", "not valid JSON5"),
        ("[]", 'top level must be an object with a "workers" array (got an array)'),
        ('"workers"', "(got a string)"),
        ("{workers: [", "not valid JSON5"),
        ("{}", "workers: is required"),
        ('{"workers": {}}', "workers: must be an array (got an object)"),
        ('{"workers": "abc"}', "workers: must be an array (got a string)"),
        ('{"workers": []}', '"workers" is empty'),
        ('{"workers": [], "wokers": []}', "unknown key 'wokers' (did you mean 'workers'?)"),
        ('{"workers": [], "settings": 3}', "settings: must be an object (got a number)"),
        ('{"workers": [1], "workers": [2]}', "not valid JSON5"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_file_level_problems_raise_config_error_naming_the_file(write_config, content, message) -> None:
    path = write_config(content)
    with pytest.raises(ConfigError) as info:
        load_workers_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"shutdown_timeout_s": "30"}, "settings.shutdown_timeout_s: must be a number (got a string)"),
        ({"shutdown_timeout_s": 0}, "settings.shutdown_timeout_s: must be a number of seconds > 0"),
        ({"heartbeat_interval_s": -1}, "must be a number of seconds > 0"),
        ({"heartbeat_interval_s": True}, "must be a number (got a boolean)"),
        ({"max_concurrent_sessions": 1.5}, "must be a whole number (got a number)"),
        ({"max_concurrent_sessions": 0}, "must be at least 1"),
        ({"permission_policy": "ask"}, "must be one of 'allow', 'reject' (got 'ask')"),
        ({"convex_transport": 1}, "must be one of 'subscribe', 'poll' (got a number)"),
        ({"log_level": "LOUD"}, "settings.log_level: must be one of DEBUG, INFO, WARNING, ERROR"),
        ({"opencode_bin": ""}, "settings.opencode_bin: is empty"),
        (
            {"heartbeat_interval": 5},
            "unknown key 'heartbeat_interval' (did you mean 'heartbeat_interval_s'?)",
        ),
    ],
)
def test_bad_settings_are_a_file_level_error(write_config, settings, message) -> None:
    with pytest.raises(ConfigError) as info:
        load_workers_file(write_config({"workers": [entry()], "settings": settings}))
    assert message in str(info.value)


def test_settings_override_defaults_and_nan_is_refused(write_config) -> None:
    loaded = load_workers_file(
        write_config(
            {
                "workers": [entry()],
                "settings": {
                    "shutdown_timeout_s": 5,
                    "log_level": "debug",
                    "opencode_bin": "/usr/bin/opencode",
                },
            }
        )
    )
    assert loaded.settings == attrs.evolve(
        Settings(), shutdown_timeout_s=5.0, log_level="DEBUG", opencode_bin="/usr/bin/opencode"
    )
    with pytest.raises(ConfigError, match="must be a finite number"):
        load_workers_file(write_config("{workers: [], settings: {turn_timeout_s: NaN}}"))


def test_bad_entries_are_skipped_with_json_paths_and_good_ones_load(write_config, config_dir: Path) -> None:
    path = write_config(
        {
            "workers": [
                entry("w1"),
                entry("w2", convex_url="http://example.com"),
                entry("w3", nmae="x"),
                5,
                {"token": 5},
                entry("w1"),
                entry("w4", working_directory="missing"),
                entry("w5", token="machine_m1:worker_w5"),
                entry("w6", name=" "),
                entry("w7", enabled="yes"),
            ]
        }
    )
    loaded = load_workers_file(path)
    assert [w.worker_id for w in loaded.workers] == ["w1"]
    assert problems_of(loaded) == [
        "workers[1].convex_url: must use https (got http://example.com)",
        "workers[2]: unknown key 'nmae' (did you mean 'name'?)",
        "workers[3]: must be an object (got a number)",
        "workers[4].token: must be a string (got a number)",
        "workers[4].working_directory: is required",
        "workers[4].convex_url: is required",
        "workers[5]: duplicate of workers[0] (same machine and worker id)",
        f"workers[6].working_directory: does not exist: {config_dir / 'missing'}",
        "workers[7].token: token must have 3 ':'-separated parts like "
        "machine_<id>:worker_<id>:secret_<secret> (got 2)",
        "workers[8].name: is empty; leave it out to use the worker id",
        "workers[9].enabled: must be true or false (got a string)",
    ]
    assert (
        str(loaded.problems[0]) == f"{path}: workers[1].convex_url: must use https (got http://example.com)"
    )
    assert all(SECRET not in str(p) for p in loaded.problems)


def test_numbers_where_strings_belong(write_config) -> None:
    loaded = load_workers_file(write_config({"workers": [entry(), entry("w2", convex_url=443, name=7)]}))
    assert problems_of(loaded) == [
        "workers[1].convex_url: must be a string (got a number)",
        "workers[1].name: must be a string (got a number)",
    ]


def test_a_token_pasted_into_another_field_is_not_echoed(write_config) -> None:
    token = f"machine_m1:worker_w2:secret_{SECRET}"
    loaded = load_workers_file(
        write_config({"workers": [entry(), entry("w2", convex_url=f"http://{token}")]})
    )
    assert len(loaded.problems) == 1
    assert SECRET not in str(loaded.problems[0])


def test_no_valid_entry_is_a_config_error_that_still_lists_the_problems(write_config) -> None:
    path = write_config({"workers": [entry(convex_url="http://example.com")]})
    with pytest.raises(ConfigError) as info:
        load_workers_file(path)
    assert "no valid worker" in str(info.value)
    assert [p.json_path for p in info.value.problems] == ["workers[0].convex_url"]


def test_relative_directory_is_relative_to_the_file_not_the_cwd(
    write_config, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere" / "project").mkdir(parents=True)  # a decoy under the cwd
    monkeypatch.chdir(tmp_path / "elsewhere")
    loaded = load_workers_file(write_config({"workers": [entry(working_directory="project")]}))
    assert loaded.workers[0].working_directory == (config_dir / "project").resolve()
    assert loaded.path.is_absolute()


def test_a_symlinked_working_directory_is_accepted(write_config, config_dir: Path) -> None:
    (config_dir / "link").symlink_to(config_dir / "project")
    loaded = load_workers_file(write_config({"workers": [entry(working_directory="link")]}))
    assert loaded.workers[0].working_directory == (config_dir / "project").resolve()


def test_unreadable_paths_are_config_errors(config_dir: Path) -> None:
    (config_dir / "plain").write_text("x")
    with pytest.raises(ConfigError, match="cannot read"):
        load_workers_file(config_dir / "plain" / "workers.json")
    with pytest.raises(ConfigError, match="is a directory"):
        load_workers_file(config_dir / "project")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_a_config_error(write_config) -> None:
    path = write_config({"workers": [entry()]})
    path.chmod(0)
    with pytest.raises(ConfigError, match="cannot read: Permission denied"):
        load_workers_file(path)


def test_missing_file_gets_the_private_template_which_then_fails_validation(tmp_path: Path) -> None:
    path = tmp_path / "new" / "opencode-orchestrator" / "workers.json"
    with pytest.raises(ConfigError) as info:
        load_workers_file(path)
    assert str(info.value).startswith(f"{path}: not found; wrote a template there")
    assert "token" in str(info.value) and "working_directory" in str(info.value)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(ConfigError) as second:
        load_workers_file(path)
    messages = [p.message for p in second.value.problems]
    assert any("replace the example token" in m for m in messages)
    assert any("replace the example URL" in m for m in messages)


def test_loaded_secrets_are_redacted_from_log_records(write_config) -> None:
    secret = "only-in-this-test-Q7"
    load_workers_file(write_config({"workers": [entry(token=f"machine_m:worker_w:secret_{secret}")]}))
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "token: %s", (secret,), None)
    SecretRedactor().filter(record)
    assert record.getMessage() == "token: ***"
