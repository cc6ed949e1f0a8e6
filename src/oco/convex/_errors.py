"""Errors raised by the Convex client, and the one table mapping backend texts to types.

Every error names the function it came from and, once the client has raised it, the
deployment URL; none carries a request body. Texts that come from the server are passed
through `redact` first, since a Convex argument-validation message echoes the arguments (and
so the worker secret), and then through `oco._text.external`, since the outside world may
send escape sequences, newlines or megabytes. `describe()` is the one line a user reads:
what happened, where (function, deployment) and what to do.

The tree; in brackets the neutral type of `oco.errors` each maps to, which is what the worker
and the supervisor act on (see `oco.orchestrator._supervisor.classify`):

    ConvexException
    ├── ConvexFunctionError ........ the function failed (HTTP 560 / status "error") [Refused]
    │   ├── WorkerRejected ......... the backend refuses this worker: park [Rejected]
    │   │   ├── WorkerNotFound ..... no such worker (deleted, or a wrong token) [+NotFound]
    │   │   │   └── WorkerDeleted .. gone after the backend had accepted this token
    │   │   └── InvalidSecret ...... the worker exists, the secret is wrong
    │   ├── WorkerNotApproved ...... the record exists but is not approved: wait for approval
    │   ├── SessionNotFound, MessageNotFound ......................................... [NotFound]
    ├── BackendFault ............... credentials are fine, the function failed [Unavailable]
    ├── ConvexError ................ the function threw ConvexError(data) [Refused]
    ├── ConvexRequestError ......... HTTP 400 [Refused]
    ├── ConvexAuthError ............ HTTP 401/403 [Refused]
    ├── ConvexServerError .......... another HTTP status, raised as one of (`server_error`):
    │   ├── ConvexServerUnavailable  5xx and 429 [Unavailable]
    │   └── ConvexUnexpectedStatus . any other [ProtocolViolation]
    ├── ConvexUnavailable .......... unreachable or no answer in time [Unavailable]
    └── ConvexProtocolError ........ an answer outside the contract [ProtocolViolation]
        └── NotAConvexDeployment ... 404, or a body that is not a Convex answer at all [Misconfigured]

A production deployment redacts the text of what a function throws (`[Request ID: …] Server
Error`), so the contract types are matched from the text only as a fast path on dev
deployments; `oco.convex.api` finds the others out from the backend's state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

from oco._text import external
from oco.errors import (
    Misconfigured,
    NotFound,
    OcoError,
    ProtocolViolation,
    Refused,
    Rejected,
    Unavailable,
)


class ConvexException(OcoError):
    """Base of every Convex client error; `function` is the `file:function` path called and
    `url` the deployment (set by the client that raised it)."""

    advice: ClassVar[str] = ""  # what the user can do about it, for `describe`

    def __init__(self, text: str, *, function: str | None = None, url: str | None = None) -> None:
        self.function = function
        self.url = url
        self.text = external(text)
        super().__init__(f"{function}: {self.text}" if function else self.text)

    def headline(self) -> str:
        """What happened, in a few words (`describe` adds where and what to do)."""
        return self.text

    def describe(self) -> str:
        """One line for a user: what happened, the function and deployment, what to do."""
        where = [f"calling {self.function}" if self.function else "", f"on {self.url}" if self.url else ""]
        place = " ".join(part for part in where if part)
        line = f"{self.headline()} ({place})" if place else self.headline()
        return f"{line}: {self.advice}" if self.advice else line


class ConvexError(ConvexException, Refused):
    """The function threw `ConvexError(data)`; `data` is the decoded `errorData`."""

    advice = "see the deployment's logs (npx convex logs)"

    def __init__(self, data: Any, message: str = "", *, function: str | None = None) -> None:
        self.data = data
        self.message = message
        super().__init__(summarize(message) or "ConvexError", function=function)


class ConvexFunctionError(ConvexException, Refused):
    """The function failed (HTTP 560/200 with `status: "error"`); `message` is its error text
    (redacted, bounded), `summary` its human part made safe to show."""

    advice = "see the deployment's logs (npx convex logs)"

    def __init__(self, message: str, *, function: str | None = None, url: str | None = None) -> None:
        self.message = message
        self.summary = external(summarize(message))
        super().__init__(self._shown(), function=function, url=url)

    def _shown(self) -> str:
        return self.summary


class WorkerRejected(ConvexFunctionError, Rejected):
    """The backend refused the worker's credentials: fatal until the token changes.

    `reason` is the park reason a user reads, `advice` what fixes it."""

    reason: ClassVar[str] = "the backend rejected the worker"
    advice = "check the worker's token in the web app"

    def headline(self) -> str:
        return self.reason

    def _shown(self) -> str:
        # A redacted text (production) says nothing; the type, found from state, does.
        return self.reason if is_redacted(self.message) else self.summary


class WorkerNotFound(WorkerRejected, NotFound):
    """No worker row matches the token (deleted in the web app, or a wrong token)."""

    reason = "unknown worker (deleted in the web app, or a wrong token)"
    advice = "create the worker in the web app (or copy its token again) and use that token"


class WorkerDeleted(WorkerNotFound):
    """The worker's record disappeared after the backend had accepted this token: it was
    deleted in the web app while the worker ran."""

    reason = "the worker was deleted in the web app"
    advice = "create a worker in the web app and use its token"


class InvalidSecret(WorkerRejected):
    """The worker exists but the token's secret does not match."""

    reason = "wrong secret in the token"
    advice = "copy the worker's token from the web app again"


