"""Logging for trio-oco: one line per event, a per-worker label, and secrets redacted.

`setup_logging` installs one stderr handler on the root logger. Text lines look like
`2026-11-29T10:00:00Z INFO [worker-name] message`; json lines carry ts, level, worker,
logger, message (and exc). The worker label comes from a context variable: trio tasks
inherit context from their spawner, so `with bind_worker(name):` around a worker's task
tree labels every line it logs.

Every message is one inert line of bounded length (`oco._text.external`): callers escape
what they echo from outside, and this is the net under them, so an escape sequence or a
newline in someone else's text can neither drive the terminal nor forge a log line.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator

from oco._text import external

__all__ = ["SecretRedactor", "bind_worker", "register_secret", "setup_logging", "worker_label"]

#: The label bound by `bind_worker`: a name, or a callable giving the current one (a worker
#: renamed by a reload keeps running under its new name).
worker_label: contextvars.ContextVar[str | Callable[[], str] | None] = contextvars.ContextVar(
    "oco_worker_label", default=None
)

NOISY_LOGGERS = ("httpx", "httpcore", "hypercorn", "hypercorn.error", "hypercorn.access")
DEFAULT_LABEL = "oco"
LOG_MESSAGE_MAX_CHARS = 8000  # a message longer than this is cut (ours are far shorter)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None

# A secret this long is redacted wherever it appears. A shorter one only where it stands
# alone or follows `secret_`, so a test's secret "s1" does not eat every "s1" in a log line.
_ANYWHERE_LENGTH = 16
_WORD = "A-Za-z0-9_-"


def _compile(secrets: set[str]) -> re.Pattern[str] | None:
    parts = []
    for secret in sorted(secrets, key=len, reverse=True):
        escaped = re.escape(secret)
        if len(secret) >= _ANYWHERE_LENGTH:
            parts.append(escaped)
        else:
            parts.append(f"(?:(?<=secret_)|(?<![{_WORD}])){escaped}(?![{_WORD}])")
    return re.compile("|".join(parts)) if parts else None


@contextlib.contextmanager
def bind_worker(label: str | Callable[[], str]) -> Iterator[None]:
    """Label every log line emitted in this context (and tasks spawned from it); a callable
    label is asked at each line."""
    reset = worker_label.set(label)
    try:
        yield
    finally:
        worker_label.reset(reset)


def register_secret(secret: str) -> None:
    """Redact `secret` (replaced by `***`) from every log record from now on."""
    global _pattern
    if not secret:
        return
    with _secrets_lock:
        if secret not in _secrets:
            _secrets.add(secret)
            _pattern = _compile(_secrets)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    pattern = _pattern
    return pattern.sub("***", text) if pattern is not None else text


class SecretRedactor(logging.Filter):
    """Replaces registered secrets in a record's message, args and exception text.

    The message is rendered (msg % args) first and stored back with `args=None`, so a secret
    inside an argument is caught too; exception and stack text are rendered and redacted.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: keep the raw parts, redacted
            message = f"{record.msg!s} {record.args!r}"
        record.msg = external(redact(message), LOG_MESSAGE_MAX_CHARS)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _WorkerLabel(logging.Filter):
    """Stamps `record.worker` from the context variable (unless `extra=` already set it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "worker", None):
            label = worker_label.get()
            record.worker = (label() if callable(label) else label) or DEFAULT_LABEL
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


class TextFormatter(logging.Formatter):
    """`2026-11-29T10:00:00Z INFO [worker] message`, exception text on following lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} [{record.worker}] {record.getMessage()}"  # type: ignore[attr-defined]  # stamped by the worker-label filter
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, worker, logger, message (+ exc)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "worker": record.worker,  # type: ignore[attr-defined]  # stamped by the worker-label filter
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


class _OcoHandler(logging.StreamHandler):
    """Marks the handler `setup_logging` owns, so a second call replaces it."""


def setup_logging(level: str = "INFO", fmt: str = "text", stream=None) -> logging.Handler:
    """Install the stderr handler (replacing a previous one) and return it.

    Noisy libraries (httpx, httpcore, hypercorn) log at WARNING unless `level` is DEBUG.
    """
    level = level.upper()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _OcoHandler):
            root.removeHandler(handler)
    handler = _OcoHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(_WorkerLabel())
    handler.addFilter(SecretRedactor())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    return handler
