"""Configuration: worker tokens, workers.json, dev mode's `.env`, file locations.

Everything here is synchronous and does no network I/O; values are checked once, at the
edge, and the resulting frozen attrs classes are trusted everywhere else.

Lazy (`oco._lazy`): `from oco.config import state_dir` loads `_paths` alone, not the JSON5,
dotenv and cattrs machinery, so `trio-oco status` and the control commands start fast.
"""

from typing import TYPE_CHECKING

from oco._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers read; at run time a name is imported on first use
    from oco.config._dotenv import DEV_SETTINGS, load_dotenv_config
    from oco.config._errors import ConfigError, ConfigProblem, TokenError
    from oco.config._model import Settings, Token, WorkerConfig
    from oco.config._paths import ensure_private_dir, state_dir, workers_file_path, write_private_file
    from oco.config._token import EXAMPLE_TOKEN, TOKEN_FORMAT, parse_token
    from oco.config._values import is_loopback_host, normalise_convex_url
    from oco.config._workers_file import LoadedConfig, load_workers_file, template_text

__all__ = [
    "DEV_SETTINGS",
    "EXAMPLE_TOKEN",
    "TOKEN_FORMAT",
    "ConfigError",
    "ConfigProblem",
    "LoadedConfig",
    "Settings",
    "Token",
    "TokenError",
    "WorkerConfig",
    "ensure_private_dir",
    "is_loopback_host",
    "load_dotenv_config",
    "load_workers_file",
    "normalise_convex_url",
    "parse_token",
    "state_dir",
    "template_text",
    "workers_file_path",
    "write_private_file",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "._dotenv": "DEV_SETTINGS load_dotenv_config",
        "._errors": "ConfigError ConfigProblem TokenError",
        "._model": "Settings Token WorkerConfig",
        "._paths": "ensure_private_dir state_dir workers_file_path write_private_file",
        "._token": "EXAMPLE_TOKEN TOKEN_FORMAT parse_token",
        "._values": "is_loopback_host normalise_convex_url",
        "._workers_file": "LoadedConfig load_workers_file template_text",
    },
)
