"""Chat session → OpenCode session ids, and the chunk numbers of replies being streamed.

`workers:markConnected` clears `opencodeSessionId` in Convex, and a restart forgets memory;
this file is what lets a chat keep its OpenCode context across both (the reference
worker lost it on every connect and every restart),
and what lets a reply re-answered after a crash number its chunks after the killed attempt's.

The file only saves context. A state directory that is read-only, full or not a directory
must cost that context, never a message: a failed write is logged (one WARNING naming the
file and the error, DEBUG while it keeps failing) and the map goes on in memory.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import attrs

from oco._text import external
from oco.config import write_private_file

from ._limits import MAX_CHUNK_SEQUENCE

log = logging.getLogger(__name__)

# Chunk numbers are reserved in blocks, so the file is written once per block rather than
# once per chunk; a run after a crash starts at the reservation, above every number used.
SEQUENCE_BLOCK = 100
# A reply begun by a version that kept no numbers: its chunks may carry any number, so the
# run after it streams nothing (sequences from here on are past MAX_CHUNK_SEQUENCE) and
# only completes the reply; never reusing a number matters more than the live view.
UNKNOWN_SEQUENCE = MAX_CHUNK_SEQUENCE


@attrs.frozen
class SessionLink:
    opencode_session_id: str
    title: str | None = None


@attrs.frozen
class ReplyStart:
    """How a run begins streaming a reply.

    `rerun`: an earlier run had begun it too (its chunks are in Convex). `first_sequence`:
    the first chunk number this run may use, above every number an earlier run can have used.
    """

    rerun: bool
    first_sequence: int


class SessionMap:
    """Per-worker state, one small JSON file written atomically (0600).

    `sessions`: chat session id → OpenCode session id and title. `replies`: the replies being
    streamed right now → the chunk number reserved so far (no chunk of theirs has reached it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._links: dict[str, SessionLink] = {}
        self._replies: dict[str, int] = {}
        self._save_failing = False
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            for chat_id, item in raw.get("sessions", {}).items():
                self._links[chat_id] = SessionLink(item["opencode"], item.get("title"))
            replies = raw.get("replies", {})
            if isinstance(replies, list):  # version 1 kept no chunk numbers
                self._replies = {str(reply_id): UNKNOWN_SEQUENCE for reply_id in replies}
            else:
                self._replies = {str(k): _sequence(v) for k, v in replies.items()}
        except FileNotFoundError:
            pass
        except OSError as exc:
            # The file or its directory cannot be used: say so once, here; the writes that
            # fail the same way log at DEBUG until one succeeds.
            log.warning(
                "cannot read the state file %s (%s); going on without it: after a restart "
                "chats may lose their OpenCode context",
                external(path),
                external(exc),
            )
            self._save_failing = True
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # A damaged state file costs only conversation context, never a message.
            log.warning("ignoring unreadable state file %s (%s)", external(path), type(exc).__name__)

    def get(self, chat_session_id: str) -> SessionLink | None:
        return self._links.get(chat_session_id)

    def set(self, chat_session_id: str, link: SessionLink) -> None:
        if self._links.get(chat_session_id) == link:
            return
        self._links[chat_session_id] = link
        self._save()

    def forget(self, chat_session_id: str) -> None:
        if self._links.pop(chat_session_id, None) is not None:
            self._save()

    def begin_reply(self, reply_id: str) -> ReplyStart:
        """Note that `reply_id` is being streamed; says whether an earlier run had begun it."""
        reserved = self._replies.get(reply_id)
        start = ReplyStart(rerun=reserved is not None, first_sequence=reserved or 0)
        self._replies[reply_id] = start.first_sequence + SEQUENCE_BLOCK
        self._save()
        return start

    def reserve(self, reply_id: str, sequence: int) -> None:
        """Call before writing chunk `sequence` of `reply_id`: keeps the reservation above it."""
        if sequence >= self._replies.get(reply_id, 0):
            self._replies[reply_id] = sequence + SEQUENCE_BLOCK
            self._save()

    def end_reply(self, reply_id: str) -> None:
        if self._replies.pop(reply_id, None) is not None:
            self._save()

    def begun(self, reply_id: str) -> bool:
        return reply_id in self._replies

    def _save(self) -> None:
        doc = {
            "version": 2,
            "replies": dict(sorted(self._replies.items())),
            "sessions": {
                chat_id: {"opencode": link.opencode_session_id, "title": link.title}
                for chat_id, link in self._links.items()
            },
        }
        try:
            write_private_file(self.path, json.dumps(doc, indent=1, sort_keys=True))
        except OSError as exc:
            level = logging.DEBUG if self._save_failing else logging.WARNING
            log.log(
                level,
                "could not save the state file %s (%s); going on without it: after a restart "
                "chats may lose their OpenCode context",
                external(self.path),
                external(exc),
            )
            self._save_failing = True
        else:
            if self._save_failing:
                log.info("the state file %s is saved again", external(self.path))
            self._save_failing = False


def _sequence(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return UNKNOWN_SEQUENCE
    if not math.isfinite(value) or value < 0:
        return UNKNOWN_SEQUENCE
    return int(value)
