"""`Backend`: the operations of the chat backend one worker uses, whatever carries them.

`oco.convex.api.WorkerBackend` is the implementation (the Convex HTTP API, with the worker's
identity bound); the worker's relay, completer and watchers are written against this
protocol, so they name no adapter. Failures are the neutral errors of `oco.errors`
(`Unavailable`, `Rejected`, `Refused`, `NotFound`, `ProtocolViolation`), raised by the
implementation at its edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ._records import ActiveSession, ChatMessage, ModelInfo, Registration, WorkerRecord


class Backend(Protocol):
    """What the worker calls on the backend (one method per backend function of the
    reference contract), and how it reads the values of the queries it subscribes to."""

    @property
    def machine_id(self) -> str: ...

    @property
    def worker_id(self) -> str: ...

    # -- lifecycle -----------------------------------------------------------------------

    async def register(self, working_directory: str, username: str) -> Registration:
        """Announce the worker; `approved` says whether it may serve."""
        ...

    async def heartbeat(self) -> None:
        """Keep the worker online (a no-op while not approved)."""
        ...

    async def set_offline(self) -> int:
        """Go offline; returns how many active sessions became inactive."""
        ...

    async def mark_connected(self) -> int:
        """Say the worker serves now; returns how many sessions the backend invalidated."""
        ...

    async def update_models(self, models: Sequence[ModelInfo]) -> None:
        """Publish the models this worker's OpenCode offers."""
        ...

    # -- what the worker watches ---------------------------------------------------------

    async def worker_messages(self) -> list[ChatMessage]:
        """Every message of every session of the worker, by timestamp."""
        ...

    async def poll_watch(self) -> tuple[WorkerRecord | None, list[ActiveSession]]:
        """The worker's row and its active sessions, read at one moment."""
        ...

    def parse_worker(self, value: Any) -> WorkerRecord | None:
        """A subscribed value of the worker's row (a malformed record: `ProtocolViolation`)."""
        ...

    def parse_sessions(self, value: Any) -> list[ActiveSession]:
        """A subscribed value of the active sessions (malformed rows are left out)."""
        ...

    def parse_messages(self, value: Any) -> list[ChatMessage]:
        """A subscribed value of the messages (malformed rows are left out)."""
        ...

    # -- chat write-back -----------------------------------------------------------------

    async def session_name(self, chat_session_id: str) -> str | None:
        """The chat session's name; None if unnamed, missing or not this worker's."""
        ...

    async def session_ready(self, chat_session_id: str, opencode_session_id: str | None) -> None:
        """Record the OpenCode session that serves this chat session."""
        ...

    async def write_chunk(self, chat_session_id: str, message_id: str, chunk: str, sequence: int) -> None:
        """Append streamed text to a reply (inserts a row: never blindly repeated)."""
        ...

    async def complete_structured(
        self,
        chat_session_id: str,
        message_id: str,
        content: str,
        reasoning: str | None,
        other_parts: str | None,
    ) -> None:
        """Complete a reply with its answer, reasoning and tool parts (JSON)."""
        ...

    async def complete_message(self, chat_session_id: str, message_id: str, content: str) -> None:
        """Complete a reply with plain content (an error or a note)."""
        ...
