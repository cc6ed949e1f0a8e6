"""One chat turn through OpenCode: prompt, stream, answer permissions, reconcile, never hang.

Fixes of the reference worker: text streams as it is produced, every turn
has a deadline and is aborted when it passes or when the caller is cancelled, errors become
a readable sentence instead of an empty answer, and permission questions are answered by
policy so a turn cannot wait for a user who never sees them. A deadline, or a call that
gets no answer, asks the server whether it still answers; one that does not is replaced
(`OpenCodeServer.check_health`) and the turn says so. `run_turn` raises no `OpenCodeError`.

The answer is known before the turn is over: once the assistant message of our prompt finishes
with a final reason (`stop`, `length`, ..., not `tool-calls`), OpenCode's loop only does its
bookkeeping before the session goes idle (40 ms on a quiet machine, over 100 ms on a loaded
one). A caller that passes `on_answer` gets the reconciled answer at that moment and can
complete the reply while `run_turn` still follows the session until it is idle, so the next
prompt to it never meets a busy session.
"""

from __future__ import annotations

import enum
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import trio

from oco._text import external

from ._client import OpenCodeClient, split_model
from ._errors import OpenCodeError
from ._event_types import (
    MessageUpdated,
    PermissionAsked,
    QuestionAsked,
    SessionIdle,
    SessionStatus,
    StreamReconnected,
)
from ._events import EventHub
from ._transcript import PermissionDecision, TurnResult, TurnTranscript, reconcile

log = logging.getLogger("oco.opencode.turn")

CLOCK_SLACK_MS = 50  # OpenCode stamps messages with the same (local) wall clock

OnText = Callable[[str], Awaitable[None]] | Callable[[str], None]
OnAnswer = Callable[["TurnResult"], None]
ABORT_GRACE = 5.0
RECONCILE_WINDOW = 64  # newest messages read to reconcile a turn (a turn is its user message + steps)
# An assistant message that finished for any of these reasons is followed by another step.
CONTINUING_FINISHES = frozenset({"tool-calls", "unknown"})


class TurnEnd(enum.Enum):
    """How following a turn's events ended."""

    IDLE = "idle"  # the session went idle after our turn began: it is done
    ANSWERED = "answered"  # our prompt's last assistant message finished: the answer is final
    CLOSED = "closed"  # the hub closed our channel: the server is gone
    TIMEOUT = "timeout"  # the turn's deadline passed first


class TurnBackend(Protocol):
    """What a turn needs: `OpenCodeServer` fits; so does any object with `client` and `events`
    (and optionally `crashed: trio.Event`, `exit_code`, and `lost`, `check_health()` and
    `failure_message()` as `OpenCodeServer` has them)."""

    client: OpenCodeClient
    events: EventHub


