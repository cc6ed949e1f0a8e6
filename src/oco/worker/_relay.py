"""The chat relay: turns pending replies into OpenCode turns and streams the answers to Convex.

One task per chat session with work runs that session's replies one after another; a capacity
limiter bounds the turns a worker runs at once. A reply is claimed (in flight, then finished)
for the life of the process, so a live worker never answers a message twice; nothing is written
to Convex as "processed" before the answer, so a restart never loses one.
"""

from __future__ import annotations

import enum
import logging
import math
import time

import attrs
import trio
import trio_util

from oco.config import Settings
from oco.convex import (
    ConvexException,
    ConvexFunctionError,
    MessageNotFound,
    SessionNotFound,
    WorkerRejected,
    is_transient,
)
from oco.convex.api import WorkerBackend
from oco.convex.types import ChatMessage
from oco.opencode import OpenCodeServer, run_turn

from ._chunks import ChunkBuffer
from ._opencode_host import OpenCodeHost, OpenCodeUnavailable
from ._parts import encode_other_parts
from ._planner import INTERRUPTED_NOTE, NO_MODEL_NOTE, STALE_NOTE, PendingReply
from ._session_map import SessionLink, SessionMap
from ._stop import StopControl

log = logging.getLogger(__name__)

CLEANUP_GRACE_S = 10.0
PREPARE_PATIENCE_S = 120.0  # how long a turn waits for Convex before it starts
EMPTY_REPLY = "(The agent finished without a text reply.)"


class JobKind(enum.Enum):
    ANSWER = "answer"
    CLOSE_STALE = "close_stale"
    NO_MODEL = "no_model"


@attrs.frozen
class Job:
    kind: JobKind
    reply: PendingReply


def _joined(text: str, note: str) -> str:
    return f"{text.rstrip()}\n\n{note}" if text.strip() else note