class WorkerNotApproved(ConvexFunctionError):
    """A call failed and the worker's record says it is not approved (any more)."""

    advice = "approve the worker in the web app"

    def headline(self) -> str:
        return "the worker is not approved"


class BackendFault(ConvexException, Unavailable):
    """A function failed although the worker's credentials are known good (its record exists
    and this secret was accepted before): a fault of the backend, retried like an outage.
    `message` is the function's error text (redacted, bounded), as `ConvexFunctionError` has it."""

    advice = "see the deployment's logs (npx convex logs)"

    def __init__(self, message: str, *, function: str | None = None, url: str | None = None) -> None:
        self.message = message
        self.summary = external(summarize(message))
        super().__init__(self.summary, function=function, url=url)


class SessionNotFound(ConvexFunctionError, NotFound):
    """The chat session named in a chat mutation does not exist."""


class MessageNotFound(ConvexFunctionError, NotFound):
    """The chat message named in a chat mutation does not exist."""


class ConvexRequestError(ConvexException, Refused):
    """HTTP 400: the backend refused the request itself (bad path, format, client version)."""

    advice = "the deployment refused trio-oco's request: check convex_url, or upgrade trio-oco"

    def __init__(self, code: str, message: str, *, function: str | None = None) -> None:
        self.code = external(code, 100)
        self.message = message
        super().__init__(
            f"HTTP 400 {self.code}: {message}" if message else f"HTTP 400 {self.code}", function=function
        )


class ConvexAuthError(ConvexException, Refused):
    """HTTP 401/403 from the deployment."""

    advice = "check convex_url (the deployment refused the call)"

    def __init__(self, status: int, message: str = "", *, function: str | None = None) -> None:
        self.status = status
        self.message = message
        super().__init__(f"HTTP {status} {message}".strip(), function=function)


class ConvexServerError(ConvexException):
    """An HTTP status the API does not answer with on its own (`status`); `server_error` raises
    it as `ConvexServerUnavailable` (5xx, 429) or `ConvexUnexpectedStatus` (any other)."""

    advice = "the deployment has a problem (see its status page or logs)"

    def __init__(self, status: int, *, function: str | None = None, text: str | None = None) -> None:
        self.status = status
        super().__init__(text or f"HTTP {status} from the Convex backend", function=function)


class ConvexServerUnavailable(ConvexServerError, Unavailable):
    """HTTP 5xx or 429: the deployment is down or overloaded for now; transient."""


class ConvexUnexpectedStatus(ConvexServerError, ProtocolViolation):
    """An HTTP status outside the API (no 5xx, no 429, none of the statuses it has a type for)."""


