"""Whatever a workers file holds, loading ends in a config or a ConfigError, never a crash."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import json5
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fuzzing import FUZZ_EXAMPLES
from oco.config import ConfigError, LoadedConfig, load_workers_file

KEYS = st.sampled_from(
    [
        "workers",
        "settings",
        "token",
        "working_directory",
        "convex_url",
        "name",
        "enabled",
        "shutdown_timeout_s",
        "max_concurrent_sessions",
        "permission_policy",
        "log_level",
        "opencode_bin",
        "wrokers",
        "",
    ]
) | st.text(max_size=8)
STRINGS = st.sampled_from(
    [
        "machine_m:worker_w:secret_s",
        "machine_m:worker_w:secret_s:x",
        ".",
        "~",
        "~nobody_x",
        "/",
        "http://127.0.0.1:1",
        "https://a.convex.cloud/",
        "http://example.com",
        "reject",
        "allow",
        "DEBUG",
        "a//b",
        "/* x */",
        "\ufeff",
        "\x00",
    ]
) | st.text(max_size=8)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | STRINGS
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=6,
)
ENTRY = st.fixed_dictionaries(
    {"token": STRINGS, "working_directory": STRINGS, "convex_url": STRINGS},
    optional={"name": SCALARS, "enabled": SCALARS, "extra": SCALARS},
)
DOCUMENTS = VALUES | st.fixed_dictionaries(
    {"workers": st.lists(ENTRY | VALUES, max_size=4)},
    optional={"settings": st.dictionaries(KEYS, SCALARS, max_size=4) | VALUES},
)


def _json5(doc: object) -> str:
    return "// c\n" + json5.dumps(doc, trailing_commas=True, indent=1) + "\n/* end */"


# Plain JSON (the C parser's fast path), JSON5 with comments and trailing commas, truncated
# and arbitrary text. json5 parses at about 100 kB/s, so JSON5 is a minority of the examples.
TEXTS = st.one_of(
    DOCUMENTS.map(lambda d: json.dumps(d, allow_nan=True)),
    DOCUMENTS.map(_json5),
    DOCUMENTS.map(lambda d: json.dumps(d)[:-1]),
    st.text(max_size=40),
)


@settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@example(
    text='{"workers": [{"token": "machine_m:worker_w:secret_s", "working_directory": "~\\u001b", "convex_url": "https://x.convex.cloud"}]}'
)  # found at 10 000
@given(text=TEXTS)
def test_any_document_loads_or_raises_config_error(text: str) -> None:
    _PATH.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        loaded = load_workers_file(_PATH)
    except ConfigError as exc:
        assert str(exc).startswith(f"{_PATH}: ")
        assert "\n" not in str(exc)
        assert all(str(p).isprintable() for p in exc.problems)
    else:
        assert isinstance(loaded, LoadedConfig) and loaded.workers
        assert all(str(p).isprintable() for p in loaded.problems)


# One file for every example: the property must stay fast.
_PATH = Path(tempfile.mkdtemp(prefix="oco-prop-")) / "workers.json"
