"""`WorkerBackend` types a redacted failure from the worker's record, on the fake's prod mode.

Each call that names the worker and fails with a bare `[Request ID: …] Server Error` costs one
more call, `workers:getByMachineAndWorker`, and comes back as the rejection it means.
"""

from __future__ import annotations

import pytest
from convex_helpers import backend_for

from oco.convex import (
    BackendFault,
    ConvexClient,
    ConvexFunctionError,
    InvalidSecret,
    WorkerDeleted,
    WorkerNotFound,
)
from oco.domain import ModelInfo
from oco.testing import FakeConvex

MODELS = [ModelInfo(id="p/m", name="M", provider="p")]


@pytest.fixture
def fake(fake: FakeConvex) -> FakeConvex:
    """The shared in-process fake, answering as a production deployment."""
    fake.prod = True
    return fake


async def test_update_models_of_a_deleted_worker_is_worker_deleted(
    fake: FakeConvex, convex: ConvexClient
) -> None:
    created = fake.create_worker()
    backend = backend_for(convex, created)
    await backend.register("/p", "me")
    fake.remove(created.worker_id)
    before = fake.counts["workers:getByMachineAndWorker"]
    with pytest.raises(WorkerDeleted) as caught:
        await backend.update_models(MODELS)
    assert fake.counts["workerModels:updateModels"] == 1
    assert fake.counts["workers:getByMachineAndWorker"] == before + 1
    assert caught.value.url == "http://fake.convex" and caught.value.function == "workerModels:updateModels"
    assert caught.value.describe().startswith("the worker was deleted in the web app (calling workerModels")


async def test_update_models_of_a_worker_never_seen_is_worker_not_found(
    fake: FakeConvex, convex: ConvexClient
) -> None:
    created = fake.create_worker()
    fake.remove(created.worker_id)
    with pytest.raises(WorkerNotFound) as caught:
        await backend_for(convex, created).update_models(MODELS)
    assert not isinstance(caught.value, WorkerDeleted)


async def test_set_offline_with_a_wrong_secret_is_invalid_secret_and_of_a_missing_worker_is_zero(
    fake: FakeConvex, convex: ConvexClient
) -> None:
    created = fake.create_worker()
    with pytest.raises(InvalidSecret):
        await backend_for(convex, created, secret="NotTheRightOne42").set_offline()
    fake.remove(created.worker_id)
    assert await backend_for(convex, created).set_offline() == 0  # the backend's no-op


async def test_a_redacted_heartbeat_failure_after_a_good_register_is_a_backend_fault(
    fake: FakeConvex, convex: ConvexClient
) -> None:
    created = fake.create_worker()
    backend = backend_for(convex, created)
    await backend.register("/p", "me")
    fake.faults.add(function="workers:heartbeat", status=560, times=1)
    with pytest.raises(BackendFault):
        await backend.heartbeat()
    await backend.heartbeat()  # the next beat goes through


async def test_a_failing_lookup_leaves_the_original_error(fake: FakeConvex, convex: ConvexClient) -> None:
    created = fake.create_worker()
    fake.faults.add(function="workers:getByMachineAndWorker", status=560, times=1)
    with pytest.raises(ConvexFunctionError) as caught:
        await backend_for(convex, created, secret="NotTheRightOne42").register("/p", "me")
    assert type(caught.value) is ConvexFunctionError
    assert created.secret not in str(caught.value)


async def test_on_dev_an_unexpected_text_is_not_taken_for_a_wrong_secret(
    fake: FakeConvex, convex: ConvexClient
) -> None:
    """A dev deployment's text that names no contract error (here a validator that no longer
    takes our arguments) keeps its own words instead of becoming "wrong secret"."""
    fake.prod = False
    created = fake.create_worker()
    fake.faults.add(function="workers:register", status=560, times=1)  # "Uncaught Error: injected fault"
    with pytest.raises(ConvexFunctionError) as caught:
        await backend_for(convex, created).register("/p", "me")
    assert type(caught.value) is ConvexFunctionError and "injected fault" in str(caught.value)
    assert fake.counts["workers:getByMachineAndWorker"] == 1
