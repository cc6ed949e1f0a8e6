"""Completing a reply: the final content within Convex's limits, sent until Convex has it.

Two halves. `reply_from_turn` / `reply_from_note` decide, without I/O, what the completed
message says: never empty, every field within Convex's limits (`_limits`), a visible marker
where text was cut. `ReplyCompleter.complete` sends it and retries, with backoff, for as
long as it takes: `completeStructuredMessage` and `completeMessage` are idempotent patches,
so repeating one is safe, and an outage the process outlives must not leave a reply open.
Only the caller's cancellation (a stop) cuts it short; the caller then leaves the reply
begun, and the next run answers it.

Why a call failed is decided from state, not from error text (a production deployment
redacts it to "Server Error"): on a refusal the completer asks the backend whether the
message still exists (`chat:subscribeToWorkerMessages`). Only a message provably gone (or
already completed) ends the retries (the `REPLY_COMPLETION` policy, in `oco._retry`); a
typed `MessageNotFound`/`SessionNotFound` (the dev deployment's text) is the fast path to
the same answer. A message that exists but keeps being refused gets a smaller completion
every few refusals: the plain content without reasoning and tool parts, then a short note.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence

import attrs

from oco._retry import REPLY_COMPLETION, OutageReport, TryAgain, retrying
from oco._text import external
from oco.convex import is_transient
from oco.domain import Backend
from oco.errors import NotFound, OcoError, Rejected
from oco.opencode import PermissionDecision, TurnResult

from ._limits import MESSAGE_BUDGET, OTHER_PARTS_LIMIT, REASONING_LIMIT, fit, json_size
from ._parts import encode_other_parts
from ._planner import PendingReply

log = logging.getLogger(__name__)

EMPTY_REPLY = "(The agent finished without a text reply.)"
REFUSALS_PER_STAGE = 3  # refusals of one form of the completion before a smaller one is sent
NOTE_LIMIT = 16 * 1024  # an error or status note


class Outcome(enum.Enum):
    """How a completion ended (it has no failure: it is retried until one of these)."""

    LANDED = "landed"  # Convex has the reply completed, by this call or an earlier one
    GONE = "gone"  # the message or its session no longer exists: nothing left to complete


class Fate(enum.Enum):
    """What the backend's state says about a reply."""

    OPEN = "open"
    COMPLETED = "completed"
    GONE = "gone"
    UNKNOWN = "unknown"  # the state could not be read (the query was refused)


@attrs.frozen
class FinalReply:
    """What a reply is completed with; every field already fits Convex's limits.

    `structured`: sent with `completeStructuredMessage` (reasoning and tool parts), else with
    `completeMessage` (an error or a note). `opencode_session` names where the full text is.
    """

    content: str
    reasoning: str | None = None
    other_parts: str | None = None
    structured: bool = False
    opencode_session: str | None = None


def joined(text: str, note: str) -> str:
    return f"{text.rstrip()}\n\n{note}" if text.strip() else note


def rejected_note(permissions: Sequence[PermissionDecision]) -> str | None:
    """What to say when the turn produced no text because a tool call was rejected."""
    tools = sorted({d.permission for d in permissions if d.reply == "reject"})
    if not tools:
        return None
    calls = "tool call was" if len(tools) == 1 else "tool calls were"
    return f"(The agent's {calls} rejected by the permission policy: {', '.join(tools)}.)"


def reply_from_turn(result: TurnResult, streamed: str, *, opencode_session: str | None) -> FinalReply:
    """The completion for a finished turn: its answer, or its text plus the error."""
    text = result.content if result.content.strip() else streamed
    if result.error:
        return reply_from_note(text, f"Error: {result.error}", opencode_session=opencode_session)
    if not text.strip():
        text = rejected_note(result.permissions) or EMPTY_REPLY
    other_parts = encode_other_parts(result.other_parts, OTHER_PARTS_LIMIT)
    reasoning = (
        fit(result.reasoning, REASONING_LIMIT, "reasoning", opencode_session) if result.reasoning else None
    )
    # content, reasoning and otherParts are fields of one document: content gets the rest.
    room = MESSAGE_BUDGET - _size(reasoning) - _size(other_parts)
    content = fit(text, room, "answer", opencode_session)
    return FinalReply(content, reasoning, other_parts, structured=True, opencode_session=opencode_session)


