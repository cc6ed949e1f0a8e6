"""Logging for trio-oco: one line per event, a per-worker label, and secrets redacted.

`setup_logging` installs one stderr handler on the root logger. Text lines look like
`2026-11-29T10:00:00Z INFO [worker-name] message`; json lines carry ts, level, worker,
logger, message (and exc). The worker label comes from a context variable: trio tasks
inherit context from their spawner, so `with bind_worker(name, worker_id):` around a
worker's task tree labels every line it logs. The label is one shared `WorkerTag`, so
`relabel(name)` renames it for every task of that worker at once (dev mode learns the
worker's name from Convex; a reload may rename it). `oco._log_files` routes the same
records into one file per worker by the tag's `worker_id`.

How a line looks depends on where stderr goes (`stderr_style`):
- a terminal: levels and worker names in colour, unless `NO_COLOR` is set (no-color.org);
  `FORCE_COLOR` turns colour on where stderr is no terminal (NO_COLOR still wins);
- systemd's journal (`JOURNAL_STREAM` names the very stream that stderr is): each line
  starts with its syslog priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug,
  sd-daemon(3)), so `journalctl -p err` works, and has no timestamp (the journal keeps one);
- anything else: plain text.

Every message is one inert line of bounded length (`oco._text.external`): callers escape
what they echo from outside, and this is the net under them, so an escape sequence or a
newline in someone else's text can neither drive the terminal nor forge a log line.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import json
import logging
import os
import re
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from typing import TextIO

from oco._text import external

__all__ = [
    "SecretRedactor",
    "WorkerTag",
    "bind_worker",
    "register_secret",
    "relabel",
    "setup_logging",
    "worker_label",
]


class WorkerTag:
    """Which worker a log line belongs to: its display `name` (changeable) and `worker_id`."""

    __slots__ = ("name", "worker_id")

    def __init__(self, name: str, worker_id: str | None = None) -> None:
        self.name = name
        self.worker_id = worker_id

    def __repr__(self) -> str:
        return f"WorkerTag({self.name!r}, {self.worker_id!r})"


worker_label: contextvars.ContextVar[WorkerTag | None] = contextvars.ContextVar(
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
def bind_worker(label: str, worker_id: str | None = None) -> Iterator[WorkerTag]:
    """Label every log line emitted in this context (and tasks spawned from it).

    Inside a context already bound to the same `worker_id` (the supervisor binds, then the
    worker it runs), the existing tag is kept, so a `relabel` renames both.
    """
    current = worker_label.get()
    if current is not None and worker_id is not None and current.worker_id == worker_id:
        yield current
        return
    tag = WorkerTag(label, worker_id)
    reset = worker_label.set(tag)
    try:
        yield tag
    finally:
        worker_label.reset(reset)


def relabel(name: str) -> None:
    """Rename the current worker's label, for every task of it, from now on."""
    tag = worker_label.get()
    if tag is not None and name:
        tag.name = name


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
        if getattr(record, "_oco_redacted", False):
            return True  # another handler of ours has done it already
        record._oco_redacted = True
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


class WorkerLabelFilter(logging.Filter):
    """Stamps `record.worker` (the label) and `record.worker_id` from the context variable
    (unless `extra=` already set the label)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "worker", None):
            tag = worker_label.get()
            record.worker = tag.name if tag is not None else DEFAULT_LABEL
            record.worker_id = tag.worker_id if tag is not None else None
        elif not hasattr(record, "worker_id"):
            record.worker_id = None
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


class Style(enum.Enum):
    """How stderr lines look: plain, coloured (a terminal), or journald's (priority prefix)."""

    PLAIN = "plain"
    COLOUR = "colour"
    JOURNAL = "journal"