class ChatRelay:
    """Runs the replies the planner asks for, per session in order, at most N at once."""

    def __init__(
        self,
        *,
        backend: WorkerBackend,
        host: OpenCodeHost,
        sessions: SessionMap,
        settings: Settings,
        stop: StopControl,
    ) -> None:
        self._backend = backend
        self._host = host
        self._sessions = sessions
        self._settings = settings
        self._stop = stop
        self._in_flight: dict[str, Job] = {}
        self._finished: set[str] = set()
        self._queues: dict[str, trio.MemorySendChannel[Job]] = {}
        self._limiter = trio.CapacityLimiter(max(1, settings.max_concurrent_sessions))
        self._reported: set[str] = set()  # chats whose OpenCode id Convex knows since connect
        self._nursery: trio.Nursery | None = None
        self.turns = trio_util.AsyncValue(0)

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
            task_status.started()
            await trio.sleep_forever()

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
                    return
                try:
                    await self._run(job)
                finally:
                    reply_id = job.reply.reply_message_id
                    self._in_flight.pop(reply_id, None)
                    self._finished.add(reply_id)

    async def _run(self, job: Job) -> None:
        reply = job.reply
        if job.kind is JobKind.CLOSE_STALE:
            await self._complete_plain(reply, STALE_NOTE)
        elif job.kind is JobKind.NO_MODEL:
            await self._complete_plain(reply, NO_MODEL_NOTE)
        else:
            async with self._limiter:
                self.turns.value += 1
                try:
                    await self._answer(reply)
                finally:
                    self.turns.value -= 1

    async def _answer(self, reply: PendingReply) -> None:
        streamed: list[str] = []
        completed = False
        error: str | None = None
        first_sequence = 0
        if self._sessions.begin_reply(reply.reply_message_id):
            # An earlier run crashed while streaming this reply and its chunks are in Convex:
            # number ours after any it can have written, never reusing a sequence number.
            first_sequence = int(time.time() * 1000) * 1000
        try:
            try:
                async with self._host.lease() as server:
                    result = await self._stream_turn(server, reply, streamed, first_sequence)
                text = result.content if result.content.strip() else "".join(streamed)
                if result.error:
                    error = result.error
                else:
                    await self._backend.complete_structured(
                        reply.session_id,
                        reply.reply_message_id,
                        text if text.strip() else (EMPTY_REPLY if not result.other_parts else ""),
                        result.reasoning or None,
                        encode_other_parts(result.other_parts),
                    )
                    completed = True
                    self._sessions.end_reply(reply.reply_message_id)
            except (OpenCodeUnavailable, WorkerRejected):
                raise
            except Exception as exc:
                if is_transient(exc):
                    error = "the chat backend was unreachable while answering; please resend"
                elif isinstance(exc, ConvexException):
                    # The backend refused a call (a function error): expected, not a bug here.
                    log.warning("reply %s failed: %s", reply.reply_message_id, exc)
                    error = "the chat backend reported an error while answering; please resend"
                else:
                    log.exception("reply %s failed", reply.reply_message_id)
                    error = f"internal error in the worker ({type(exc).__name__})"
        except OpenCodeUnavailable as exc:
            error = str(exc)
        finally:
            if not completed:
                note = f"Error: {error}" if error else INTERRUPTED_NOTE
                # Runs during cancellation too: the placeholder must not stay incomplete.
                with self._stop.cleanup_scope(CLEANUP_GRACE_S):
                    if await self._complete_plain(reply, _joined("".join(streamed), note)):
                        self._sessions.end_reply(reply.reply_message_id)

    async def _stream_turn(
        self, server: OpenCodeServer, reply: PendingReply, streamed: list[str], first_sequence: int
    ):
        opencode_session = await self._opencode_session_patiently(server, reply.session_id)
        buffer = ChunkBuffer(self._settings.chunk_interval_s, first_sequence=first_sequence)
        text_arrived = trio.Event()

        def on_text(delta: str) -> None:
            nonlocal text_arrived
            streamed.append(delta)
            buffer.add(delta, trio.current_time())
            text_arrived.set()

        async with trio.open_nursery() as nursery:
            turn_done = trio.Event()

            async def write_chunks() -> None:
                nonlocal text_arrived
                while not (turn_done.is_set() and buffer.next_flush_at() is None):
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
                        await self._write_chunk(reply, chunk.text, chunk.sequence)

            nursery.start_soon(write_chunks)
            try:
                result = await run_turn(
                    server,
                    opencode_session,
                    reply.content,
                    reply.model,
                    timeout=self._settings.turn_timeout_s,
                    on_text=on_text,
                    permission_policy=self._settings.permission_policy,
                )
            finally:
                turn_done.set()
        return result

    async def _write_chunk(self, reply: PendingReply, text: str, sequence: int) -> None:
        try:
            await self._backend.write_chunk(reply.session_id, reply.reply_message_id, text, sequence)
        except Exception as exc:
            if not is_transient(exc):
                raise
            # The full text still arrives with the completion; a lost chunk only delays display.
            log.warning("chunk %d of %s not written (%s)", sequence, reply.reply_message_id, exc)

    async def _opencode_session_patiently(self, server: OpenCodeServer, chat_session_id: str) -> str:
        """`_opencode_session`, waiting out a Convex outage: nothing has been streamed yet,
        and its calls are safe to repeat, so an outage delays the answer instead of failing it."""
        delay = 1.0
        give_up_at = trio.current_time() + PREPARE_PATIENCE_S
        while True:
            try:
                return await self._opencode_session(server, chat_session_id)
            except Exception as exc:
                if not is_transient(exc) or trio.current_time() + delay > give_up_at:
                    raise
                log.warning("Convex unreachable before a turn (%s); retrying in %.0f s", exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 15.0)

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

    async def _complete_plain(self, reply: PendingReply, content: str) -> bool:
        """`chat:completeMessage`, retried while Convex is unreachable; True once it landed."""
        delay = 1.0
        for _attempt in range(6):
            try:
                await self._backend.complete_message(reply.session_id, reply.reply_message_id, content)
                return True
            except WorkerRejected:
                raise
            except Exception as exc:
                # A function error may pass (the soak saw one 560 leave a reply open for good);
                # only a missing message or session is final.
                retryable = is_transient(exc) or (
                    isinstance(exc, ConvexFunctionError)
                    and not isinstance(exc, (SessionNotFound, MessageNotFound))
                )
                if not retryable:
                    log.warning("could not complete reply %s (%s)", reply.reply_message_id, exc)
                    return False
                log.warning("completing reply %s failed (%s); retrying", reply.reply_message_id, exc)
                await trio.sleep(delay)
                delay = min(delay * 2, 30.0)
        log.error("gave up completing reply %s; it is answered after a restart", reply.reply_message_id)
        return False
