"""What one turn produced, decided without I/O: error sentences, streamed state, reconciliation.

The trio driver (`_turn.py`) feeds events in and asks for the result; everything here is pure
so the rules are tested directly.
"""

from __future__ import annotations

from typing import Any

import attrs

from oco._text import external

from ._event_types import Event, MessageUpdated, PartDelta, PartUpdated, SessionError

_MAX_DETAIL = 500


@attrs.frozen
class PermissionDecision:
    """A permission OpenCode asked for during the turn and how we answered."""

    id: str
    permission: str
    patterns: list[str]
    reply: str  # "once" | "reject"


@attrs.frozen
class TurnResult:
    """The outcome of one prompt: text, reasoning, other parts (tools, steps) and any error."""

    content: str
    reasoning: str
    other_parts: list[dict[str, Any]]
    error: str | None = None
    permissions: list[PermissionDecision] = attrs.field(factory=list)


def _detail(text: Any) -> str:
    """OpenCode's (or the provider's) words, inert and bounded, for a chat reply and the logs."""
    text = " ".join(str(text or "").split())
    return external(text, _MAX_DETAIL)


def describe_error(error: Any) -> str:
    """An OpenCode error object `{name, data}` → one readable sentence for the chat."""
    if not isinstance(error, dict):
        return f"OpenCode failed: {_detail(error)}"
    name = external(error.get("name") or "UnknownError", 100)
    data = d if isinstance(d := error.get("data"), dict) else {}
    message = _detail(data.get("message") or error.get("message") or "")
    match name:
        case "APIError":
            status = data.get("statusCode")
            if isinstance(status, int) and 400 <= status < 500:
                return f"The model provider rejected the request (HTTP {status}): {message}"
            if isinstance(status, int):
                return f"The model provider failed (HTTP {status}): {message}"
            return f"The model provider request failed: {message}"
        case "ProviderAuthError":
            return f"Provider authentication failed: {message}"
        case "MessageAbortedError":
            return "The request was aborted."
        case "MessageOutputLengthError":
            return "The answer was cut off at the model's output length limit."
        case "ContextOverflowError":
            return f"The conversation no longer fits the model's context window: {message}"
        case "ContentFilterError":
            return f"The model provider's content filter blocked the answer: {message}"
        case "StructuredOutputError":
            return f"The model did not produce the required structured output: {message}"
        case _:
            return f"OpenCode failed ({name}): {message}" if message else f"OpenCode failed ({name})."


