"""The soak's verdict, from facts gathered after the run (pure: no I/O, no trio).

A sent message is *settled* when its assistant placeholder is completed with non-empty text:
an answer or a readable error. It is *stuck* when the placeholder is still incomplete, except
for messages sent to a worker after it was deleted in the web app: nobody exists to answer
them (the worker is parked and the web app would refuse a new session), so they are expected
to stay open and are counted apart. A message is *answered twice* when Convex committed
completions with different contents for it (an idempotent retry of the same completion is not
a second answer).

The faults of issue 13 are judged on top: the oversized answer is completed with a visible cut
marker, its content and every chunk within Convex's 1 MiB value limit; the stuck OpenCode's
reply ends readably (the general checks) and a new OpenCode answers that worker afterwards,
the stopped one gone; the bad sync frames cost no worker restart and cause no reconnect storm.
A fault the plan asked for that never came about fails the soak too.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence

import attrs

from oco.testing._fake_llm import big_text
from oco.worker import NO_MODEL_NOTE, REMOVED_NOTE, STALE_NOTE

ERROR_PREFIXES = ("Error:", "Interrupted")
CLOSING_NOTES = (REMOVED_NOTE, STALE_NOTE, NO_MODEL_NOTE)  # closed, not answered: readable too
VALUE_LIMIT = 1024 * 1024  # Convex refuses a value (a field, an argument) over 1 MiB
CUT_MARKER = "answer cut:"  # in the note trio-oco puts where it cut an answer
HEAD_CHECKED = 4096  # bytes of the oversized answer that must be the model's own text
# A bad frame closes the socket and costs one reconnect (two with a backoff race); a storm is
# hundreds. Reconnects allowed per injected frame, and a few for the phase's own traffic:
RECONNECTS_PER_FRAME, RECONNECTS_SPARE = 3, 3
FAULTS = ("long_outage", "oversized", "stuck", "bad_frames")
# The oversized answer stays in the worker's history, which the reference's
# chat:subscribeToWorkerMessages sends whole on every change: the process holds it (frame text,
# decoded result, parsed snapshot) besides the one-off peak of streaming it. Its phase may grow
# RSS by this many bytes per byte asked; the RSS bound judges the rest of the soak.
OVERSIZED_RSS_FACTOR = 16


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
class OversizedFacts:
    """The message whose answer (`BIG <asked_bytes>`) is over what a Convex value can hold."""

    reply_id: str
    asked_bytes: int
    chunk_sizes: Sequence[int]  # JSON bytes of each chunk written for it
    rss_before: int = 0  # the orchestrator's RSS just before it was asked, and once answered
    rss_after: int = 0


@attrs.frozen
class StuckFacts:
    """One worker's OpenCode stopped with SIGSTOP mid-answer, and what came after."""

    worker: str
    reply_id: str  # the answer in flight when it stopped
    full_answer: str  # what that answer would have been, had OpenCode not stopped
    follow_up_id: str  # a message sent to that worker once the first reply was closed
    stuck_pid: int
    new_pid: int | None  # the worker's OpenCode after the follow-up, None if status showed none
    left_stopped: bool  # the stopped process still existed at the end of the phase


@attrs.frozen
class BadFrameFacts:
    """Hostile frames sent on the fake's sync sockets while answers streamed."""

    injected: int  # frames delivered to an open socket
    restarts_before: int  # sum of the workers' restarts in status.json
    restarts_after: int
    reconnects: int  # sync socket upgrades during the phase


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
    faults_planned: Collection[str] = ()  # of FAULTS: what the plan asked for
    long_outage_s: float = 0.0  # 0: not run
    long_outage_streaming: int = 0  # replies streaming (chunks, not completed) when it began
    oversized: OversizedFacts | None = None
    stuck: StuckFacts | None = None
    bad_frames: BadFrameFacts | None = None
    worker_restarts: int = 0  # sum over workers in status.json at the end


def says_why(content: str) -> bool:
    """A reply that ends in a readable error or interruption note."""
    return content.startswith(ERROR_PREFIXES) or "\n\nError:" in content or "\n\nInterrupted" in content


