"""Chat session → OpenCode session ids, kept in a per-worker state file.

`workers:markConnected` clears `opencodeSessionId` in Convex, and a restart forgets memory;
this file is what lets a chat keep its OpenCode context across both (reference §4.7, §9.3-19).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import attrs

from oco.config import write_private_file

log = logging.getLogger(__name__)


@attrs.frozen
class SessionLink:
    opencode_session_id: str
    title: str | None = None


class SessionMap:
    """Per-worker state, one small JSON file written atomically (0600).

    `sessions`: chat session id → OpenCode session id and title. `replies`: the replies being
    streamed right now, so a run that follows a crash knows that a reply already has chunks
    and must not number its own from 0 again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._links: dict[str, SessionLink] = {}
        self._replies: set[str] = set()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            for chat_id, item in raw.get("sessions", {}).items():
                self._links[chat_id] = SessionLink(item["opencode"], item.get("title"))
            self._replies = {str(reply_id) for reply_id in raw.get("replies", [])}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A damaged state file costs only conversation context, never a message.
            log.warning("ignoring unreadable state file %s (%s)", path, type(exc).__name__)

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

    def begin_reply(self, reply_id: str) -> bool:
        """Note that `reply_id` is being streamed; True when an earlier run had begun it too."""
        if reply_id in self._replies:
            return True
        self._replies.add(reply_id)
        self._save()
        return False

    def end_reply(self, reply_id: str) -> None:
        if reply_id in self._replies:
            self._replies.discard(reply_id)
            self._save()

    def _save(self) -> None:
        doc = {
            "version": 1,
            "replies": sorted(self._replies),
            "sessions": {
                chat_id: {"opencode": link.opencode_session_id, "title": link.title}
                for chat_id, link in self._links.items()
            },
        }
        write_private_file(self.path, json.dumps(doc, indent=1, sort_keys=True))