async def run_turn(
    server: TurnBackend,
    session_id: str,
    text: str,
    model: str,
    *,
    timeout: float,
    on_text: OnText | None = None,
    on_answer: OnAnswer | None = None,
    permission_policy: Literal["allow", "reject"] | Callable[[], Literal["allow", "reject"]] = "reject",
) -> TurnResult:
    """Send `text` to the OpenCode session and follow it to the end (or the deadline).

    Text deltas go to `on_text` as they arrive (parts separated by "\\n", so the pieces add up
    to `content`). Failures of OpenCode, the provider, the deadline or the server process come
    back in `TurnResult.error`; cancellation aborts the session and propagates.
    `permission_policy` may be a callable, asked at each permission request (a reload's
    policy then applies to the running turn too).

    `on_answer(result)` is called at most once, as soon as the answer is final (see the module
    docstring), with what `run_turn` then returns once the session is idle; a turn that
    ends otherwise (an error, the deadline, a lost server) never calls it.
    """
    client, hub = server.client, server.events
    try:
        split_model(model)
    except ValueError as exc:
        return TurnResult("", "", [], error=str(exc))
    if _lost(server):
        return TurnResult("", "", [], error=_lost_message(server))

    transcript = TurnTranscript()
    decisions: list[PermissionDecision] = []
    settled = False  # we reached an outcome (not cancelled); no abort needed on exit

    async def deliver(pieces: list[str]) -> None:
        for piece in pieces:
            if on_text is not None:
                maybe = on_text(piece)
                if inspect.isawaitable(maybe):
                    await maybe

    async def follow(events: trio.MemoryReceiveChannel, *, until_answer: bool = False) -> TurnEnd:
        """Consume our session's events; return how the turn ended (`until_answer`: or that
        its answer is final)."""
        async for event in events:
            if isinstance(event, PermissionAsked):
                policy = permission_policy() if callable(permission_policy) else permission_policy
                decisions.append(await _answer(client, event, policy))
                continue
            if isinstance(event, QuestionAsked):
                # Nobody can answer in the chat while the turn runs: dismiss it instead of hanging.
                log.info("dismissing question %s asked in %s", external(event.id, 100), session_id)
                await client.reject_question(event.id)
                continue
            if isinstance(event, StreamReconnected):
                # Events were lost in the gap: ask whether the session is still working.
                if session_id not in await client.session_status():
                    return TurnEnd.IDLE
                continue
            if isinstance(event, SessionStatus) and event.status.get("type") == "busy":
                transcript.started = True
            await deliver(transcript.feed(event))
            if isinstance(event, SessionIdle) and transcript.started:
                return TurnEnd.IDLE
            if until_answer and isinstance(event, MessageUpdated) and answer_final(event.info, transcript):
                return TurnEnd.ANSWERED
        return TurnEnd.CLOSED

    async def reconciled(error: str | None) -> TurnResult:
        """The turn's outcome from OpenCode's stored messages (the stream is best effort)."""
        try:
            # The newest messages hold the whole turn unless it took more steps than the window
            # (then the user message is missing from it, and every message is read): a long
            # chat's history is not fetched on every turn, nor can it outgrow the body bound.
            messages = await client.messages(session_id, last=RECONCILE_WINDOW)
            if not any(_id_of(m) == transcript.user_message_id for m in messages or ()):
                messages = await client.messages(session_id)
        except OpenCodeError as exc:
            log.warning("could not reconcile turn in %s: %s", session_id, exc)
            messages = None
        final = reconcile(messages, transcript.user_message_id, text) if messages else None
        result = final or transcript.result()
        return _finish(result, error or result.error or transcript.result().error, decisions)

    answer: TurnResult | None = None  # handed to `on_answer` before the session went idle

    with hub.subscribe(session_id) as events:
        try:
            outcome = TurnEnd.TIMEOUT
            try:
                with trio.move_on_after(timeout):
                    transcript.not_before_ms = time.time() * 1000 - CLOCK_SLACK_MS
                    await client.prompt_async(session_id, text, model)
                    outcome = await follow(events, until_answer=on_answer is not None)
                    if outcome is TurnEnd.ANSWERED:
                        answer = await reconciled(None)
                        assert on_answer is not None
                        on_answer(answer)
                        # OpenCode's bookkeeping, then idle: the next prompt finds it idle.
                        outcome = await follow(events)
                if answer is not None:
                    settled = True
                    if outcome is TurnEnd.TIMEOUT:
                        log.info(
                            "session %s still busy after its answer at the deadline; aborting", session_id
                        )
                        with trio.move_on_after(ABORT_GRACE):
                            try:
                                await client.abort(session_id)
                            except OpenCodeError as exc:
                                log.warning("could not abort %s after its deadline: %s", session_id, exc)
                    return answer
            except OpenCodeError as exc:
                settled = True
                if answer is not None:
                    return answer  # a call after the answer failed: the answer stands
                if _lost(server) or (exc.status is None and not await _answers(server)):
                    return _finish(transcript.result(), _lost_message(server), decisions)
                return _finish(transcript.result(), f"OpenCode failed: {exc}", decisions)
            if outcome is TurnEnd.CLOSED or _lost(server):
                settled = True
                return _finish(transcript.result(), _lost_message(server), decisions)
            error = None
            if outcome is TurnEnd.TIMEOUT:
                error = f"timed out after {timeout:g} s"
                log.info("turn in %s timed out after %g s; aborting", session_id, timeout)
                # A deadline can mean a slow model or a server that stopped answering: ask it.
                if not await _answers(server):
                    settled = True
                    return _finish(transcript.result(), _lost_message(server), decisions)
                with trio.move_on_after(ABORT_GRACE):
                    try:
                        await client.abort(session_id)
                        await follow(events)  # collect what was produced up to the abort
                    except OpenCodeError as exc:
                        log.warning("could not abort %s after its deadline: %s", session_id, exc)
            settled = True
            if _lost(server):
                return _finish(transcript.result(), _lost_message(server), decisions)
            return await reconciled(error)
        finally:
            if not settled and not _lost(server):
                # Cancelled (or failed): stop OpenCode working for nobody, even under cancellation.
                with trio.move_on_after(ABORT_GRACE, shield=True):
                    try:
                        await client.abort(session_id)
                    except OpenCodeError as exc:
                        log.warning("could not abort %s: %s", session_id, exc)


def answer_final(info: dict[str, Any], transcript: TurnTranscript) -> bool:
    """Whether `message.updated` `info` says our prompt's answer is final (pure).

    OpenCode's loop ends after an assistant message of the prompt finished for a reason other
    than `CONTINUING_FINISHES`; its text parts were stored (and their events sent) before the
    finish. An error, a compaction summary, or another prompt's message is not our answer: the
    turn then ends at idle as before.
    """
    finish = info.get("finish")
    return (
        info.get("role") == "assistant"
        and transcript.user_message_id is not None
        and info.get("parentID") == transcript.user_message_id
        and isinstance(finish, str)
        and bool(finish)
        and finish not in CONTINUING_FINISHES
        and not info.get("error")
        and not info.get("summary")
    )


def _id_of(message: object) -> object:
    """A stored message's id (`{info: {id}}`), or None for anything else."""
    info = message.get("info") if isinstance(message, dict) else None
    return info.get("id") if isinstance(info, dict) else None


def _lost(server: object) -> bool:
    """The server crashed or stopped answering (an `OpenCodeServer`; other backends: crashed)."""
    lost = getattr(server, "lost", None)
    if isinstance(lost, bool):
        return lost
    crashed = getattr(server, "crashed", None)
    return crashed is not None and crashed.is_set()


async def _answers(server: object) -> bool:
    """Whether the server still answers; a backend without health checks is assumed to."""
    check = getattr(server, "check_health", None)
    return True if check is None else await check()


def _lost_message(server: object) -> str:
    message = getattr(server, "failure_message", None)
    if message is not None:
        return message()
    return f"OpenCode stopped unexpectedly (exit code {getattr(server, 'exit_code', None)})"


def _finish(result: TurnResult, error: str | None, decisions: list[PermissionDecision]) -> TurnResult:
    return TurnResult(result.content, result.reasoning, result.other_parts, error, list(decisions))


async def _answer(client: OpenCodeClient, event: PermissionAsked, policy: str) -> PermissionDecision:
    reply: Literal["once", "reject"] = "once" if policy == "allow" else "reject"
    log.info(
        "permission %s for %s %s: %s",
        external(event.id, 100),
        external(event.permission, 100),
        external(event.patterns, 200),
        reply,
    )
    await client.reply_permission(event.id, reply)
    return PermissionDecision(event.id, event.permission, event.patterns, reply)
