"""Configuration errors: a file-level `ConfigError` and the per-entry `ConfigProblem`."""

from __future__ import annotations

from pathlib import Path

import attrs

from oco.errors import UsageError


class TokenError(ValueError):
    """A worker token is malformed; the message says what is wrong without echoing the token."""


@attrs.frozen
class ConfigProblem:
    """One thing wrong with one entry (or one value) of a configuration file."""

    path: Path
    json_path: str  # like `workers[2].convex_url`
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.json_path}: {self.message}"


class ConfigError(UsageError):
    """The configuration as a whole is unusable (exit code 2); the message names the file.

    `problems` carries the per-entry problems when the file failed because none was valid,
    so `trio-oco check` can still show them.
    """

    def __init__(self, message: str, problems: tuple[ConfigProblem, ...] = ()) -> None:
        super().__init__(" ".join(message.splitlines()))  # always one line on a terminal
        self.problems = problems
