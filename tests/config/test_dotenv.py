"""Dev mode's `.env`: keys, precedence, non-interactive errors and the first-run set-up."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from config_support import SECRET, TOKEN

from oco.config import DEV_SETTINGS, ConfigError, Settings, load_dotenv_config

URL = "https://happy-otter-123.convex.cloud"


def answers(*values: str) -> Callable[[str], str]:
    """A prompt function that replies with `values` in order and records the prompts."""
    queue = list(values)

    def ask(prompt: str) -> str:
        ask.prompts.append(prompt)
        if not queue:
            raise EOFError
        return queue.pop(0)

    ask.prompts = []
    return ask


def test_reads_the_two_keys_from_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"WORKER_TOKEN={TOKEN}\nCONVEX_URL={URL}/\n")
    worker = load_dotenv_config(tmp_path, environ={}, interactive=False)
    assert (worker.machine_id, worker.worker_id, worker.secret) == ("m1", "w1", SECRET)
    assert worker.convex_url == URL
    assert worker.working_directory == tmp_path.resolve()
    assert worker.name == "w1"


def test_real_environment_variables_win_and_env_file_and_dir_can_be_chosen(tmp_path: Path) -> None:
    (tmp_path / "dev.env").write_text(f"WORKER_TOKEN=machine_x:worker_x:secret_x\nCONVEX_URL={URL}\n")
    (tmp_path / "proj").mkdir()
    worker = load_dotenv_config(
        tmp_path,
        env_file=Path("dev.env"),
        environ={"WORKER_TOKEN": TOKEN},
        working_directory=tmp_path / "proj",
        interactive=False,
    )
    assert worker.worker_id == "w1"
    assert worker.working_directory == (tmp_path / "proj").resolve()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", ".env: WORKER_TOKEN: is missing"),
        (f"WORKER_TOKEN={TOKEN}\n", ".env: CONVEX_URL: is missing"),
        (f"WORKER_TOKEN={TOKEN}\nCONVEX_URL=http://example.com\n", ".env: CONVEX_URL: must use https"),
        ("WORKER_TOKEN=machine_m1:worker_w1\n", ".env: WORKER_TOKEN: token must have 3"),
    ],
)
def test_without_a_terminal_a_bad_key_is_a_config_error_naming_key_and_file(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / ".env").write_text(content)
    with pytest.raises(ConfigError) as info:
        load_dotenv_config(tmp_path, environ={}, interactive=False)
    assert message in str(info.value)
    assert str(tmp_path / ".env") in str(info.value)
    assert info.value.exit_code == 2


def test_a_bad_environment_variable_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable CONVEX_URL: must use https"):
        load_dotenv_config(
            tmp_path, environ={"WORKER_TOKEN": TOKEN, "CONVEX_URL": "http://x.io"}, interactive=False
        )


def test_interactive_setup_reprompts_until_valid_and_keeps_other_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".env"
    env.write_text("# my settings\nOTHER=keep me\nCONVEX_URL=http://example.com\n")
    env.chmod(0o644)
    ask_secret = answers("not-a-token", f"machine_m1:worker_w1:secret_{SECRET}:extra", TOKEN)
    ask = answers("http://still-bad.example", URL)
    worker = load_dotenv_config(tmp_path, environ={}, interactive=True, ask=ask, ask_secret=ask_secret)
    assert worker.secret == SECRET and worker.convex_url == URL
    assert len(ask_secret.prompts) == 3 and len(ask.prompts) == 2
    text = env.read_text()
    assert "# my settings\nOTHER=keep me\n" in text
    assert f"WORKER_TOKEN={TOKEN}" in text and f"CONVEX_URL={URL}" in text
    assert "http://example.com" not in text
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    # the file written is what a non-interactive run now loads
    assert load_dotenv_config(tmp_path, environ={}, interactive=False).key == worker.key


def test_interactive_setup_creates_a_private_file_and_eof_cancels(tmp_path: Path) -> None:
    worker = load_dotenv_config(
        tmp_path, environ={}, interactive=True, ask=answers(URL), ask_secret=answers(TOKEN)
    )
    assert worker.worker_id == "w1"
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="set-up cancelled"):
        load_dotenv_config(
            tmp_path / "proj_none",
            env_file=tmp_path / "other.env",
            environ={},
            interactive=True,
            ask=answers(),
            ask_secret=answers(),
        )


def test_missing_working_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="working directory does not exist"):
        load_dotenv_config(
            tmp_path,
            environ={"WORKER_TOKEN": TOKEN, "CONVEX_URL": URL},
            working_directory=tmp_path / "gone",
            interactive=False,
        )


def test_dev_settings_stop_sooner() -> None:
    assert DEV_SETTINGS.shutdown_timeout_s == 10
    assert Settings(shutdown_timeout_s=10) == DEV_SETTINGS
