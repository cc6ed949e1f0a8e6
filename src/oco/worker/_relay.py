"""The chat relay: turns pending replies into OpenCode turns and streams the answers to Convex.

One task per chat session with work runs that session's replies one after another; a capacity
limiter bounds the turns a worker runs at once. A reply is claimed (in flight, then finished)
for the life of the process, so a live worker never answers a message twice; nothing is written
to Convex as "processed" before the answer, so a restart never loses one.

A reply counts as finished only once Convex has it completed (or it provably no longer
exists). Completing it is retried for as long as Convex is out (`ReplyCompleter`); only a
cancellation cuts that short, and then the reply stays begun in the session map and
unclaimed, so the next serve or the next run answers it (after a visible separator, with
chunk numbers above the earlier attempt's).
"""

from __future__ import annotations

import enum
import logging
import math

import attrs
import trio
import trio_util

from oco._retry import TURN_PREPARATION, OutageReport, retrying
from oco._text import external
from oco.config import Settings
from oco.convex import is_transient
from oco.domain import Backend, ChatMessage
from oco.errors import NotFound, OcoError, ProtocolViolation, Refused, Rejected
from oco.opencode import OpenCodeServer, TurnResult, run_turn

from ._chunks import Chunk, ChunkBuffer
from ._completion import (
    EMPTY_REPLY,
    Fate,
    FinalReply,
    Outcome,
    ReplyCompleter,
    reply_fate,
    reply_from_note,
    reply_from_turn,
)
from ._live_settings import LiveSettings, live
from ._opencode_host import OpenCodeHost, OpenCodeUnavailable
from ._planner import INTERRUPTED_NOTE, NO_MODEL_NOTE, STALE_NOTE, PendingReply
from ._session_map import ReplyStart, SessionLink, SessionMap
from ._stop import StopControl

log = logging.getLogger(__name__)

CLEANUP_GRACE_S = 10.0  # a last try at completing, when the worker leaves its serve (no stop)
FATE_CHECK_INTERVAL_S = 30.0  # at most one state check per reply this often for refused chunks
RERUN_SEPARATOR = "\n\n— answering again after a restart —\n\n"

__all__ = ["CLEANUP_GRACE_S", "EMPTY_REPLY", "RERUN_SEPARATOR", "ChatRelay", "JobKind"]


class JobKind(enum.Enum):
    ANSWER = "answer"
    CLOSE_STALE = "close_stale"
    NO_MODEL = "no_model"


@attrs.frozen
class Job:
    kind: JobKind
    reply: PendingReply


class ReplyGone(Exception):
    """Internal: the reply's message or session was deleted (or it was completed elsewhere)
    while it was being answered: nobody is left to answer."""


@attrs.define
class _Turn:
    """One attempt at answering a reply: what it streamed and where."""

    reply: PendingReply
    start: ReplyStart
    streamed: list[str] = attrs.field(factory=list)
    opencode_session: str | None = None
    fate_checked_at: float = -math.inf
    chunk_failures: int = 0
    closing: bool = False  # the reply's completion has begun (`_complete_answer`)
    began: float = 0.0  # trio time the reply was picked up (for the outcome line)
    chunks: int = 0  # written to Convex (for the outcome line)
    tool_calls: int = 0
    chat_name: str | None = None
    error: str | None = None  # what the reply says went wrong, if anything

    @property
    def text(self) -> str:
        return "".join(self.streamed)


def _only_error(group: BaseExceptionGroup) -> BaseException | None:
    """The one exception of a nursery that failed with exactly one, if it is an `Exception`."""
    leaves = group.exceptions
    if len(leaves) == 1 and isinstance(leaves[0], Exception):
        if isinstance(leaves[0], BaseExceptionGroup):
            return _only_error(leaves[0])
        return leaves[0]
    return None


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def outcome_line(turn: _Turn, seconds: float) -> str:
    """The story's last line: how long the reply took, what it streamed, or what went wrong."""
    chat = f'chat "{external(turn.chat_name, 80)}"' if turn.chat_name else f"chat {turn.reply.session_id}"
    if turn.error is not None:
        return f"{chat}: answered with an error in {seconds:.1f} s: {external(turn.error, 300)}"
    return (
        f"{chat}: answered in {seconds:.1f} s with {_count(turn.chunks, 'chunk')}"
        f" and {_count(turn.tool_calls, 'tool call')}"
    )