def reply_from_note(streamed: str, note: str, *, opencode_session: str | None = None) -> FinalReply:
    """A plain completion: what was streamed (cut to fit) followed by `note` (bounded too:
    an error sentence may quote a peer)."""
    note = fit(note, NOTE_LIMIT, "note", None)
    room = MESSAGE_BUDGET - json_size("\n\n" + note) + 2  # the two share one pair of quotes
    text = fit(streamed, room, "answer", opencode_session) if streamed.strip() else ""
    return FinalReply(joined(text, note), opencode_session=opencode_session)


def refused_note(opencode_session: str | None) -> str:
    where = f" The full text is in OpenCode session {opencode_session}." if opencode_session else ""
    return f"Error: the chat backend refused to store this answer; please resend.{where}"


def _size(value: str | None) -> int:
    return json_size(value) if value is not None else 0


def _smaller_forms(final: FinalReply) -> list[FinalReply]:
    """`final`, then the smaller completions sent when Convex keeps refusing it."""
    forms = [final]
    if final.structured:
        forms.append(FinalReply(final.content, opencode_session=final.opencode_session))
    note = refused_note(final.opencode_session)
    if final.content != note:
        forms.append(FinalReply(note, opencode_session=final.opencode_session))
    return forms


async def reply_fate(backend: Backend, reply_id: str) -> Fate:
    """Whether `reply_id` still exists and is open, from the backend's message list.

    Transient failures propagate (the caller retries); a refused query is `UNKNOWN`.
    """
    try:
        messages = await backend.worker_messages()
    except Rejected:
        raise
    except OcoError as exc:  # the backend's failure (a bug propagates)
        if is_transient(exc):
            raise
        log.debug("could not read the messages to check reply %s: %s", reply_id, exc)
        return Fate.UNKNOWN
    for message in messages:
        if message.id == reply_id:
            return Fate.COMPLETED if message.completed else Fate.OPEN
    return Fate.GONE


class ReplyCompleter:
    """Completes replies through one worker's backend (see the module docstring)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def complete(self, reply: PendingReply, final: FinalReply) -> Outcome:
        """Send `final` until Convex has it or the reply is provably gone.

        Returns only then; raises a rejection (`Rejected`), bugs, and cancellation (the caller's stop).
        """
        reply_id = reply.reply_message_id
        forms = _smaller_forms(final)
        form = 0
        refusals = 0
        async for attempt in retrying(
            REPLY_COMPLETION,
            log=log,
            report=OutageReport(),
            describe=lambda exc: f"completing reply {reply_id} failed ({external(exc)})",
        ):
            with attempt:
                try:
                    await self._send(reply, forms[form])
                except Rejected:
                    raise
                except OcoError as exc:  # the backend's failure (a bug propagates)
                    if is_transient(exc):
                        raise  # the policy retries it
                    if isinstance(exc, NotFound):
                        fate = Fate.GONE
                    else:
                        fate = await reply_fate(self._backend, reply_id)
                    if fate is Fate.GONE:
                        log.info("reply %s no longer exists in Convex; nothing to complete", reply_id)
                        return Outcome.GONE
                    if fate is Fate.COMPLETED:
                        return Outcome.LANDED
                    refusals += 1
                    if refusals % REFUSALS_PER_STAGE == 0 and form + 1 < len(forms):
                        form += 1
                        log.warning("Convex keeps refusing reply %s; sending a smaller completion", reply_id)
                    raise TryAgain(exc) from exc  # refused, but the message is still there
                if attempt.num > 1:
                    log.info("reply %s completed after %d failed attempt(s)", reply_id, attempt.num - 1)
                return Outcome.LANDED
        raise AssertionError("unreachable: the retries are unbounded")  # pragma: no cover

    async def _send(self, reply: PendingReply, final: FinalReply) -> None:
        if final.structured:
            await self._backend.complete_structured(
                reply.session_id, reply.reply_message_id, final.content, final.reasoning, final.other_parts
            )
        else:
            await self._backend.complete_message(reply.session_id, reply.reply_message_id, final.content)
