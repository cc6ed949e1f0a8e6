"""Why a worker call failed, from the worker's record (`_why.why_failed`) and the outage report."""

from __future__ import annotations

import logging

import pytest

from oco._retry import OutageReport, duration
from oco.convex import (
    BackendFault,
    InvalidSecret,
    WorkerDeleted,
    WorkerNotApproved,
    WorkerNotFound,
    is_transient,
    is_untyped,
)
from oco.convex._errors import ConvexError, ConvexFunctionError, function_error
from oco.convex._why import SECRET_CHECKED, why_failed
from oco.domain import WorkerRecord


def record(approval: str = "approved") -> WorkerRecord:
    return WorkerRecord(
        worker_id="w", machine_id="m", approval_status=approval, status="online", created_at=1.0
    )


@pytest.mark.parametrize("function", sorted(SECRET_CHECKED | {"workerModels:updateModels"}))
def test_no_record_means_unknown_then_deleted_once_the_token_had_worked(function: str) -> None:
    assert why_failed(function, None, secret_accepted=False) is WorkerNotFound
    assert why_failed(function, None, secret_accepted=True) is WorkerDeleted


@pytest.mark.parametrize("approval", ["approved", "pending", "revoked"])
@pytest.mark.parametrize("function", sorted(SECRET_CHECKED))
def test_a_record_and_a_secret_never_accepted_means_a_wrong_secret(function: str, approval: str) -> None:
    assert why_failed(function, record(approval), secret_accepted=False) is InvalidSecret


@pytest.mark.parametrize("function", sorted(SECRET_CHECKED))
def test_a_dev_text_that_is_not_the_wrong_secret_text_stands(function: str) -> None:
    # e.g. "ArgumentValidationError: ..." from a backend whose validator changed: not a secret
    assert why_failed(function, record(), secret_accepted=False, redacted=False) is None
    assert why_failed(function, None, secret_accepted=False, redacted=False) is WorkerNotFound


@pytest.mark.parametrize("function", ["workers:heartbeat", "workers:markConnected"])
def test_a_known_good_secret_and_no_approval_means_not_approved(function: str) -> None:
    assert why_failed(function, record("pending"), secret_accepted=True) is WorkerNotApproved


@pytest.mark.parametrize("function", sorted(SECRET_CHECKED))
def test_a_known_good_secret_and_an_approved_record_means_a_backend_fault(function: str) -> None:
    kind = why_failed(function, record(), secret_accepted=True)
    assert kind is BackendFault
    assert is_transient(kind("[Request ID: 1] Server Error"))


def test_a_function_without_a_secret_keeps_its_own_error_when_the_worker_exists() -> None:
    assert why_failed("workerModels:updateModels", record(), secret_accepted=False) is None


def test_only_texts_that_name_no_contract_type_are_untyped() -> None:
    assert is_untyped(function_error("[Request ID: 1] Server Error"))
    assert is_untyped(ConvexError({"code": 1}, "x"))
    assert not is_untyped(function_error("Uncaught Error: Invalid worker secret. Authentication failed."))
    assert not is_untyped(function_error("Uncaught Error: Worker w1 not found"))
    assert not is_untyped(BackendFault("x"))
    assert type(function_error("boom")) is ConvexFunctionError


def test_a_redacted_rejection_shows_its_reason_not_the_request_id() -> None:
    error = InvalidSecret(
        "[Request ID: 1] Server Error", function="workers:register", url="https://x.convex.cloud"
    )
    assert str(error) == "workers:register: wrong secret in the token"
    assert error.describe() == (
        "wrong secret in the token (calling workers:register on https://x.convex.cloud): "
        "copy the worker's token from the web app again"
    )


def test_an_outage_is_a_warning_at_first_and_then_every_five_minutes() -> None:
    report = OutageReport()
    levels = {t: report.failed(float(t)) for t in range(0, 901, 10)}
    assert [t for t, level in levels.items() if level == logging.WARNING] == [0, 300, 600, 900]
    assert report.recovered(905.0) == 905.0
    assert report.recovered(906.0) is None  # no outage under way
    assert report.failed(1000.0) == logging.WARNING  # a new outage is said at once


def test_durations_read_naturally() -> None:
    assert [duration(s) for s in (5, 60, 299, 3600, 7500)] == [
        "5 s",
        "1 min",
        "4 min",
        "1 h 0 min",
        "2 h 5 min",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "[Request ID: 8c2f5e] Server Error",
        "Server Error",
        "[CONVEX M(workers:register)] [Request ID: a1] Server Error",
        "",
    ],
)
def test_what_a_production_deployment_leaves_counts_as_redacted(text: str) -> None:
    from oco.convex._errors import is_redacted

    assert is_redacted(text)
    assert not is_redacted("[Request ID: 1] Server Error\nUncaught Error: Invalid worker secret")
