"""Each package's public face is pinned: its `__all__` is exactly the list written here.

A package exports what other packages, the scripts, the benchmarks or the tests import from
it, and what its docstring presents as its API to users (oco.worker's `Lifecycle`,
oco.orchestrator's `ConvexLink` and `ControlError`); what only the package itself uses stays
in its private modules. Adding or removing a public name is a decision: make it by editing the
package's list below, kept in isort's order (CONSTANTS, then Classes, then functions).
"""

from __future__ import annotations

import importlib
import types

import pytest

EXPECTED: dict[str, list[str]] = {
    "oco.config": [
        "DEV_SETTINGS",
        "EXAMPLE_TOKEN",
        "TOKEN_FORMAT",
        "ConfigError",
        "ConfigProblem",
        "LoadedConfig",
        "Settings",
        "Token",
        "TokenError",
        "WorkerConfig",
        "ensure_private_dir",
        "is_loopback_host",
        "load_dotenv_config",
        "load_workers_file",
        "normalise_convex_url",
        "parse_token",
        "state_dir",
        "template_text",
        "workers_file_path",
        "write_private_file",
    ],
    "oco.convex": [
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
        "RetryPolicy",
        "SessionNotFound",
        "Subscription",
        "WorkerDeleted",
        "WorkerNotApproved",
        "WorkerNotFound",
        "WorkerRejected",
        "camel",
        "decode",
        "encode",
        "is_idempotent",
        "is_transient",
        "is_untyped",
        "structure",
    ],
    "oco.domain": [
        "ARRAY_LIMIT",
        "ActiveSession",
        "Backend",
        "ChatMessage",
        "ModelInfo",
        "Registration",
        "SessionDetails",
        "WorkerRecord",
    ],
    "oco.errors": [
        "Misconfigured",
        "NotFound",
        "OcoError",
        "ProtocolViolation",
        "Refused",
        "Rejected",
        "Unavailable",
        "UsageError",
        "describe",
    ],
    "oco.logs": [
        "SecretRedactor",
        "WorkerTag",
        "bind_worker",
        "register_secret",
        "relabel",
        "setup_logging",
        "worker_label",
    ],
    "oco.opencode": [
        "HEALTH_INTERVAL",
        "HEALTH_TIMEOUT",
        "UNRESPONSIVE_NOTE",
        "EventHub",
        "MessageUpdated",
        "OpenCodeClient",
        "OpenCodeError",
        "OpenCodeNotFound",
        "OpenCodeServer",
        "OpenCodeStartError",
        "PartDelta",
        "PartUpdated",
        "PermissionAsked",
        "PermissionDecision",
        "ProcessIdentity",
        "QuestionAsked",
        "ServerKey",
        "SessionError",
        "SessionIdle",
        "SessionStatus",
        "StreamReconnected",
        "TurnResult",
        "describe_error",
        "encode_identity",
        "find_opencode_bin",
        "leftover_pid",
        "list_models_cli",
        "models_from_providers",
        "open_opencode_server",
        "opencode_environment",
        "parse_event",
        "parse_models_output",
        "reconcile",
        "run_turn",
        "server_key",
        "split_model",
        "view",
    ],
    "oco.orchestrator": [
        "LOCK_FILE",
        "STATUS_FILE",
        "AlreadyRunning",
        "ControlError",
        "ConvexConnections",
        "ConvexLink",
        "FailureKind",
        "Lender",
        "Orchestrator",
        "OrchestratorStopping",
        "ReloadPlan",
        "ReloadUnavailable",
        "Reloaded",
        "ResourceLost",
        "RestartPolicy",
        "SlotState",
        "StatusSnapshot",
        "SystemdNotifier",
        "UnknownWorker",
        "WorkerLike",
        "WorkerSlot",
        "WorkerStatus",
        "acquire_lock",
        "classify",
        "format_status_table",
        "pid_alive",
        "read_status",
        "status_exit_code",
        "worker_factory",
    ],
    "oco.testing": [
        "CONVEX_MODES",
        "FAKE_MODEL",
        "IN_PROCESS_URL",
        "NO_OPENCODE",
        "CreatedWorker",
        "DevProject",
        "FakeConvex",
        "FakeConvexServer",
        "FakeFunctionError",
        "FakeLLM",
        "FakeLLMServer",
        "MissingExtra",
        "SyncFaults",
        "fake_models",
        "in_process_connections",
        "in_process_convex",
        "kill_leftovers",
        "make_worker",
        "oco_command",
        "open_oco",
        "opencode_config",
        "opencode_env",
        "output_lines",
        "processes_in",
        "require_hypercorn",
        "run_oco",
        "running_worker",
        "serve_asgi",
        "serve_fake_convex",
        "serve_fake_llm",
        "sync_app",
        "sync_endpoint",
        "trio_ms",
        "wait_gone",
    ],
    "oco.worker": [
        "INTERRUPTED_NOTE",
        "NO_MODEL_NOTE",
        "REMOVED_NOTE",
        "STALE_NOTE",
        "Lifecycle",
        "LiveSettings",
        "ModelCatalog",
        "OpenCodeHost",
        "OpenCodeShare",
        "PendingReply",
        "State",
        "StopControl",
        "Worker",
        "WorkerReport",
        "WorkerRevoked",
        "plan_replies",
    ],
}


def isort_order(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("package", EXPECTED)
def test_all_is_the_pinned_list(package: str) -> None:
    assert EXPECTED[package] == sorted(EXPECTED[package], key=isort_order), "keep the list in isort order"
    assert importlib.import_module(package).__all__ == EXPECTED[package]


@pytest.mark.parametrize("package", EXPECTED)
def test_every_exported_name_exists(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


PACKAGES = [name for name in EXPECTED if hasattr(importlib.import_module(name), "__path__")]
LAZY_MACHINERY = {"TYPE_CHECKING", "lazy_exports"}


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_namespace_holds_nothing_public_beyond_all(package: str) -> None:
    # As httpx pins its namespace: a name imported into __init__ is exported or it is private.
    # Submodules (`oco.convex.api`, `oco.testing._serve`, ...) are attributes too, not exports.
    # (oco.logs and oco.errors are modules: their __all__ alone declares their public face.)
    # A lazy package's machinery (`TYPE_CHECKING`, `lazy_exports`) is not an export either.
    module = importlib.import_module(package)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(module.__all__) - LAZY_MACHINERY == set()
