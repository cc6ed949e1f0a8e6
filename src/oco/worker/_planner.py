"""Which replies to start, close or report, decided from the backend's message list alone.

The backend is the truth (design.md, "Work is derived from backend state"): nothing is marked
processed before it is answered, so the same inputs always give the same plan, a restart never
loses a message, and a live worker answers each message once because the shell passes the
replies it already has in flight.

Pairing. `chat:sendMessage` writes a user message at `t` and its assistant placeholder at
`t + 1` in one transaction. A placeholder therefore answers the user message immediately
before it in its session; it is never shared. If the backend ever held two user messages
followed by one placeholder (U1, U2, A), A belongs to U2 and U1 is an orphan: answering U1
into A would leave U2 without an answer and write U1's reply under U2. Ties in timestamps keep
the backend's order (stable sort). Two sends in one session within the same millisecond give
U1@t, U2@t, A1@t+1, A2@t+1 after the sort, so a placeholder first pairs with the earliest
waiting user message stamped exactly one millisecond before it (the `sendMessage` rule), and
only without such a match with the latest waiting one. Incomplete user messages take part in
pairing (their placeholder stays theirs) but never produce work.
"""

from __future__ import annotations

from collections.abc import Iterable, Set

import attrs

from oco.domain import ChatMessage

STALE_NOTE = (
    "This message was sent while the worker was offline, so it was not answered. Please send it again."
)
NO_MODEL_NOTE = "Error: no model selected. Choose a model and send the message again."
INTERRUPTED_NOTE = "Interrupted: the worker was stopped"


@attrs.frozen
class PendingReply:
    """A user message whose assistant placeholder is still incomplete.

    `timestamp` is the user message's (Convex milliseconds); `model` is None only in
    `Plan.no_model` (and possibly `Plan.close_stale`).
    """

    session_id: str
    user_message_id: str
    reply_message_id: str
    content: str
    model: str | None
    timestamp: float


@attrs.frozen
class Plan:
    """What the shell should do now; every list is in timestamp order.

    - `start`: run these turns; several in one session come in order and must run one after
      another (the shell serialises per session).
    - `close_stale`: complete the placeholder with `STALE_NOTE` instead of running it.
    - `no_model`: complete the placeholder with `NO_MODEL_NOTE`.
    - `orphans`: completed user messages with no placeholder, not reported before; log each
      once and add its id to the reported set.
    """

    start: tuple[PendingReply, ...] = ()
    close_stale: tuple[PendingReply, ...] = ()
    no_model: tuple[PendingReply, ...] = ()
    orphans: tuple[ChatMessage, ...] = ()


def pair_messages(
    messages: Iterable[ChatMessage],
) -> tuple[list[tuple[ChatMessage, ChatMessage]], list[ChatMessage]]:
    """Pair each user message with its placeholder: (pairs, user messages with none).

    Both lists are in (stable) timestamp order; see the module docstring for the rule.
    """
    ordered = sorted(messages, key=lambda m: m.timestamp)  # sorted() is stable
    waiting: dict[str, list[ChatMessage]] = {}  # session → user messages not yet paired, in order
    pairs: list[tuple[ChatMessage, ChatMessage]] = []
    unpaired: list[ChatMessage] = []
    for message in ordered:
        if message.role == "user":
            waiting.setdefault(message.session_id, []).append(message)
        elif message.role == "assistant":
            users = waiting.get(message.session_id)
            if not users:
                continue
            exact = [i for i, u in enumerate(users) if u.timestamp == message.timestamp - 1]
            index = exact[0] if exact else len(users) - 1
            pairs.append((users[index], message))
            unpaired.extend(users[:index])  # superseded: a later message took their place
            del users[: index + 1]
        # other roles ("system") neither pair nor break a pair
    unpaired.extend(u for users in waiting.values() for u in users)
    unpaired.sort(key=lambda m: m.timestamp)
    # By the user message's time: placeholders of two chats written in the same millisecond
    # would otherwise put the newer message first (stable, so each session keeps its order).
    pairs.sort(key=lambda pair: pair[0].timestamp)
    return pairs, unpaired


def plan_replies(
    messages: Iterable[ChatMessage],
    *,
    in_flight: Set[str],
    now_ms: float,
    stale_age_ms: float,
    online_since_ms: float | None,
    reported_orphans: Set[str] = frozenset(),
) -> Plan:
    """Decide the work for one snapshot of the worker's messages.

    `in_flight`: placeholder ids the shell is already answering *or closing* (they appear in
    no list). `online_since_ms`: when this worker became ready (Convex clock, ms); a pending
    reply whose user message is older than that *and* older than `stale_age_ms` was sent while
    nobody listened and goes to `close_stale`. It is a time rather than a "first plan" flag so
    that a close that failed is simply retried by the next plan, and a message sent while the
    worker was up is never closed as stale. Pass None to never close anything as stale.
    `reported_orphans`: user message ids already logged as orphans.
    """
    pairs, unpaired = pair_messages(messages)
    start: list[PendingReply] = []
    close_stale: list[PendingReply] = []
    no_model: list[PendingReply] = []
    for user, reply in pairs:
        if not user.completed or reply.completed or reply.id in in_flight:
            continue
        pending = PendingReply(
            session_id=user.session_id,
            user_message_id=user.id,
            reply_message_id=reply.id,
            content=user.content,
            model=user.model or reply.model or None,
            timestamp=user.timestamp,
        )
        if (
            online_since_ms is not None
            and user.timestamp < online_since_ms
            and now_ms - user.timestamp > stale_age_ms
        ):
            close_stale.append(pending)
        elif pending.model is None:
            no_model.append(pending)
        else:
            start.append(pending)
    orphans = tuple(m for m in unpaired if m.completed and m.id not in reported_orphans)
    return Plan(tuple(start), tuple(close_stale), tuple(no_model), orphans)
