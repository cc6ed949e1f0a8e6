"""The configuration and environment that point a real, isolated OpenCode at the fake LLM."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FAKE_MODEL = "fake/fake-model"


def opencode_config(base_url: str) -> dict[str, Any]:
    """The `OPENCODE_CONFIG_CONTENT` document: only provider `fake`, model `fake/fake-model`.

    Verified against opencode-ai 1.18.33 (opencode-server.md): the openai-compatible SDK is
    bundled, `enabled_providers` hides the built-in catalogue, webfetch is denied (offline).
    """
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "fake": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake LLM",
                "options": {"baseURL": base_url, "apiKey": "dummy"},
                "models": {
                    "fake-model": {
                        "name": "Fake Model",
                        "tool_call": True,
                        "reasoning": True,
                        "limit": {"context": 32000, "output": 4096},
                    }
                },
            }
        },
        "model": FAKE_MODEL,
        "small_model": FAKE_MODEL,
        "enabled_providers": ["fake"],
        "share": "disabled",
        "autoupdate": False,
        "permission": {"bash": "allow", "edit": "allow", "webfetch": "deny"},
    }


def opencode_env(home: Path, llm_base_url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for `opencode serve` with HOME and XDG_* under `home` and no npm access.

    `base` defaults to `os.environ` (PATH must still find `rg`). The registry points at a
    closed port so OpenCode's plugin install quietly does nothing instead of hitting npm.
    """
    env = dict(os.environ if base is None else base)
    dirs = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_STATE_HOME": home / ".local" / "state",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        env[name] = str(path)
    env["OPENCODE_CONFIG_CONTENT"] = json.dumps(opencode_config(llm_base_url))
    env["npm_config_registry"] = "http://127.0.0.1:9/"
    return env