def server_error(status: int, *, function: str | None = None) -> ConvexServerError:
    """The error for an HTTP status the client has no other type for: the one place that
    decides whether such a status heals."""
    kind = ConvexServerUnavailable if status >= 500 or status == 429 else ConvexUnexpectedStatus
    return kind(status, function=function)


class ConvexUnavailable(ConvexException, Unavailable):
    """The backend could not be reached or did not answer in time.

    `sent` is False only when the request provably never left (connect failures), which is
    what makes retrying a non-idempotent mutation safe.
    """

    advice = "check the network and convex_url"

    def __init__(self, reason: str, *, sent: bool, function: str | None = None) -> None:
        self.reason = external(reason)
        self.sent = sent
        super().__init__(f"Convex unavailable ({self.reason})", function=function)

    def headline(self) -> str:
        return f"cannot reach {self.url} ({self.reason})" if self.url else self.text

    def describe(self) -> str:
        place = f" calling {self.function}" if self.function else ""
        return f"{self.headline()}{place}: {self.advice}"


class ConvexProtocolError(ConvexException, ProtocolViolation):
    """A response did not have the shape the contract promises; `field` names where."""

    advice = "check that convex_url is the OpenCode Orchestrator backend, and its version"

    def __init__(self, function: str | None, field: str, detail: str = "") -> None:
        self.field = external(field, 100)
        self.detail = external(detail)
        text = f"unexpected response at {self.field}" + (f": {self.detail}" if detail else "")
        super().__init__(text, function=function)


class NotAConvexDeployment(ConvexProtocolError, Misconfigured):
    """The URL answered, but not as a Convex deployment: HTTP 404 for a route every
    deployment has, or a body that is not a Convex answer (an HTML page). Retrying cannot
    help; the configured URL is wrong."""

    advice = "check convex_url"

    def __init__(self, function: str | None, *, status: int, route: str, what: str) -> None:
        self.status = status
        self.route = route
        self.what = what
        self.field = "body"
        self.detail = f"{what} from /api/{route}"
        ConvexException.__init__(self, f"not a Convex deployment ({self.detail})", function=function)

    def describe(self) -> str:
        place = f", calling {self.function}" if self.function else ""
        where = self.url or "the URL"
        return (
            f"{where} is not a Convex deployment ({self.what} from /api/{self.route}{place}): {self.advice}"
        )


def is_transient(exc: BaseException) -> bool:
    """True for Convex failures worth retrying (the neutral `Unavailable`): an unreachable
    backend, 5xx, 429 and backend faults."""
    return isinstance(exc, ConvexException) and isinstance(exc, Unavailable)


# What a production deployment leaves of a thrown Error (optionally with the client-style
# `[CONVEX M(path)]` prefix): nothing about why.
_REQUEST_ID = re.compile(r"^(?:\[CONVEX [A-Z]+\([^)]*\)\] )?(?:\[Request ID: [^\]]*\] )?Server Error$")
_UNCAUGHT = re.compile(r"^Uncaught (?:Convex)?Error: ")


def summarize(message: str) -> str:
    """The human part of a Convex error text: first line, without request id and 'Uncaught Error'."""
    for line in message.splitlines():
        line = line.strip()
        if line and not _REQUEST_ID.match(line):
            return _UNCAUGHT.sub("", line)
    return message.strip()


def is_redacted(message: str) -> bool:
    """True when the text says nothing but that the function failed (a production deployment
    redacts a thrown Error to `[Request ID: ...] Server Error`)."""
    return all(not line.strip() or _REQUEST_ID.match(line.strip()) for line in message.splitlines())


# The reference backend's error texts -> typed errors. The one place that
# matches on strings, and only a fast path: on a production deployment these texts are
# redacted, and `oco.convex.api` asks the backend's state instead. Callers catch types.
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


def is_untyped(exc: BaseException) -> bool:
    """A function failure whose text named no contract type: why it failed is unknown (always
    the case on a production deployment) and must be found out from the backend's state."""
    return type(exc) is ConvexFunctionError or type(exc) is ConvexError


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
