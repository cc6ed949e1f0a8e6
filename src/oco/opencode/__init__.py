"""The OpenCode layer: the `opencode serve` process, its HTTP client, its event stream, one turn.

bin = find_opencode_bin(settings.opencode_bin)
async with open_opencode_server(bin, directory) as server:
    session_id = await server.client.create_session("My chat")
    result = await run_turn(server, session_id, "hello", "fake/fake-model", timeout=900,
                            on_text=print)
"""

from typing import TYPE_CHECKING

from oco._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers read; at run time a name is imported on first use
    from ._binary import find_opencode_bin, list_models_cli, parse_models_output
    from ._client import OpenCodeClient, models_from_providers, split_model
    from ._environment import opencode_environment
    from ._errors import OpenCodeError, OpenCodeNotFound, OpenCodeStartError
    from ._event_types import (
        MessageUpdated,
        PartDelta,
        PartUpdated,
        PermissionAsked,
        QuestionAsked,
        SessionError,
        SessionIdle,
        SessionStatus,
        StreamReconnected,
        parse_event,
    )
    from ._events import EventHub
    from ._identity import ProcessIdentity, leftover_pid
    from ._identity import encode as encode_identity
    from ._process import open_opencode_server
    from ._server import HEALTH_INTERVAL, HEALTH_TIMEOUT, UNRESPONSIVE_NOTE, OpenCodeServer
    from ._sharing import ServerKey, server_key
    from ._transcript import PermissionDecision, TurnResult, describe_error, reconcile
    from ._turn import run_turn
    from ._view import view

__all__ = [
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
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "._binary": "find_opencode_bin list_models_cli parse_models_output",
        "._client": "OpenCodeClient models_from_providers split_model",
        "._environment": "opencode_environment",
        "._errors": "OpenCodeError OpenCodeNotFound OpenCodeStartError",
        "._event_types": (
            "MessageUpdated PartDelta PartUpdated PermissionAsked QuestionAsked "
            "SessionError SessionIdle SessionStatus StreamReconnected parse_event"
        ),
        "._events": "EventHub",
        "._identity": "ProcessIdentity leftover_pid encode_identity=encode",
        "._process": "open_opencode_server",
        "._server": "HEALTH_INTERVAL HEALTH_TIMEOUT UNRESPONSIVE_NOTE OpenCodeServer",
        "._transcript": "PermissionDecision TurnResult describe_error reconcile",
        "._sharing": "ServerKey server_key",
        "._turn": "run_turn",
        "._view": "view",
    },
)
