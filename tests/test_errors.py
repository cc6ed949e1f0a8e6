"""The neutral error taxonomy: each adapter error sits under the neutral type the worker and
the supervisor act on, and the one-line descriptions did not change on the way."""

from __future__ import annotations

import pytest

from oco.convex import (
    BackendFault,
    ConvexAuthError,
    ConvexError,
    ConvexFunctionError,
    ConvexProtocolError,
    ConvexRequestError,
    ConvexServerUnavailable,
    ConvexUnavailable,
    ConvexUnexpectedStatus,
    InvalidSecret,
    MessageNotFound,
    NotAConvexDeployment,
    SessionNotFound,
    WorkerDeleted,
    WorkerNotApproved,
    WorkerNotFound,
    is_transient,
)
from oco.convex._errors import server_error
from oco.convex._sync_client import SyncQueryError
from oco.convex._sync_protocol import SyncProtocolError
from oco.errors import (
    Misconfigured,
    NotFound,
    OcoError,
    ProtocolViolation,
    Refused,
    Rejected,
    Unavailable,
    describe,
)
from oco.opencode import OpenCodeError, OpenCodeNotFound, OpenCodeStartError
from oco.worker._opencode_host import OpenCodeUnavailable

NEUTRAL = (Unavailable, Refused, Rejected, NotFound, ProtocolViolation, Misconfigured)

MAPPING = [
    (ConvexUnavailable("refused", sent=False), {Unavailable}),
    (server_error(503), {Unavailable}),
    (server_error(429), {Unavailable}),
    (BackendFault("[Request ID: 1] Server Error"), {Unavailable}),
    (OpenCodeError(None, "unreachable"), {Unavailable}),
    (OpenCodeError(500, "boom"), {Unavailable}),
    (OpenCodeStartError("exited", []), {Unavailable}),
    (OpenCodeUnavailable("OpenCode failed to start"), {Unavailable}),
    (ConvexFunctionError("boom"), {Refused}),
    (WorkerNotApproved(""), {Refused}),
    (ConvexError("data"), {Refused}),
    (ConvexRequestError("BadRequest", "no"), {Refused}),
    (ConvexAuthError(403), {Refused}),
    (SyncQueryError("a:b", "failed"), {Refused}),
    (InvalidSecret("Invalid worker secret"), {Refused, Rejected}),
    (WorkerNotFound("Worker not found"), {Refused, Rejected, NotFound}),
    (WorkerDeleted(""), {Refused, Rejected, NotFound}),
    (SessionNotFound("Session not found"), {Refused, NotFound}),
    (MessageNotFound("Message not found"), {Refused, NotFound}),
    (ConvexProtocolError("a:b", "$", "bad"), {ProtocolViolation}),
    (server_error(418), {ProtocolViolation}),
    (SyncProtocolError("not JSON"), {ProtocolViolation}),
    (
        NotAConvexDeployment("a:b", status=404, route="query", what="HTTP 404"),
        {ProtocolViolation, Misconfigured},
    ),
    (OpenCodeNotFound(), {Misconfigured}),
]


@pytest.mark.parametrize(("error", "neutral"), MAPPING, ids=lambda v: type(v).__name__)
def test_each_adapter_error_is_exactly_its_neutral_types(error: OcoError, neutral: set[type]) -> None:
    assert {kind for kind in NEUTRAL if isinstance(error, kind)} == neutral


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, ConvexServerUnavailable),
        (502, ConvexServerUnavailable),
        (599, ConvexServerUnavailable),
        (429, ConvexServerUnavailable),
        (409, ConvexUnexpectedStatus),
        (418, ConvexUnexpectedStatus),
        (422, ConvexUnexpectedStatus),
    ],
)
def test_an_http_status_outside_the_api_is_mapped_once_by_whether_it_heals(status: int, kind: type) -> None:
    error = server_error(status, function="a:b")
    assert type(error) is kind and error.status == status
    assert is_transient(error) is (kind is ConvexServerUnavailable)


def test_only_convex_failures_are_transient_for_the_convex_retries() -> None:
    # An OpenCode failure is Unavailable too, but a Convex retry must not repeat OpenCode calls.
    assert not is_transient(OpenCodeError(None, "unreachable"))
    assert not is_transient(OpenCodeUnavailable("gone"))
    assert is_transient(ConvexUnavailable("x", sent=True)) and is_transient(BackendFault("x"))


def test_describe_says_one_line_for_expected_failures_and_names_the_type_of_a_bug() -> None:
    assert describe(OcoError("\x1b[2Jplain\nline")) == "plain\\nline"
    assert describe(OcoError()) == "OcoError"
    assert describe(ValueError("bad")) == "ValueError: bad"
    assert describe(ValueError()) == "ValueError"
    unreachable = ConvexUnavailable("connection refused", sent=False, function="workers:register")
    unreachable.url = "http://127.0.0.1:9"
    assert describe(unreachable) == (
        "cannot reach http://127.0.0.1:9 (connection refused) calling workers:register: "
        "check the network and convex_url"
    )
    fault = BackendFault("Uncaught Error: disk full\n  at handler", function="workers:heartbeat")
    fault.url = "http://127.0.0.1:9"
    assert str(fault) == "workers:heartbeat: disk full"
    assert describe(fault) == (
        "disk full (calling workers:heartbeat on http://127.0.0.1:9): "
        "see the deployment's logs (npx convex logs)"
    )
