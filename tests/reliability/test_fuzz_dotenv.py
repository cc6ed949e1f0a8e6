"""Whatever `.env` holds, dev mode's loader (non-interactive) gives a config or a ConfigError."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from fuzzing import FUZZ
from oco.config import ConfigError, WorkerConfig, load_dotenv_config

TOKEN = "machine_m1:worker_w1:secret_s3cr3t"
NAMES = ["WORKER_TOKEN", "CONVEX_URL", "OTHER", "export WORKER_TOKEN", ""]
KEYS = st.sampled_from(NAMES) | st.text(max_size=6)
VALUES = st.sampled_from(
    [
        TOKEN,
        TOKEN + ":x",
        "machine_:worker_:secret_",
        "http://127.0.0.1:1",
        "https://a.convex.cloud/",
        "http://example.com",
        "'quoted'",
        '"unterminated',
        "${HOME}",
        "\\n",
        "#",
        " ",
    ]
) | st.text(max_size=10)
SEPARATORS = st.sampled_from(["=", " = ", ":", ""])
LINES = st.builds(lambda k, sep, v: f"{k}{sep}{v}", KEYS, SEPARATORS, VALUES)
TEXTS = st.lists(LINES | st.text(max_size=12), max_size=5).map("\n".join) | st.binary(max_size=20).map(
    lambda b: b.decode("latin-1")
)

_DIR = Path(tempfile.mkdtemp(prefix="oco-dotenv-"))


@FUZZ
@given(text=TEXTS, encoding=st.sampled_from(["utf-8", "latin-1"]))
# Found by this test: the token pasted as the URL was echoed, secret and all, in the error.
@example(text=f"WORKER_TOKEN={TOKEN}\nCONVEX_URL={TOKEN}", encoding="utf-8")
def test_any_dot_env_gives_a_config_or_a_one_line_config_error(text: str, encoding: str) -> None:
    (_DIR / ".env").write_bytes(text.encode(encoding, errors="replace"))
    try:
        config = load_dotenv_config(_DIR, environ={}, interactive=False)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message.strip()
        assert "s3cr3t" not in message
    else:
        assert isinstance(config, WorkerConfig)
        assert config.working_directory == _DIR
        assert "s3cr3t" not in repr(config)
