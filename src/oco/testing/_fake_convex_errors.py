"""How the fake Convex backend words a failed function, in dev and in prod deployments.

Convex (get-convex/convex-backend `crates/application/src/redaction.rs`) sends a failed
function's error as `[Request ID: <16 hex>] Server Error`, followed on a dev deployment by a
newline and the `JsError`: the message and its stack frames, each line ending in a newline
(`crates/common/src/errors.rs`). A production deployment sends only the first part and drops
log lines; a `ConvexError`'s data (`errorData`) is sent in both. What a function throws reads
`Uncaught Error: <text>` and has a frame pointing into the reference backend's source; what
Convex itself refuses (unknown function, wrong kind, bad arguments, limits) has no `Uncaught`
and no frame.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any


class FunctionFailure(Exception):
    """A function failed: `str()` is its plain text (what the handler threw).

    `uncaught` marks a JavaScript throw (`Uncaught Error: ...` plus a frame) as opposed to an
    error Convex raises itself; `data` is a `ConvexError`'s data; `site` is
    `file.ts:line:column` of the throw in the reference backend, filled in from `THROW_SITES`.
    """

    def __init__(
        self,
        message: str,
        *,
        uncaught: bool = True,
        has_data: bool = False,
        data: Any = None,
        site: str | None = None,
    ) -> None:
        self.message = message
        self.uncaught = uncaught
        self.has_data = has_data
        self.data = data
        self.site = site
        super().__init__(message)

    @classmethod
    def convex_error(cls, data: Any) -> FunctionFailure:
        """`throw new ConvexError(data)`: the message is the data (a string) or its JSON."""
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        return cls(text, has_data=True, data=data)

    @property
    def js_error(self) -> str:
        """The `JsError` display: message line, then one line per frame, newline-terminated."""
        if not self.uncaught:
            return f"{self.message}\n"
        name = "ConvexError" if self.has_data else "Error"
        frame = f"    at handler (../convex/{self.site})\n" if self.site else ""
        return f"Uncaught {name}: {self.message}\n{frame}"


class QueryFailure(FunctionFailure):
    """A query that failed, as the fake hands it to its sync endpoint.

    `error_message` is the exact text Convex would send in `QueryFailed` (dev or prod);
    `str()` is the same without the `[Request ID: ...] Server Error` line on dev and as is on
    prod, because the endpoint prefixes `Uncaught Error: ` to `str()`: the function's text
    then never reaches a prod client."""

    def __init__(self, failure: FunctionFailure, error_message: str, *, prod: bool) -> None:
        super().__init__(
            failure.message,
            uncaught=failure.uncaught,
            has_data=failure.has_data,
            data=failure.data,
            site=failure.site,
        )
        self.error_message = error_message
        self.prod = prod

    def __str__(self) -> str:
        return self.error_message if self.prod else self.message


def request_id() -> str:
    """A fresh Convex request id: 16 hex characters."""
    return secrets.token_hex(8)


def stable_request_id(*parts: Any) -> str:
    """A request id that repeats for the same failure, so a failing subscribed query is not
    re-sent on every commit (Convex deduplicates query errors without their request id)."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render(failure: FunctionFailure, request: str, *, prod: bool) -> str:
    """The `errorMessage` a client receives for `failure` on a dev or prod deployment."""
    head = f"[Request ID: {request}] Server Error"
    return head if prod else f"{head}\n{failure.js_error}"


def not_found(path: str) -> FunctionFailure:
    """An unknown or internal function (the hosted service's wording)."""
    return FunctionFailure(
        f"Could not find public function for '{path}'. Did you forget to run "
        "`npx convex dev` or `npx convex deploy`?",
        uncaught=False,
    )


def canonical(path: str) -> str:
    """`workers:register` as Convex's canonical path prints it: `workers.js:register`."""
    module, _, function = path.rpartition(":") if ":" in path else (path, "", "default")
    if "." not in module.rsplit("/", 1)[-1]:
        module += ".js"
    return f"{module}:{function}"


def wrong_kind(path: str, called_as: str, defined_as: str) -> FunctionFailure:
    return FunctionFailure(
        f"Trying to execute {canonical(path)} as {called_as.capitalize()}, "
        f"but it is defined as {defined_as.capitalize()}.",
        uncaught=False,
    )


