"""Errors that end a command with a message instead of a traceback, and the neutral taxonomy
every adapter maps its failures to, once, at its edge.

The orchestrator and the worker decide by these types alone (retry, park, report), so they
need not know which adapter failed. `oco.convex` and `oco.opencode` keep their own types
(their trees are in their `_errors` modules), each a subclass of a neutral type here:

    OcoError ......................... an expected failure: one line, never a traceback
    ├── UsageError ................... the command line or its environment is wrong (exit 2)
    │   └── ConfigError .............. a configuration file is unusable (oco.config)
    ├── Unavailable .................. not reachable, no answer in time, or a fault that heals:
    │   │                              retried with backoff
    │   ├── ConvexUnavailable, ConvexServerUnavailable (5xx, 429), BackendFault
    │   ├── OpenCodeError (any HTTP call), OpenCodeStartError
    │   └── OpenCodeUnavailable ...... OpenCode cannot serve a turn now (oco.worker)
    ├── Refused ...................... the peer answered and refused or failed this call
    │   ├── Rejected ................. it refuses this worker's credentials: park
    │   │   └── WorkerRejected: InvalidSecret, WorkerNotFound*, WorkerDeleted*
    │   ├── NotFound ................. what the call names is gone: a chat session or
    │   │   │                          message, or the worker itself
    │   │   └── SessionNotFound, MessageNotFound, WorkerNotFound*, WorkerDeleted*
    │   └── ConvexFunctionError, WorkerNotApproved, ConvexError, ConvexRequestError (400),
    │       ConvexAuthError (401, 403), SyncQueryError
    ├── ProtocolViolation ............ an answer outside the contract (a newer or broken peer)
    │   └── ConvexProtocolError, NotAConvexDeployment*, ConvexUnexpectedStatus,
    │       SyncProtocolError
    └── Misconfigured ................ the configuration names the wrong thing: park
        └── NotAConvexDeployment*, OpenCodeNotFound

    * under two neutral types: the more specific one decides (`Rejected` before `NotFound`,
      `Misconfigured` before `ProtocolViolation`; `oco.orchestrator._supervisor.classify`
      and the worker check in that order).
"""

from __future__ import annotations

from oco._text import external


class OcoError(Exception):
    """An expected failure: the CLI prints its message (never a traceback) and exits.

    `exit_code` follows the CLI convention: 1 runtime failure, 2 usage or configuration error.
    Messages must never contain a worker token's secret.
    """

    exit_code = 1

    def describe(self) -> str:
        """One line for a user: what happened (adapters add where, and what to do)."""
        return external(self) or type(self).__name__


class UsageError(OcoError):
    """The command line or the environment it names is wrong; exit code 2."""

    exit_code = 2


class Unavailable(OcoError):
    """The peer could not be reached, did not answer in time, or failed in a way that heals:
    worth retrying with backoff."""


class Refused(OcoError):
    """The peer answered and refused (or failed) this call: repeating it as is fails again."""


class Rejected(Refused):
    """The peer refuses this worker itself (a wrong secret, a deleted worker): nothing but a
    new token helps, so the worker is parked."""


class NotFound(Refused):
    """What a call names does not exist (any more): a chat session or message (nobody is left
    to answer), or the worker itself (deleted; then it is `Rejected` too)."""


class ProtocolViolation(OcoError):
    """The peer answered outside its contract (a newer or broken peer)."""


class Misconfigured(OcoError):
    """The configuration names the wrong thing (a convex_url that is no Convex deployment, an
    opencode that is not there): retrying cannot help until it changes, so the worker parks."""


def describe(exc: BaseException) -> str:
    """One line for a user about any failure: `describe()` of an expected `OcoError`, else
    the type and text of the bug (made safe with `external`)."""
    if isinstance(exc, OcoError):
        return exc.describe()
    text = external(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = [
    "Misconfigured",
    "NotFound",
    "OcoError",
    "ProtocolViolation",
    "Refused",
    "Rejected",
    "Unavailable",
    "UsageError",
    "describe",
]