@attrs.define
class TurnTranscript:
    """The turn as seen on the event stream: part types, streamed text, the first error."""

    part_types: dict[str, str] = attrs.field(factory=dict)
    pending: dict[str, list[str]] = attrs.field(factory=dict)  # deltas before the part's type is known
    text_parts: list[str] = attrs.field(factory=list)  # part ids of text parts, in order
    streamed: dict[str, str] = attrs.field(factory=dict)  # part id → text so far
    reasoning: dict[str, str] = attrs.field(factory=dict)
    other: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    user_message_id: str | None = None
    # Our prompt was sent at this wall-clock time (ms). OpenCode also re-sends *earlier* user
    # messages (e.g. summaries after a turn), so only one created since then can be ours.
    not_before_ms: float | None = None
    user_ids: set[str] = attrs.field(factory=set)  # every user message seen: its parts are not ours
    error: dict[str, Any] | None = None
    started: bool = False  # our turn has begun (user message stored or session busy)

    def feed(self, event: Event) -> list[str]:
        """Take one event of our session; return the text to stream to the user now."""
        match event:
            case MessageUpdated(info=info):
                if info.get("role") == "user" and isinstance(info.get("id"), str) and info["id"]:
                    self.user_ids.add(info["id"])
                if info.get("role") == "user" and self.user_message_id is None and self._ours(info):
                    self.user_message_id = info.get("id")
                    self.started = True
                elif info.get("role") == "assistant" and info.get("error") and self.error is None:
                    self.error = info["error"]
            case SessionError(error=error):
                if error and self.error is None:
                    self.error = error
            case PartUpdated(part=part):
                return self._part(part)
            case PartDelta(part_id=part_id, field=field, delta=delta) if field == "text":
                kind = self.part_types.get(part_id)
                if kind is None:
                    self.pending.setdefault(part_id, []).append(delta)
                elif kind == "text":
                    return self._text(part_id, delta)
                elif kind == "reasoning":
                    self.reasoning[part_id] = self.reasoning.get(part_id, "") + delta
        return []

    def _ours(self, info: dict[str, Any]) -> bool:
        if self.not_before_ms is None:
            return True
        created = (info.get("time") or {}).get("created")
        return isinstance(created, int | float) and created >= self.not_before_ms

    def _part(self, part: dict[str, Any]) -> list[str]:
        part_id, kind, message_id = part.get("id"), part.get("type"), part.get("messageID")
        if not (part_id and kind and isinstance(part_id, str) and isinstance(kind, str)):
            return []  # not a part we can track (OpenCode always sends string ids and types)
        if isinstance(message_id, str) and message_id in self.user_ids:
            return []
        first = part_id not in self.part_types
        self.part_types[part_id] = kind
        out: list[str] = []
        if kind == "text":
            for delta in self.pending.pop(part_id, []):
                out += self._text(part_id, delta)
            # A completed part may carry text the deltas missed (stream is best effort).
            full = str(part.get("text") or "")
            seen = self.streamed.get(part_id, "")
            if full.startswith(seen) and len(full) > len(seen):
                out += self._text(part_id, full[len(seen) :])
        elif kind == "reasoning":
            self.reasoning[part_id] = str(part.get("text") or "".join(self.pending.pop(part_id, [])))
        elif first or part_id in self.other:
            self.other[part_id] = part
        return out

    def _text(self, part_id: str, delta: str) -> list[str]:
        out = []
        if part_id not in self.streamed:
            # Parts are joined with "\n" in the final content; stream the separator too.
            if any(self.streamed.values()):
                out.append("\n")
            self.text_parts.append(part_id)
            self.streamed[part_id] = ""
        self.streamed[part_id] += delta
        out.append(delta)
        return [piece for piece in out if piece]

    def result(self) -> TurnResult:
        """The turn from the stream alone (when the messages cannot be fetched)."""
        return TurnResult(
            content="\n".join(t for t in (self.streamed[p] for p in self.text_parts) if t),
            reasoning="\n".join(t for t in self.reasoning.values() if t),
            other_parts=list(self.other.values()),
            error=describe_error(self.error) if self.error else None,
        )


def _objects(value: Any) -> list[dict[str, Any]]:
    """The dicts of a list; anything else in a body from OpenCode is ignored, not fatal."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _info(message: dict[str, Any]) -> dict[str, Any]:
    info = message.get("info")
    return info if isinstance(info, dict) else {}


def _user_text(message: dict[str, Any]) -> str:
    return "".join(_text_of(p) for p in _objects(message.get("parts")) if p.get("type") == "text")


def _text_of(part: dict[str, Any]) -> str:
    text = part.get("text")
    return text if isinstance(text, str) else ""


def reconcile(messages: Any, user_message_id: str | None, text: str) -> TurnResult | None:
    """The turn from `GET /session/{id}/message`: everything after our user message.

    Our user message is found by id (seen on the stream) or else as the last user message
    with our text. None when it is not there at all (or the body is not a message list).
    """
    messages = _objects(messages)
    index = None
    for i, message in enumerate(messages):
        info = _info(message)
        if info.get("role") != "user":
            continue
        if user_message_id is not None:
            if info.get("id") == user_message_id:
                index = i
        elif _user_text(message) == text:
            index = i
    if index is None:
        return None
    content, reasoning, other = [], [], []
    error = None
    for message in messages[index + 1 :]:
        info = _info(message)
        if info.get("role") != "assistant":
            continue
        if info.get("error") and error is None:
            error = info["error"]
        for part in _objects(message.get("parts")):
            kind = part.get("type")
            if kind == "text" and _text_of(part):
                content.append(_text_of(part))
            elif kind == "reasoning" and _text_of(part):
                reasoning.append(_text_of(part))
            elif kind not in ("text", "reasoning"):
                other.append(part)
    return TurnResult(
        content="\n".join(content),
        reasoning="\n".join(reasoning),
        other_parts=other,
        error=describe_error(error) if error else None,
    )
