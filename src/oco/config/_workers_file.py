"""Loading workers.json: JSON5 text → strict cattrs structuring → validated `WorkerConfig`s.

A problem in one entry skips that entry (reported as a `ConfigProblem`); a problem with the
file as a whole (unreadable, not JSON5, wrong shape, bad settings, no valid entry) raises
`ConfigError`. A missing file is replaced by the template, then reported.
"""

from __future__ import annotations

import importlib.resources
import json
import math
from pathlib import Path
from typing import Any

import attrs
import json5

from oco.config._errors import ConfigError, ConfigProblem, TokenError
from oco.config._model import Settings, Token, WorkerConfig
from oco.config._paths import write_private_file
from oco.config._structure import json_kind, make_converter, problems_from
from oco.config._token import parse_token
from oco.config._values import ValueProblem, normalise_convex_url, resolve_working_directory
from oco.logs import register_secret

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@attrs.frozen
class LoadedConfig:
    """A loaded workers file: its valid workers (enabled or not), settings and skipped entries."""

    path: Path
    workers: tuple[WorkerConfig, ...]
    settings: Settings
    problems: tuple[ConfigProblem, ...] = ()

    @property
    def enabled_workers(self) -> tuple[WorkerConfig, ...]:
        return tuple(w for w in self.workers if w.enabled)


@attrs.frozen
class _Entry:
    """One `workers[i]` object as written, before its values are checked."""

    token: str
    working_directory: str
    convex_url: str
    name: str | None = None
    enabled: bool = True


@attrs.frozen
class _Document:
    # Entries stay raw here: each is structured on its own so one bad entry skips only itself.
    workers: list[Any]
    settings: Settings = Settings()


_converter = make_converter()


def template_text() -> str:
    """The commented workers.json template shipped inside the package."""
    return (
        importlib.resources.files("oco.config").joinpath("workers.template.jsonc").read_text(encoding="utf-8")
    )


def _settings_problems(settings: Settings) -> list[tuple[str, str]]:
    """Range checks that a type alone cannot express."""
    found = []
    for field in attrs.fields(Settings):
        value = getattr(settings, field.name)
        where = f"settings.{field.name}"
        if field.name.endswith("_s") and not (value > 0 and math.isfinite(value)):
            found.append((where, f"must be a number of seconds > 0 (got {value!r})"))
    if settings.max_concurrent_sessions < 1:
        found.append(("settings.max_concurrent_sessions", "must be at least 1"))
    if settings.log_level.upper() not in LOG_LEVELS:
        choices = ", ".join(LOG_LEVELS)
        got = settings.log_level
        found.append(("settings.log_level", f"must be one of {choices} (got {got!r})"))
    if settings.opencode_bin is not None and not settings.opencode_bin.strip():
        found.append(("settings.opencode_bin", "is empty; leave it out to use `opencode` on PATH"))
    return found


def _read_text(path: Path, *, write_template: bool) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not write_template:
            raise ConfigError(
                f"{path}: not found; `trio-oco init` writes a template there (or pass --config)"
            ) from None
        _write_template(path)
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a workers file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")  # tolerate a BOM
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _write_template(path: Path) -> None:
    try:
        write_private_file(path, template_text())
    except OSError as exc:
        raise ConfigError(
            f"{path}: not found, and a template could not be written there: {exc.strerror or exc}"
        ) from None
    raise ConfigError(
        f"{path}: not found; wrote a template there. Fill in each worker's token (from the web"
        f" app), working_directory and convex_url, then check it with `trio-oco check`."
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("duplicate key")
    return data


def _loads(text: str) -> Any:
    """JSON5 text to Python values, duplicate keys refused.

    Plain JSON (a subset of JSON5) goes through the C parser first: json5's pure-Python
    parser takes milliseconds per kilobyte, and most files are plain JSON.
    """
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError:
        return json5.loads(text, allow_duplicate_keys=False)


def _parse_document(path: Path, text: str) -> _Document:
    if not text.strip():
        raise ConfigError(f'{path}: is empty; expected {{"workers": [...]}}')
    try:
        data = _loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON5: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON5: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f'{path}: top level must be an object with a "workers" array (got {json_kind(data)})'
        )
    try:
        document = _converter.structure(data, _Document)
    except Exception as exc:  # noqa: BLE001 - cattrs raises exception groups; all become messages
        details = "; ".join(f"{where}: {msg}" for where, msg in problems_from(exc))
        raise ConfigError(f"{path}: {details}") from None
    bad = _settings_problems(document.settings)
    if bad:
        raise ConfigError(f"{path}: " + "; ".join(f"{where}: {msg}" for where, msg in bad))
    level = document.settings.log_level.upper()
    return attrs.evolve(document, settings=attrs.evolve(document.settings, log_level=level))


