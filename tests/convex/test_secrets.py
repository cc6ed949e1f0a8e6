"""The worker secret never shows in exception texts or log records, whatever fails."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest
from convex_helpers import backend_for

from oco._retry import CONVEX_CALL
from oco.convex import ConvexException
from oco.testing import FakeConvex, FakeConvexServer, in_process_convex


def assert_clean(secret: str, exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    assert secret not in str(exc) and secret not in repr(exc)
    for attr in vars(exc).values():
        assert secret not in str(attr)
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.__dict__)


async def test_argument_validation_echo_is_redacted(
    server: FakeConvexServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    worker = server.fake.create_worker()
    secret = worker.secret
    from oco.convex import ConvexClient

    async with ConvexClient(server.url) as client:
        with pytest.raises(ConvexException) as caught:
            # the real backend's ArgumentValidationError echoes every argument
            await client.mutation(
                "workers:heartbeat",
                {"machineId": worker.machine_id, "workerId": worker.worker_id, "secret": secret, "extra": 1},
            )
    assert "Object:" in caught.value.message  # type: ignore[attr-defined]
    assert "***" in caught.value.message  # type: ignore[attr-defined]
    assert_clean(secret, caught.value, caplog)


@pytest.mark.real_backoff()
@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 560}, {"hang": True}])
async def test_failures_with_retries_never_leak_the_secret(
    autojump_clock: Any, fault: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeConvex()
    worker = fake.create_worker()
    fake.faults.add(**fault)
    async with in_process_convex(
        fake, retry=attrs.evolve(CONVEX_CALL, attempts=3, wait_jitter=0), attempt_timeout=5
    ) as client:
        backend = backend_for(client, worker)
        with pytest.raises(ConvexException) as caught:
            await backend.register("/p", "dev")
    assert fake.counts["workers:register"] >= 1
    assert_clean(worker.secret, caught.value, caplog)


async def test_wrong_secret_error_does_not_echo_it(
    server: FakeConvexServer, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    worker = server.fake.create_worker()
    with pytest.raises(ConvexException) as caught:
        await backend_for(client, worker, "the-wrong-secret-123").heartbeat()
    assert_clean("the-wrong-secret-123", caught.value, caplog)


def test_fake_call_log_redacts_secret() -> None:
    fake = FakeConvex()
    fake.record("workers:heartbeat", "mutation", {"secret": "abc", "workerId": "w"})
    assert fake.calls[0].args == {"secret": "***", "workerId": "w"}


def test_created_worker_repr_hides_token() -> None:
    worker = FakeConvex().create_worker()
    assert worker.secret not in repr(worker)
