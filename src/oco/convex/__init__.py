"""The Convex layer: an HTTP client with typed errors and retries, and the worker's backend API.

`ConvexClient` speaks the Convex HTTP API (`convex_encoded_json`);
`oco.convex.api.WorkerBackend` wraps the functions the worker calls. `ConvexSubscriptions`
carries live queries over the sync protocol (one websocket). Sharing one of each per URL is
the orchestrator's business (`oco.orchestrator.ConvexConnections`), not a registry here.
"""

from typing import TYPE_CHECKING

from oco._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers read; at run time a name is imported on first use
    from oco.convex._client import DEFAULT_TIMEOUT, ConvexClient, RetryPolicy
    from oco.convex._codec import CodecError, Int64, decode, encode
    from oco.convex._convert import camel, structure, unstructure
    from oco.convex._errors import (
        BackendFault,
        ConvexAuthError,
        ConvexError,
        ConvexException,
        ConvexFunctionError,
        ConvexProtocolError,
        ConvexRequestError,
        ConvexServerError,
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
        WorkerRejected,
        describe,
        is_transient,
        is_untyped,
    )
    from oco.convex._functions import IDEMPOTENT_MUTATIONS, is_idempotent
    from oco.convex._sync_client import ConvexSubscriptions, Subscription, SyncQueryError, sync_url
    from oco.convex._sync_state import QueryError, QuerySuccess

__all__ = [
    "DEFAULT_TIMEOUT",
    "IDEMPOTENT_MUTATIONS",
    "BackendFault",
    "CodecError",
    "ConvexAuthError",
    "ConvexClient",
    "ConvexError",
    "ConvexException",
    "ConvexFunctionError",
    "ConvexProtocolError",
    "ConvexRequestError",
    "ConvexServerError",
    "ConvexServerUnavailable",
    "ConvexSubscriptions",
    "ConvexUnavailable",
    "ConvexUnexpectedStatus",
    "Int64",
    "InvalidSecret",
    "MessageNotFound",
    "NotAConvexDeployment",
    "QueryError",
    "QuerySuccess",
    "RetryPolicy",
    "SessionNotFound",
    "Subscription",
    "SyncQueryError",
    "WorkerDeleted",
    "WorkerNotApproved",
    "WorkerNotFound",
    "WorkerRejected",
    "camel",
    "decode",
    "describe",
    "encode",
    "is_idempotent",
    "is_transient",
    "is_untyped",
    "structure",
    "sync_url",
    "unstructure",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "._client": "DEFAULT_TIMEOUT ConvexClient RetryPolicy",
        "._codec": "CodecError Int64 decode encode",
        "._convert": "camel structure unstructure",
        "._errors": (
            "BackendFault ConvexAuthError ConvexError ConvexException ConvexFunctionError "
            "ConvexProtocolError ConvexRequestError ConvexServerError ConvexServerUnavailable "
            "ConvexUnavailable ConvexUnexpectedStatus InvalidSecret MessageNotFound "
            "NotAConvexDeployment SessionNotFound WorkerDeleted WorkerNotApproved "
            "WorkerNotFound WorkerRejected describe is_transient is_untyped"
        ),
        "._functions": "IDEMPOTENT_MUTATIONS is_idempotent",
        "._sync_client": "ConvexSubscriptions Subscription SyncQueryError sync_url",
        "._sync_state": "QueryError QuerySuccess",
    },
)