def _entry_worker(
    raw: Any, index: int, base: Path
) -> tuple[WorkerConfig | None, list[tuple[str, str]], str | None]:
    """Check one entry: (the worker or None, its problems, a text to scrub from messages)."""
    where = f"workers[{index}]"
    try:
        entry = _converter.structure(raw, _Entry)
    except Exception as exc:  # noqa: BLE001 - cattrs raises exception groups; all become messages
        return None, problems_from(exc, path=f"$.{where}"), None
    found: list[tuple[str, str]] = []
    token: Token | None = None
    try:
        token = parse_token(entry.token)
        register_secret(token.secret)
    except TokenError as exc:
        found.append((f"{where}.token", str(exc)))
    url = directory = None
    try:
        url = normalise_convex_url(entry.convex_url)
    except ValueProblem as exc:
        found.append((f"{where}.convex_url", str(exc)))
    try:
        directory = resolve_working_directory(entry.working_directory, base)
    except ValueProblem as exc:
        found.append((f"{where}.working_directory", str(exc)))
    if entry.name is not None and not entry.name.strip():
        found.append((f"{where}.name", "is empty; leave it out to use the worker id"))
    if found or token is None or url is None or directory is None:
        return None, found, entry.token.strip()
    name = entry.name.strip() if entry.name is not None else token.worker_id
    worker = WorkerConfig(
        token=token, convex_url=url, working_directory=directory, name=name, enabled=entry.enabled
    )
    return worker, [], entry.token.strip()


def _scrub(message: str, secret_text: str | None) -> str:
    # A token pasted into the wrong field must not be echoed back by a message.
    if secret_text and len(secret_text) >= 4:
        message = message.replace(secret_text, "***")
    return message


def load_workers_file(path: Path, *, write_template: bool = True) -> LoadedConfig:
    """Load and validate a workers file; see the module docstring for what raises.

    A missing file is replaced by the template (then `ConfigError`) unless `write_template` is
    False (`check` only reads: a mistyped --config must not leave a file behind).
    """
    path = Path(path).absolute()
    document = _parse_document(path, _read_text(path, write_template=write_template))
    if not document.workers:
        raise ConfigError(f'{path}: "workers" is empty; add at least one worker')
    workers: list[WorkerConfig] = []
    problems: list[ConfigProblem] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(document.workers):
        worker, found, secret_text = _entry_worker(raw, index, path.parent)
        if worker is not None and worker.key in seen:
            first = seen[worker.key]
            message = f"duplicate of workers[{first}] (same machine and worker id)"
            found = [(f"workers[{index}]", message)]
            worker = None
        problems.extend(ConfigProblem(path, where, _scrub(msg, secret_text)) for where, msg in found)
        if worker is not None:
            seen[worker.key] = index
            workers.append(worker)
    if not workers:
        lines = "; ".join(f"{p.json_path}: {p.message}" for p in problems)
        raise ConfigError(f"{path}: no valid worker ({lines})", problems=tuple(problems))
    return LoadedConfig(
        path=path, workers=tuple(workers), settings=document.settings, problems=tuple(problems)
    )
