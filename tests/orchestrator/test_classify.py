"""How the supervisor classifies the failure that ended an attempt, for every error type the
adapters raise: the kind decides park or restart, so it is pinned type by type."""

from __future__ import annotations

import pytest

from oco.config import ConfigError
from oco.convex import (
    BackendFault,
    ConvexAuthError,
    ConvexError,
    ConvexFunctionError,
    ConvexProtocolError,
    ConvexRequestError,
    ConvexUnavailable,
    InvalidSecret,
    MessageNotFound,
    NotAConvexDeployment,
    SessionNotFound,
    WorkerDeleted,
    WorkerNotApproved,
    WorkerNotFound,
)
from oco.convex._errors import server_error
from oco.errors import OcoError
from oco.opencode import OpenCodeError, OpenCodeNotFound, OpenCodeStartError
from oco.orchestrator import FailureKind, classify
from oco.worker import WorkerRevoked
from oco.worker._opencode_host import OpenCodeUnavailable

KINDS = [
    (WorkerNotFound("Worker not found", function="workers:register"), FailureKind.REJECTED),
    (WorkerDeleted("", function="workers:heartbeat"), FailureKind.REJECTED),
    (WorkerRevoked(url="http://127.0.0.1:1"), FailureKind.REJECTED),
    (InvalidSecret("Invalid worker secret", function="workers:register"), FailureKind.REJECTED),
    (NotAConvexDeployment("a:b", status=404, route="query", what="HTTP 404"), FailureKind.CONFIG),
    (OpenCodeNotFound(), FailureKind.CONFIG),
    (ConvexUnavailable("refused", sent=False), FailureKind.TRANSIENT),
    (BackendFault("Server Error", function="workers:heartbeat"), FailureKind.TRANSIENT),
    (OpenCodeError(None, "unreachable"), FailureKind.TRANSIENT),
    (OpenCodeError(400, "bad request"), FailureKind.TRANSIENT),
    (OpenCodeStartError("exited", ["boom"]), FailureKind.TRANSIENT),
    (OpenCodeUnavailable("OpenCode failed to start"), FailureKind.TRANSIENT),
    (ConfigError("workers.json: bad"), FailureKind.TRANSIENT),
    (OcoError("another expected failure"), FailureKind.TRANSIENT),
    (ConvexFunctionError("Uncaught Error: boom"), FailureKind.BACKEND),
    (WorkerNotApproved("", function="workers:heartbeat"), FailureKind.BACKEND),
    (SessionNotFound("Session not found"), FailureKind.BACKEND),
    (MessageNotFound("Message not found"), FailureKind.BACKEND),
    (ConvexError({"code": 1}, "boom"), FailureKind.BACKEND),
    (ConvexRequestError("BadRequest", "no"), FailureKind.BACKEND),
    (ConvexAuthError(401), FailureKind.BACKEND),
    (ConvexProtocolError("a:b", "$.x", "missing"), FailureKind.BACKEND),
    (ValueError("a bug"), FailureKind.CRASH),
    (KeyError("a bug"), FailureKind.CRASH),
]


@pytest.mark.parametrize(("error", "kind"), KINDS, ids=lambda v: type(v).__name__)
def test_each_adapter_error_has_the_kind_the_supervisor_acts_on(error: Exception, kind: FailureKind) -> None:
    assert classify(error) == (kind, error)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, FailureKind.TRANSIENT),
        (503, FailureKind.TRANSIENT),
        (429, FailureKind.TRANSIENT),
        (409, FailureKind.BACKEND),
        (418, FailureKind.BACKEND),
    ],
)
def test_an_http_status_outside_the_api_is_transient_only_for_5xx_and_429(
    status: int, kind: FailureKind
) -> None:
    error = server_error(status, function="a:b")
    assert classify(error) == (kind, error)


def test_a_rejection_decides_over_a_bug_and_an_outage_in_the_same_group() -> None:
    rejected = WorkerNotFound("Worker not found")
    group = ExceptionGroup("attempt", [ValueError("bug"), ConvexUnavailable("x", sent=True), rejected])
    assert classify(group) == (FailureKind.REJECTED, rejected)


def test_a_bug_is_not_hidden_behind_an_outage_that_happened_at_the_same_time() -> None:
    bug = RuntimeError("bug")
    group = ExceptionGroup("attempt", [ConvexUnavailable("x", sent=True), ExceptionGroup("inner", [bug])])
    assert classify(group) == (FailureKind.CRASH, bug)


def test_a_configuration_error_decides_over_an_outage() -> None:
    config = OpenCodeNotFound()
    group = ExceptionGroup("attempt", [OpenCodeError(None, "x"), config])
    assert classify(group) == (FailureKind.CONFIG, config)
