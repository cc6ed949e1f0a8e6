"""The soak's verdict, from facts gathered after the run (pure: no I/O, no trio).

A sent message is *settled* when its assistant placeholder is completed with non-empty text:
an answer or a readable error. It is *stuck* when the placeholder is still incomplete, except
for messages sent to a worker after it was deleted in the web app: nobody exists to answer
them (the worker is parked and the web app would refuse a new session), so they are expected
to stay open and are counted apart. A message is *answered twice* when Convex committed
completions with different contents for it (an idempotent retry of the same completion is not
a second answer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from oco.worker import NO_MODEL_NOTE, STALE_NOTE
from oco.worker import REMOVED_NOTE

ERROR_PREFIXES = ("Error:", "Interrupted")
CLOSING_NOTES = (REMOVED_NOTE, STALE_NOTE, NO_MODEL_NOTE)  # closed, not answered: readable too


@attrs.frozen
class SentMessage:
    """One user message the soak sent, and what a correct answer would be."""

    worker: str
    chat_id: str
    reply_id: str
    text: str
    expected: str | None  # the exact answer for an ECHO script, else None
    after_deletion: bool = False


@attrs.frozen
class Placeholder:
    """An assistant message as the fake's table holds it at the end."""

    completed: bool
    content: str


@attrs.frozen
class SoakFacts:
    """Everything the verdict needs, read from the fake, the status file, /proc and the output."""

    sent: Sequence[SentMessage]
    placeholders: Mapping[str, Placeholder]  # every assistant message in the fake, by id
    completions: Mapping[str, Sequence[str]]  # committed completion contents, by message id
    parked: Sequence[str]  # worker names parked in status.json before the stop
    expected_parked: Sequence[str]
    exit_code: int | None
    secret_leaks: Sequence[str]  # where a secret was found (file names, "output"), never the secret
    children_left: int
    fd_warm: int
    fd_end: int
    rss_warm: int
    rss_end: int
    tracebacks: int = 0


def evaluate(facts: SoakFacts) -> tuple[dict[str, object], list[str]]:
    """(figures for --json, failed checks as one-line sentences; empty when the soak passed)."""
    expected_open = {m.reply_id for m in facts.sent if m.after_deletion}
    counted = [m for m in facts.sent if not m.after_deletion]
    completed = answered = errors = closed = wrong = empty = 0
    for message in counted:
        reply = facts.placeholders.get(message.reply_id)
        if reply is None or not reply.completed:
            continue
        completed += 1
        if not reply.content.strip():
            empty += 1
        elif reply.content in CLOSING_NOTES:
            closed += 1
        elif reply.content.startswith(ERROR_PREFIXES) or "\n\nError:" in reply.content or "\n\nInterrupted" in reply.content:
            errors += 1
        elif message.expected is not None and reply.content != message.expected:
            wrong += 1
        else:
            answered += 1
    stuck = sorted(i for i, p in facts.placeholders.items() if not p.completed and i not in expected_open)
    duplicates = sorted(i for i, contents in facts.completions.items() if len(set(contents)) > 1)
    retried = sum(1 for contents in facts.completions.values() if len(contents) > 1)
    after_delete_answered = sum(
        1 for m in facts.sent if m.after_deletion and (p := facts.placeholders.get(m.reply_id)) and p.completed
    )
    unexpected_parked = sorted(set(facts.parked) - set(facts.expected_parked))
    missing_parked = sorted(set(facts.expected_parked) - set(facts.parked))
    rss_growth = (facts.rss_end - facts.rss_warm) / facts.rss_warm * 100 if facts.rss_warm else 0.0
    figures: dict[str, object] = {
        "messages": len(facts.sent),
        "completed": completed,
        "answered": answered,
        "readable_errors": errors,
        "closed_with_note": closed,
        "wrong_answers": wrong,
        "empty_replies": empty,
        "duplicates": len(duplicates),
        "completions_retried": retried,
        "stuck": len(stuck),
        "after_deletion_sent": len(expected_open),
        "after_deletion_answered": after_delete_answered,
        "unexpected_parked": unexpected_parked,
        "exit_code": facts.exit_code,
        "secret_leaks": len(facts.secret_leaks),
        "children_left": facts.children_left,
        "fd_warm": facts.fd_warm,
        "fd_end": facts.fd_end,
        "rss_warm_mb": round(facts.rss_warm / 2**20, 1),
        "rss_end_mb": round(facts.rss_end / 2**20, 1),
        "rss_growth_pct": round(rss_growth, 1),
        "tracebacks": facts.tracebacks,
    }
    failed = []
    if completed != len(counted):
        failed.append(f"{len(counted) - completed} of {len(counted)} messages have no completed reply")
    if empty or wrong:
        failed.append(f"{empty} empty and {wrong} wrong replies")
    if stuck:
        failed.append(f"{len(stuck)} placeholders left incomplete: {', '.join(stuck[:5])}")
    if duplicates:
        failed.append(f"{len(duplicates)} messages answered twice: {', '.join(duplicates[:5])}")
    if unexpected_parked or missing_parked:
        failed.append(f"parked {sorted(facts.parked)}, expected only {sorted(facts.expected_parked)}")
    if facts.exit_code != 0:
        failed.append(f"SIGTERM ended the run with exit code {facts.exit_code}")
    if facts.secret_leaks:
        failed.append(f"a secret appeared in: {', '.join(sorted(set(facts.secret_leaks)))}")
    if facts.children_left:
        failed.append(f"{facts.children_left} child process(es) left after the run")
    if facts.tracebacks:
        failed.append(f"{facts.tracebacks} traceback(s) in the output")
    if facts.fd_end - facts.fd_warm >= 10:
        failed.append(f"open fds grew from {facts.fd_warm} to {facts.fd_end}")
    if rss_growth >= 20:
        failed.append(f"orchestrator RSS grew by {rss_growth:.0f} %")
    return figures, failed
