"""Errors raised by the Convex client, and the one table mapping backend texts to types.

Every error names the function it came from; none carries a request body. Texts that come
from the server are passed through `redact` first, since a Convex argument-validation message
echoes the arguments (and so the worker secret).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from oco.errors import OcoError


class ConvexException(OcoError):
    """Base of every Convex client error; `function` is the `file:function` path called."""

    def __init__(self, text: str, *, function: str | None = None) -> None:
        self.function = function
        super().__init__(f"{function}: {text}" if function else text)


class ConvexError(ConvexException):
    """The function threw `ConvexError(data)`; `data` is the decoded `errorData`."""

    def __init__(self, data: Any, message: str = "", *, function: str | None = None) -> None:
        self.data = data
        self.message = message
        super().__init__(summarize(message) or "ConvexError", function=function)


class ConvexFunctionError(ConvexException):
    """The function failed (HTTP 560/200 with `status: "error"`); `message` is its error text."""

    def __init__(self, message: str, *, function: str | None = None) -> None:
        self.message = message
        self.summary = summarize(message)
        super().__init__(self.summary, function=function)


class WorkerRejected(ConvexFunctionError):
    """The backend refused the worker's credentials: fatal until the token changes."""


class WorkerNotFound(WorkerRejected):
    """No worker row matches the token (deleted, rejected, or a wrong token)."""


class InvalidSecret(WorkerRejected):
    """The worker exists but the token's secret does not match."""


class SessionNotFound(ConvexFunctionError):
    """The chat session named in a chat mutation does not exist."""


class MessageNotFound(ConvexFunctionError):
    """The chat message named in a chat mutation does not exist."""


class ConvexRequestError(ConvexException):
    """HTTP 400: the backend refused the request itself (bad path, format or arguments)."""

    def __init__(self, code: str, message: str, *, function: str | None = None) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}" if message else code, function=function)


class ConvexAuthError(ConvexException):
    """HTTP 401/403 from the deployment."""

    def __init__(self, status: int, message: str = "", *, function: str | None = None) -> None:
        self.status = status
        self.message = message
        super().__init__(f"HTTP {status} {message}".strip(), function=function)


class ConvexServerError(ConvexException):
    """Any other HTTP status; 5xx (and 429) are transient."""

    def __init__(self, status: int, *, function: str | None = None) -> None:
        self.status = status
        super().__init__(f"HTTP {status} from the Convex backend", function=function)


class ConvexUnavailable(ConvexException):
    """The backend could not be reached or did not answer in time.

    `sent` is False only when the request provably never left (connect failures), which is
    what makes retrying a non-idempotent mutation safe.
    """

    def __init__(self, reason: str, *, sent: bool, function: str | None = None) -> None:
        self.reason = reason
        self.sent = sent
        super().__init__(f"Convex unavailable ({reason})", function=function)


class ConvexProtocolError(ConvexException):
    """A response did not have the shape the contract promises; `field` names where."""

    def __init__(self, function: str | None, field: str, detail: str = "") -> None:
        self.field = field
        self.detail = detail
        text = f"unexpected response at {field}" + (f": {detail}" if detail else "")
        super().__init__(text, function=function)


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: unreachable backend, 5xx and 429."""
    if isinstance(exc, ConvexUnavailable):
        return True
    return isinstance(exc, ConvexServerError) and (exc.status >= 500 or exc.status == 429)


_REQUEST_ID = re.compile(r"^\[Request ID: [^\]]*\] Server Error$")
_UNCAUGHT = re.compile(r"^Uncaught (?:Convex)?Error: ")


def summarize(message: str) -> str:
    """The human part of a Convex error text: first line, without request id and 'Uncaught Error'."""
    for line in message.splitlines():
        line = line.strip()
        if line and not _REQUEST_ID.match(line):
            return _UNCAUGHT.sub("", line)
    return message.strip()


# The backend's error texts (reference-worker.md §2.2) -> typed errors. The one place that
# matches on strings; callers catch types.
_CONTRACT_ERRORS: tuple[tuple[re.Pattern[str], type[ConvexFunctionError]], ...] = (
    (re.compile(r"Invalid worker secret"), InvalidSecret),
    (re.compile(r"\bWorker (?:\S+ )?not found\b"), WorkerNotFound),
    (re.compile(r"\bSession not found\b"), SessionNotFound),
    (re.compile(r"\bMessage not found\b"), MessageNotFound),
)


def function_error(message: str, *, function: str | None = None) -> ConvexFunctionError:
    """The error for a failed function call: a contract type when the text is a known one."""
    summary = summarize(message)
    for pattern, kind in _CONTRACT_ERRORS:
        if pattern.search(summary):
            return kind(message, function=function)
    return ConvexFunctionError(message, function=function)


SENSITIVE_ARGS = frozenset({"secret", "token", "sessionId"})


def sensitive_values(args: Any) -> list[str]:
    """String values under sensitive keys anywhere in `args` (secrets, tokens, web sessions)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in SENSITIVE_ARGS and isinstance(item, str) and item:
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(args)
    return found


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by `***`."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