def _json_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _fault_figures(facts: SoakFacts) -> tuple[dict[str, object], list[str]]:
    """Figures and failed checks for issue 13's faults."""
    figures: dict[str, object] = {
        "long_outage_s": facts.long_outage_s,
        "long_outage_streaming": facts.long_outage_streaming,
    }
    failed = []
    ran = {
        "long_outage": facts.long_outage_s > 0,
        "oversized": facts.oversized is not None,
        "stuck": facts.stuck is not None,
        "bad_frames": facts.bad_frames is not None,
    }
    missing = [name for name in FAULTS if name in facts.faults_planned and not ran[name]]
    if missing:
        failed.append(f"planned fault(s) that never came about: {', '.join(missing)}")
    if facts.long_outage_s and not facts.long_outage_streaming:
        failed.append("the long outage began while no answer was streaming")
    if (big := facts.oversized) is not None:
        reply = facts.placeholders.get(big.reply_id)
        content = reply.content if reply is not None else ""
        size = _json_bytes(content)
        head = big_text(min(HEAD_CHECKED, big.asked_bytes))
        figures.update(
            oversized_asked_bytes=big.asked_bytes,
            oversized_reply_bytes=size,
            oversized_cut_marker=CUT_MARKER in content,
            oversized_chunks=len(big.chunk_sizes),
            oversized_max_chunk_bytes=max(big.chunk_sizes, default=0),
        )
        if reply is not None and reply.completed:
            if CUT_MARKER not in content:
                failed.append(f"the oversized answer {big.reply_id} has no cut marker")
            if not content.startswith(head):
                failed.append(f"the oversized answer {big.reply_id} does not begin with the model's text")
        if size > VALUE_LIMIT or max(big.chunk_sizes, default=0) > VALUE_LIMIT:
            failed.append(f"the oversized answer {big.reply_id} has a value over 1 MiB")
        growth = big.rss_after - big.rss_before
        figures["oversized_rss_growth_mb"] = round(growth / 2**20, 1)
        if growth > OVERSIZED_RSS_FACTOR * big.asked_bytes:
            failed.append(f"the oversized answer grew the orchestrator's RSS by {growth / 2**20:.0f} MB")
    if (stuck := facts.stuck) is not None:
        figures.update(
            stuck_pid=stuck.stuck_pid, stuck_replaced_by=stuck.new_pid, stuck_left_stopped=stuck.left_stopped
        )
        if stuck.new_pid is None or stuck.new_pid == stuck.stuck_pid:
            failed.append(
                f"{stuck.worker}'s stuck OpenCode (pid {stuck.stuck_pid}) was not replaced "
                f"(pid afterwards: {stuck.new_pid})"
            )
        reply = facts.placeholders.get(stuck.reply_id)
        if (
            reply is not None
            and reply.completed
            and not (says_why(reply.content) or reply.content.strip() == stuck.full_answer.strip())
        ):
            failed.append(
                f"the reply {stuck.reply_id} cut by the stuck OpenCode ends without saying why: "
                f"{reply.content[-60:]!r}"
            )
        if stuck.left_stopped:
            failed.append(f"{stuck.worker}'s stuck OpenCode (pid {stuck.stuck_pid}) was left running")
    if (bad := facts.bad_frames) is not None:
        restarts = bad.restarts_after - bad.restarts_before
        figures.update(
            bad_frames_injected=bad.injected, bad_frame_restarts=restarts, bad_frame_reconnects=bad.reconnects
        )
        if restarts:
            failed.append(f"{restarts} worker restart(s) while bad sync frames arrived")
        if bad.reconnects > RECONNECTS_PER_FRAME * bad.injected + RECONNECTS_SPARE:
            failed.append(f"{bad.reconnects} sync reconnects after {bad.injected} bad frames (a storm)")
    figures["worker_restarts"] = facts.worker_restarts
    return figures, failed


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
        elif says_why(reply.content):
            errors += 1
        elif message.expected is not None and reply.content != message.expected:
            wrong += 1
        else:
            answered += 1
    stuck = sorted(i for i, p in facts.placeholders.items() if not p.completed and i not in expected_open)
    duplicates = sorted(i for i, contents in facts.completions.items() if len(set(contents)) > 1)
    retried = sum(1 for contents in facts.completions.values() if len(contents) > 1)
    after_delete_answered = sum(
        1
        for m in facts.sent
        if m.after_deletion and (p := facts.placeholders.get(m.reply_id)) and p.completed
    )
    unexpected_parked = sorted(set(facts.parked) - set(facts.expected_parked))
    missing_parked = sorted(set(facts.expected_parked) - set(facts.parked))
    rss_growth = (facts.rss_end - facts.rss_warm) / facts.rss_warm * 100 if facts.rss_warm else 0.0
    # What the rest of the soak added: the oversized answer's phase is judged on its own.
    oversized_growth = facts.oversized.rss_after - facts.oversized.rss_before if facts.oversized else 0
    rss_rest = (
        (facts.rss_end - facts.rss_warm - oversized_growth) / facts.rss_warm * 100 if facts.rss_warm else 0.0
    )
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
        "rss_growth_beyond_oversized_pct": round(rss_rest, 1),
        "tracebacks": facts.tracebacks,
    }
    fault_figures, fault_failures = _fault_figures(facts)
    figures.update(fault_figures)
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
    if rss_rest >= 20:
        failed.append(f"orchestrator RSS grew by {rss_rest:.0f} % (beyond the oversized answer's phase)")
    return figures, failed + fault_failures