# Where the reference backend throws each of its errors (branch update-opencode-sdk of
# conradkoh/opencode-orchestrator, services/backend/convex/): function -> (text, site).
# `${...}` in a text stands for the interpolated part.
THROW_SITES: dict[str, tuple[tuple[str, str], ...]] = {
    "workers:create": (
        ("Unauthorized: Must be logged in to create a worker", "workers.ts:27:13"),
        ("Machine not found", "workers.ts:37:13"),
        ("Unauthorized: You do not own this machine", "workers.ts:41:13"),
        ("Worker ID already exists. Please try again.", "workers.ts:53:13"),
    ),
    "workers:register": (
        ("Worker not found. Please check your worker token.", "workers.ts:107:13"),
        ("Invalid worker secret. Authentication failed.", "workers.ts:112:13"),
    ),
    "workers:approve": (
        ("Unauthorized: Must be logged in to approve workers", "workers.ts:170:13"),
        ("Worker not found", "workers.ts:180:13"),
        ("Unauthorized: You do not own this machine", "workers.ts:190:13"),
    ),
    "workers:reject": (
        ("Unauthorized: Must be logged in to reject workers", "workers.ts:219:13"),
        ("Worker not found", "workers.ts:229:13"),
        ("Unauthorized: You do not own this machine", "workers.ts:239:13"),
    ),
    "workers:heartbeat": (
        ("Unauthorized: Worker not found", "workers.ts:413:13"),
        ("Invalid worker secret. Authentication failed.", "workers.ts:418:13"),
    ),
    "workers:setOffline": (("Invalid worker secret. Authentication failed.", "workers.ts:466:13"),),
    "workers:remove": (
        ("Unauthorized: Must be logged in to remove workers", "workers.ts:521:13"),
        ("Worker not found", "workers.ts:531:13"),
        ("Unauthorized: You do not own this machine", "workers.ts:541:13"),
    ),
    "workers:requestConnect": (
        ("Worker not found", "workers.ts:578:13"),
        ("Worker is not approved", "workers.ts:583:13"),
    ),
    "workers:markConnected": (
        ("Worker not found", "workers.ts:637:13"),
        ("Invalid worker secret. Authentication failed.", "workers.ts:642:13"),
    ),
    "workers:getToken": (
        ("Unauthorized: Must be logged in to get worker token", "workers.ts:696:13"),
        ("Worker not found", "workers.ts:706:13"),
        ("Unauthorized: You do not own this machine", "workers.ts:716:13"),
    ),
    "chat:startSession": (
        ("Unauthorized: Must be logged in to start a session", "chat.ts:45:13"),
        ("Worker not found", "chat.ts:56:13"),
        ("Worker is not online", "chat.ts:61:13"),
        ("Unauthorized: You do not own this worker", "chat.ts:71:13"),
    ),
    "chat:endSession": (
        ("Unauthorized: Must be logged in to end a session", "chat.ts:110:13"),
        ("Session not found", "chat.ts:120:13"),
        ("Unauthorized: You do not own this session", "chat.ts:125:13"),
    ),
    "chat:sendMessage": (
        ("Unauthorized: Must be logged in to send a message", "chat.ts:163:13"),
        ("Session not found", "chat.ts:173:13"),
        ("Unauthorized: You do not own this session", "chat.ts:178:13"),
    ),
    "chat:writeChunk": (
        ("Session not found", "chat.ts:289:13"),
        ("Message not found", "chat.ts:299:13"),
    ),
    "chat:completeMessage": (
        ("Session not found", "chat.ts:342:13"),
        ("Message not found", "chat.ts:352:13"),
    ),
    "chat:completeStructuredMessage": (
        ("Session not found", "chat.ts:394:13"),
        ("Message not found", "chat.ts:404:13"),
    ),
    "chat:sessionReady": (("Session not found", "chat.ts:452:13"),),
    "chat:updateSessionName": (("Session not found", "chat.ts:953:13"),),
    "chat:markSessionDeletedInOpencode": (("Session not found", "chat.ts:988:13"),),
    "chat:createSyncedSession": (
        ("Worker not found", "chat.ts:1026:13"),
        ("Machine not found", "chat.ts:1036:13"),
    ),
    "machines:create": (
        ("Unauthorized: Must be logged in to create a machine", "machines.ts:25:13"),
        ("Machine ID already exists. Please try again.", "machines.ts:35:13"),
    ),
    "machines:deleteMachine": (
        ("Unauthorized: Must be logged in to delete a machine", "machines.ts:108:13"),
        ("Machine not found", "machines.ts:118:13"),
        ("Unauthorized: You can only delete your own machines", "machines.ts:123:13"),
    ),
    "workerModels:updateModels": (("Worker ${args.workerId} not found", "workerModels.ts:38:13"),),
}


def throw_site(path: str, message: str) -> str | None:
    """Where `path` throws `message` in the reference backend, if it does."""
    for text, site in THROW_SITES.get(path, ()):
        pattern = ".*".join(re.escape(part) for part in re.split(r"\$\{[^}]*\}", text))
        if re.fullmatch(pattern, message, re.DOTALL):
            return site
    return None