def _say_outcome(turn: _Turn, seconds: float) -> None:
    log.log(logging.WARNING if turn.error is not None else logging.INFO, "%s", outcome_line(turn, seconds))


class ChatRelay:
    """Runs the replies the planner asks for, per session in order, at most N at once.

    `settings` may be live (`LiveSettings`): each turn reads its timeout when it starts, each
    permission answer and chunk flush read theirs when they happen, and N follows
    `max_concurrent_sessions` at once (lowered: no running turn is cut, new ones wait).
    """

    def __init__(
        self,
        *,
        backend: Backend,
        host: OpenCodeHost,
        sessions: SessionMap,
        settings: Settings | LiveSettings,
        stop: StopControl,
    ) -> None:
        self._backend = backend
        self._host = host
        self._sessions = sessions
        self._live = live(settings)
        self._stop = stop
        self._completer = ReplyCompleter(backend)
        self._in_flight: dict[str, Job] = {}
        self._finished: set[str] = set()
        self._queues: dict[str, trio.MemorySendChannel[Job]] = {}
        self._limiter = trio.CapacityLimiter(max(1, self._settings.max_concurrent_sessions))
        self._reported: set[str] = set()  # chats whose OpenCode id Convex knows since connect
        self._nursery: trio.Nursery | None = None
        self.turns = trio_util.AsyncValue(0)
        self.sessions = trio_util.AsyncValue(0)  # `active_sessions()`, observable

    @property
    def _settings(self) -> Settings:
        return self._live.value

    @property
    def busy(self) -> bool:
        return bool(self._in_flight)

    def claimed(self) -> frozenset[str]:
        """Reply ids this process is answering or has answered (the planner skips them)."""
        return frozenset(self._in_flight) | frozenset(self._finished)

    def active_sessions(self) -> int:
        return len(self._queues)

    def forget_reported(self) -> None:
        """`markConnected` cleared every `opencodeSessionId` in Convex; report them again on use."""
        self._reported.clear()

    def observe(self, messages: tuple[ChatMessage, ...]) -> None:
        """Drop finished claims once Convex shows the reply completed (or gone)."""
        if not self._finished:
            return
        open_ids = {m.id for m in messages if not m.completed}
        self._finished &= open_ids

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._follow_limit)
            task_status.started()
            await trio.sleep_forever()

    async def _follow_limit(self) -> None:
        # A lower limit leaves running turns alone: trio lets their tokens go as they end.
        async for settings in self._live.eventual_values():
            self._limiter.total_tokens = max(1, settings.max_concurrent_sessions)

    def submit(self, kind: JobKind, reply: PendingReply) -> None:
        reply_id = reply.reply_message_id
        if reply_id in self._in_flight or reply_id in self._finished:
            return
        assert self._nursery is not None, "ChatRelay.run must be started first"
        job = Job(kind, reply)
        self._in_flight[reply_id] = job
        queue = self._queues.get(reply.session_id)
        if queue is None:
            queue, receive = trio.open_memory_channel[Job](math.inf)
            self._queues[reply.session_id] = queue
            self.sessions.value = len(self._queues)
            self._nursery.start_soon(self._session_loop, reply.session_id, receive)
        queue.send_nowait(job)

    async def _session_loop(self, session_id: str, receive: trio.MemoryReceiveChannel[Job]) -> None:
        async with receive:
            while True:
                try:
                    job = receive.receive_nowait()
                except trio.WouldBlock:
                    # No checkpoint between the empty check and the removal, so `submit`
                    # cannot slip a job into a queue nobody reads.
                    self._queues.pop(session_id).close()
                    self.sessions.value = len(self._queues)
                    return
                try:
                    await self._run(job)
                finally:
                    # Finished only once closed (`_record`); a reply left open is planned again.
                    self._in_flight.pop(job.reply.reply_message_id, None)

    async def _run(self, job: Job) -> None:
        reply = job.reply
        if job.kind is JobKind.CLOSE_STALE:
            await self._close(reply, reply_from_note("", STALE_NOTE))
        elif job.kind is JobKind.NO_MODEL:
            log.info("message in chat %s names no model; answering with a note", reply.session_id)
            await self._close(reply, reply_from_note("", NO_MODEL_NOTE))
        else:
            async with self._limiter:
                self.turns.value += 1
                try:
                    await self._answer(reply)
                finally:
                    self.turns.value -= 1

    async def _answer(self, reply: PendingReply) -> None:
        known = self._sessions.get(reply.session_id)  # a chat answered before has its name
        chat = f'"{external(known.title, 80)}"' if known is not None and known.title else reply.session_id
        log.info("message picked up in chat %s (model %s)", chat, reply.model)
        started = trio.current_time()
        turn = _Turn(reply, self._sessions.begin_reply(reply.reply_message_id), began=started)
        final: FinalReply | None = None
        gone = False
        try:
            final = await self._turn_reply(turn)
        except ReplyGone:
            gone = True
            log.info("reply %s was deleted in Convex while being answered; dropped", reply.reply_message_id)
            self._record(reply, Outcome.GONE)
        finally:
            if not gone and not turn.closing:  # closing: the answer's completion has run already
                if final is None:  # cancelled (a stop, or the worker left its serve), or rejected
                    await self._close(
                        reply,
                        reply_from_note(turn.text, INTERRUPTED_NOTE, opencode_session=turn.opencode_session),
                        patient=False,
                    )
                else:
                    await self._close(reply, final)
                    _say_outcome(turn, trio.current_time() - started)

    async def _turn_reply(self, turn: _Turn) -> FinalReply:
        """Run the turn; what to complete the reply with: the answer, or what went wrong."""
        reply = turn.reply
        try:
            async with self._host.lease() as server:
                result = await self._stream_turn(server, turn)
            turn.tool_calls = sum(1 for part in result.other_parts if part.get("type") == "tool")
            turn.error = result.error
            return reply_from_turn(result, turn.text, opencode_session=turn.opencode_session)
        except (Rejected, ReplyGone):
            raise
        except OpenCodeUnavailable as exc:
            error = str(exc)
        except Exception as exc:
            if is_transient(exc):
                error = "the chat backend was unreachable while answering; please resend"
            elif isinstance(exc, (Refused, ProtocolViolation)):
                # The backend refused a call (a function error): expected, not a bug here.
                log.warning("reply %s failed: %s", reply.reply_message_id, external(exc))
                error = "the chat backend reported an error while answering; please resend"
            elif self._stop.requested.is_set() or trio.current_effective_deadline() == -math.inf:
                # A stop tears OpenCode and its client down under the turn, and what then fails
                # (a closed client) is the stop, not a bug: the reply says it was interrupted.
                log.info("reply %s interrupted by the stop (%s)", reply.reply_message_id, external(exc))
                turn.error = "interrupted by the stop"
                return reply_from_note(turn.text, INTERRUPTED_NOTE, opencode_session=turn.opencode_session)
            else:
                log.exception("reply %s failed", reply.reply_message_id)
                error = f"internal error in the worker ({type(exc).__name__})"
        turn.error = error
        return reply_from_note(turn.text, f"Error: {error}", opencode_session=turn.opencode_session)

    # -- completing -------------------------------------------------------------------------

    async def _close(self, reply: PendingReply, final: FinalReply, *, patient: bool = True) -> None:
        """Complete `reply` with `final`, retried for as long as Convex is out.

        A cancellation (a stop, or the worker leaving its serve) turns it into a last,
        shielded try: until the stop's deadline during a stop, `CLEANUP_GRACE_S` otherwise.
        `patient=False` starts with that last try (the caller is being cancelled already).
        """
        if patient:
            try:
                outcome = await self._completer.complete(reply, final)
            except trio.Cancelled:
                await self._close_within_grace(reply, final)
                raise
            self._record(reply, outcome)
        else:
            await self._close_within_grace(reply, final)

    async def _close_within_grace(self, reply: PendingReply, final: FinalReply) -> None:
        # Runs during cancellation too: the placeholder should not stay incomplete.
        grace = math.inf if self._stop.requested.is_set() else CLEANUP_GRACE_S
        outcome: Outcome | None = None
        with self._stop.cleanup_scope(grace):
            outcome = await self._completer.complete(reply, final)
        if outcome is None:
            log.warning(
                "reply %s could not be completed before the %s; it is answered again by the next run",
                reply.reply_message_id,
                "stop deadline" if self._stop.requested.is_set() else "worker left",
            )
        self._record(reply, outcome)

    def _record(self, reply: PendingReply, outcome: Outcome | None) -> None:
        """A closed reply (completed, or gone) is finished: never answered again by this process."""
        if outcome is None:
            return
        self._sessions.end_reply(reply.reply_message_id)
        self._finished.add(reply.reply_message_id)

    # -- streaming --------------------------------------------------------------------------

    async def _complete_answer(self, turn: _Turn, result: TurnResult) -> None:
        """Complete the reply with the turn's answer now, while OpenCode settles the session
        and the last chunk is written: neither adds to when the user sees the answer."""
        turn.tool_calls = sum(1 for part in result.other_parts if part.get("type") == "tool")
        turn.error = result.error
        turn.closing = True
        await self._close(
            turn.reply, reply_from_turn(result, turn.text, opencode_session=turn.opencode_session)
        )
        _say_outcome(turn, trio.current_time() - turn.began)

    async def _stream_turn(self, server: OpenCodeServer, turn: _Turn) -> TurnResult:
        """Run the turn, streaming its text as chunks. Once the answer is final the reply is
        completed at once (`_complete_answer`), concurrently with the last chunk and with
        OpenCode going idle; the call returns when all three are done."""
        reply = turn.reply
        turn.opencode_session = await self._opencode_session_patiently(server, reply.session_id)
        link = self._sessions.get(reply.session_id)
        turn.chat_name = link.title if link is not None else None
        buffer = ChunkBuffer(self._settings.chunk_interval_s, first_sequence=turn.start.first_sequence)
        text_arrived = trio.Event()
        final_chunks: list[Chunk] = []  # taken from the buffer and reserved when the answer came
        answered: list[TurnResult] = []  # the answer, once `run_turn` says it is final
        answer_ready = trio.Event()

        def drain() -> None:
            # Reserved now, before the completion can end the reply's reservation: a chunk
            # written after that must not bring the finished reply back into the session map.
            while (chunk := buffer.flush_all()) is not None:
                self._sessions.reserve(reply.reply_message_id, chunk.sequence)
                final_chunks.append(chunk)

        def on_text(delta: str) -> None:
            nonlocal text_arrived
            if answered:
                return  # the answer is final and being completed: nothing more is streamed
            turn.streamed.append(delta)
            buffer.add(delta, trio.current_time())
            text_arrived.set()

        turn_done = trio.Event()

        async def write_chunks() -> None:
            nonlocal text_arrived
            if turn.start.rerun:
                # The killed attempt's chunks stay in Convex and the web app shows them: say
                # that what follows starts over.
                separator = buffer.standalone(RERUN_SEPARATOR)
                if separator is not None:
                    await self._write_chunk(turn, separator)
            while not (turn_done.is_set() and buffer.next_flush_at() is None):
                buffer.interval = self._settings.chunk_interval_s  # a reload's, from the next chunk
                flush_at = buffer.next_flush_at()
                if flush_at is None:
                    await trio_util.wait_any(text_arrived.wait, turn_done.wait)
                    text_arrived = trio.Event()
                    continue
                if not turn_done.is_set():
                    with trio.move_on_at(flush_at):
                        await turn_done.wait()
                chunk = buffer.flush_all() if turn_done.is_set() else buffer.take(trio.current_time())
                if chunk is not None:
                    await self._write_chunk(turn, chunk)
            for chunk in final_chunks:
                try:
                    await self._write_chunk(turn, chunk, reserved=True)
                except ReplyGone:
                    return  # the completion finds that out too, from state

        def on_answer(result: TurnResult) -> None:
            answered.append(result)
            drain()
            turn_done.set()
            answer_ready.set()

        model = reply.model
        assert model is not None, "plan_replies starts only replies that name a model"
        opencode_session = turn.opencode_session
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(write_chunks)

                waiting_for_answer = trio.CancelScope()

                async def complete_when_answered() -> None:
                    with waiting_for_answer:
                        await answer_ready.wait()
                    if answered:
                        await self._complete_answer(turn, answered[0])

                nursery.start_soon(complete_when_answered)
                try:
                    result = await run_turn(
                        server,
                        opencode_session,
                        reply.content,
                        model,
                        timeout=self._settings.turn_timeout_s,
                        on_text=on_text,
                        on_answer=on_answer,
                        permission_policy=lambda: self._settings.permission_policy,
                    )
                finally:
                    turn_done.set()
                if not answered:
                    waiting_for_answer.cancel()  # no early answer: `_answer` completes the reply
        except BaseExceptionGroup as group:
            # One failure of the chunk writer (ReplyGone, WorkerRejected, ...) is that failure.
            only = _only_error(group)
            if only is None:
                raise
            raise only from None
        return result

    async def _write_chunk(self, turn: _Turn, chunk: Chunk, *, reserved: bool = False) -> None:
        """One `chat:writeChunk`; a failure costs only that piece of the live view (the
        completion carries the whole text), unless the reply is provably gone."""
        reply_id = turn.reply.reply_message_id
        if not reserved:
            self._sessions.reserve(reply_id, chunk.sequence)  # before: never reuse a number
        try:
            await self._backend.write_chunk(turn.reply.session_id, reply_id, chunk.text, chunk.sequence)
            turn.chunks += 1
            return
        except Rejected:
            raise
        except OcoError as exc:  # the backend's failure (a bug propagates)
            failure = exc
        turn.chunk_failures += 1
        level = logging.WARNING if turn.chunk_failures == 1 else logging.DEBUG
        log.log(level, "chunk %d of %s not written (%s)", chunk.sequence, reply_id, external(failure))
        if is_transient(failure):
            return
        # Refused: find out from state whether anyone is left to answer (the error text may be
        # a redacted "Server Error"); the dev deployment's typed text is the fast path.
        if isinstance(failure, NotFound):
            fate = Fate.GONE
        elif trio.current_time() - turn.fate_checked_at < FATE_CHECK_INTERVAL_S:
            return
        else:
            turn.fate_checked_at = trio.current_time()
            try:
                fate = await reply_fate(self._backend, reply_id)
            except OcoError as exc:
                if isinstance(exc, Rejected):
                    raise
                return
        if fate in (Fate.GONE, Fate.COMPLETED):
            raise ReplyGone(reply_id)

    async def _opencode_session_patiently(self, server: OpenCodeServer, chat_session_id: str) -> str:
        """`_opencode_session`, waiting out a Convex outage however long it lasts
        (`TURN_PREPARATION`): nothing has been streamed yet and its calls are safe to repeat,
        so an outage delays the answer instead of failing it."""
        async for attempt in retrying(
            TURN_PREPARATION,
            log=log,
            report=OutageReport(),
            describe=lambda exc: f"Convex unreachable before a turn ({external(exc)})",
        ):
            with attempt:
                return await self._opencode_session(server, chat_session_id)
        raise AssertionError("unreachable: the retries are unbounded")  # pragma: no cover

    async def _opencode_session(self, server: OpenCodeServer, chat_session_id: str) -> str:
        name = await self._backend.session_name(chat_session_id)
        link = self._sessions.get(chat_session_id)
        if link is not None and await server.client.get_session(link.opencode_session_id) is None:
            log.info("OpenCode no longer knows the session of chat %s; starting a new one", chat_session_id)
            link = None
        if link is None:
            opencode_id = await server.client.create_session(name or f"Chat {chat_session_id}")
            link = SessionLink(opencode_id, name)
            self._sessions.set(chat_session_id, link)
            self._reported.discard(chat_session_id)
        elif name and name != link.title:
            await server.client.rename_session(link.opencode_session_id, name)
            link = SessionLink(link.opencode_session_id, name)
            self._sessions.set(chat_session_id, link)
        if chat_session_id not in self._reported:
            await self._backend.session_ready(chat_session_id, link.opencode_session_id)
            self._reported.add(chat_session_id)
        return link.opencode_session_id
