"""OpenCode's `/event` stream as typed events: what each event says, and `parse_event`.

Pure (attrs and the standard library only), like h11's `_events.py`: the hub that reads the
stream (`_events.EventHub`), the turn driver and the transcript all speak these types, and
the transcript's rules are tested without a server. Fields are checked when an event is
built, so a payload with junk in a field reads as no event instead of failing inside a turn.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from oco._text import external

log = logging.getLogger("oco.opencode.events")

# Fields are checked when an event is built, so a payload with junk in a field parse_event
# reads becomes None there (TypeError) instead of failing later inside a turn.
_STR = attrs.validators.instance_of(str)
_DICT = attrs.validators.instance_of(dict)


@attrs.frozen
class PartDelta:
    """`message.part.delta`: text appended to a part's `field` (usually "text")."""

    session_id: str = attrs.field(validator=_STR)
    message_id: str = attrs.field(validator=_STR)
    part_id: str = attrs.field(validator=_STR)
    field: str = attrs.field(validator=_STR)
    delta: str = attrs.field(validator=_STR)


@attrs.frozen
class PartUpdated:
    """`message.part.updated`: the whole part as it is now (text, reasoning, tool, step-*)."""

    session_id: str = attrs.field(validator=_STR)
    part: dict[str, Any] = attrs.field(validator=_DICT)


@attrs.frozen
class MessageUpdated:
    """`message.updated`: a message's `info` (role, parentID, time, error …)."""

    session_id: str = attrs.field(validator=_STR)
    info: dict[str, Any] = attrs.field(validator=_DICT)


@attrs.frozen
class SessionStatus:
    """`session.status`: `{"type": "busy" | "idle" | "retry", …}`."""

    session_id: str = attrs.field(validator=_STR)
    status: dict[str, Any] = attrs.field(validator=_DICT)


@attrs.frozen
class SessionIdle:
    session_id: str = attrs.field(validator=_STR)


@attrs.frozen
class SessionError:
    """`session.error`: `error` is `{name, data}` (may be absent)."""

    session_id: str = attrs.field(validator=_STR)
    error: dict[str, Any] | None = attrs.field(validator=attrs.validators.optional(_DICT))


@attrs.frozen
class PermissionAsked:
    """`permission.asked`: OpenCode waits for `POST /permission/{id}/reply`."""

    session_id: str = attrs.field(validator=_STR)
    id: str = attrs.field(validator=_STR)
    permission: str = attrs.field(validator=_STR)
    patterns: list[str] = attrs.field(
        validator=attrs.validators.deep_iterable(_STR, attrs.validators.instance_of(list))
    )


@attrs.frozen
class QuestionAsked:
    """`question.asked`: the agent's `question` tool waits for an answer nobody in the chat can give."""

    session_id: str = attrs.field(validator=_STR)
    id: str = attrs.field(validator=_STR)
    questions: list[Any]


@attrs.frozen
class ServerHeartbeat:
    pass


@attrs.frozen
class ServerConnected:
    pass


@attrs.frozen
class StreamReconnected:
    """Synthetic: the stream was re-opened, so events may have been missed."""


Event = (
    PartDelta
    | PartUpdated
    | MessageUpdated
    | SessionStatus
    | SessionIdle
    | SessionError
    | PermissionAsked
    | QuestionAsked
    | ServerHeartbeat
    | ServerConnected
    | StreamReconnected
)


def parse_event(data: Any) -> Event | None:
    """One decoded `/event` payload → a typed event; None for types we do not use or bad shapes."""
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    p = data.get("properties") or {}
    if not isinstance(p, dict):
        return None
    try:
        match kind:
            case "message.part.delta":
                return PartDelta(p["sessionID"], p["messageID"], p["partID"], p["field"], p["delta"])
            case "message.part.updated":
                part = p["part"]
                return PartUpdated(p.get("sessionID") or part["sessionID"], part)
            case "message.updated":
                info = p["info"]
                return MessageUpdated(p.get("sessionID") or info["sessionID"], info)
            case "session.status":
                return SessionStatus(p["sessionID"], p["status"])
            case "session.idle":
                return SessionIdle(p["sessionID"])
            case "session.error":
                if not p.get("sessionID"):
                    return None  # not about a session we could route it to
                return SessionError(p["sessionID"], p.get("error"))
            case "permission.asked":
                return PermissionAsked(
                    p["sessionID"], p["id"], p["permission"], list(p.get("patterns") or [])
                )
            case "question.asked":
                return QuestionAsked(p["sessionID"], p["id"], list(p.get("questions") or []))
            case "server.heartbeat":
                return ServerHeartbeat()
            case "server.connected":
                return ServerConnected()
    except (KeyError, TypeError):
        log.debug("ignoring malformed %s event", external(kind, 80))
    return None
