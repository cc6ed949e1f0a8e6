"""Why a worker's call failed, decided from the backend's state instead of the error's text.

A production Convex deployment redacts what a function throws to `[Request ID: …] Server
Error`, so a wrong secret, a deleted worker and a backend fault all look the same. The
worker's record (`workers:getByMachineAndWorker`, public, no secret needed) tells them apart:

- no record: the worker is unknown (deleted in the web app, or a wrong token); deleted, if
  the backend had accepted this token earlier;
- a record, for a function that checks the secret (the reference's register, heartbeat,
  setOffline, markConnected): the secret is wrong, unless the backend accepted this same
  secret earlier, in which case the record's `approvalStatus` may say why (markConnected and
  heartbeat of a worker no longer approved) or the backend itself failed (transient). A text
  that is not redacted (a dev deployment) but is not the backend's wrong-secret text says
  what else went wrong (an argument the backend no longer takes, say): it stands;
- a record, for a function that checks no secret (`workerModels:updateModels`): the failure
  has another cause; the original error stands.

Pure: facts in, an error type (or None: keep the original error) out.
"""

from __future__ import annotations

from oco.convex._errors import (
    BackendFault,
    ConvexException,
    InvalidSecret,
    WorkerDeleted,
    WorkerNotApproved,
    WorkerNotFound,
)
from oco.domain import WorkerRecord

SECRET_CHECKED: frozenset[str] = frozenset(
    {"workers:register", "workers:heartbeat", "workers:setOffline", "workers:markConnected"}
)
# Calls a backend may refuse to a worker that is not approved (the reference does not, but
# trio-oco's lifecycle handles it: back to waiting for approval).
APPROVAL_GATED: frozenset[str] = frozenset({"workers:heartbeat", "workers:markConnected"})


def why_failed(
    function: str, record: WorkerRecord | None, *, secret_accepted: bool, redacted: bool = True
) -> type[ConvexException] | None:
    """The error type a failed `function` call means, given the worker's current record.

    `secret_accepted`: a secret-checked call with this token has succeeded before;
    `redacted`: the error text said nothing (a production deployment).
    """
    if record is None:
        return WorkerDeleted if secret_accepted else WorkerNotFound
    if function not in SECRET_CHECKED:
        return None
    if not secret_accepted:
        return InvalidSecret if redacted else None
    if function in APPROVAL_GATED and record.approval_status != "approved":
        return WorkerNotApproved
    return BackendFault


__all__ = ["APPROVAL_GATED", "SECRET_CHECKED", "why_failed"]