def _is_journal(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Whether `stream` is the journal stream systemd named in `JOURNAL_STREAM` ("dev:inode")."""
    value = env.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        stat = os.fstat(stream.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both of the first
        return False


def stderr_style(stream: TextIO, env: Mapping[str, str] = os.environ) -> Style:
    """The style for `stream`: journal when it is systemd's, colour on a terminal (or with
    `FORCE_COLOR`) unless `NO_COLOR` is set to anything, plain otherwise."""
    if _is_journal(stream, env):
        return Style.JOURNAL
    if env.get("NO_COLOR"):
        return Style.PLAIN
    forced = env.get("FORCE_COLOR", "")
    if forced and forced.lower() not in ("0", "false", "no"):
        return Style.COLOUR
    try:
        return Style.COLOUR if stream.isatty() else Style.PLAIN
    except (AttributeError, ValueError):
        return Style.PLAIN


#: sd-daemon(3) priorities: `<3>` err, `<4>` warning, `<6>` info, `<7>` debug.
SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
_LEVEL_COLOUR = {logging.CRITICAL: "1;31", logging.ERROR: "31", logging.WARNING: "33", logging.DEBUG: "2"}
_NAME_COLOURS = ("36", "32", "35", "34", "96", "92", "95", "94")  # never red/yellow: those are levels


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (levels between take the next more severe)."""
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return SYSLOG_PRIORITY[level]
    return SYSLOG_PRIORITY[logging.DEBUG]


def name_colour(name: str) -> str:
    """An SGR colour for a worker's name, the same in every run (a hash of the name)."""
    return _NAME_COLOURS[zlib.crc32(name.encode()) % len(_NAME_COLOURS)]


def level_colour(levelname: str) -> str | None:
    """The SGR colour of a level's name (None: uncoloured, as INFO is)."""
    level = logging.getLevelName(levelname)
    return _LEVEL_COLOUR.get(level) if isinstance(level, int) else None


def paint(text: str, sgr: str | None) -> str:
    return f"\x1b[{sgr}m{text}\x1b[0m" if sgr else text


class TextFormatter(logging.Formatter):
    """`2026-11-29T10:00:00Z INFO [worker] message`, exception text on following lines.

    `Style.COLOUR` colours the level and the worker's name; `Style.JOURNAL` drops the
    timestamp and starts every line (continuation lines too) with the syslog priority.
    """

    def __init__(self, style: Style = Style.PLAIN) -> None:
        super().__init__()
        self.style = style

    def format(self, record: logging.LogRecord) -> str:
        label: str = record.worker  # type: ignore[attr-defined]  # stamped by the worker-label filter
        message = record.getMessage()
        extra = [text for text in (record.exc_text, record.stack_info) if text]
        if self.style is Style.JOURNAL:
            prefix = f"<{priority(record.levelno)}>"
            lines = [f"{prefix}{record.levelname} [{label}] {message}"]
            lines += [f"{prefix}{line}" for text in extra for line in text.splitlines()]
            return "\n".join(lines)
        level, name = record.levelname, f"[{label}]"
        if self.style is Style.COLOUR:
            level = paint(level, _LEVEL_COLOUR.get(record.levelno))
            name = paint(name, name_colour(label) if label != DEFAULT_LABEL else None)
        return "\n".join([f"{_timestamp(record)} {level} {name} {message}", *extra])


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, worker, logger, message (+ exc)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "worker": record.worker,  # type: ignore[attr-defined]  # stamped by the worker-label filter
            "worker_id": getattr(record, "worker_id", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


class _OcoHandler(logging.StreamHandler):
    """Marks the handler `setup_logging` owns, so a second call replaces it."""


def setup_logging(
    level: str = "INFO", fmt: str = "text", stream: TextIO | None = None, env: Mapping[str, str] | None = None
) -> logging.Handler:
    """Install the stderr handler (replacing a previous one) and return it.

    Text lines take the stream's style (`stderr_style`: colour, journal or plain; `env`
    defaults to `os.environ`). Noisy libraries (httpx, httpcore, hypercorn) log at WARNING
    unless `level` is DEBUG.
    """
    level = level.upper()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _OcoHandler):
            root.removeHandler(handler)
    target = stream if stream is not None else sys.stderr
    handler = _OcoHandler(target)
    handler.addFilter(WorkerLabelFilter())
    handler.addFilter(SecretRedactor())
    style = stderr_style(target, os.environ if env is None else env)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(style))
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    return handler
