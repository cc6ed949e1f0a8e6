"""What the relay tests hand the relay: the reply to a chat's last user message."""

from __future__ import annotations

from oco.testing import FakeConvex
from oco.worker import PendingReply


def pending_reply(fake: FakeConvex, chat: str, reply_id: str) -> PendingReply:
    """`reply_id` as the planner would hand it over: answering the chat's last user message."""
    user = [m for m in fake.messages(chat) if m.role == "user"][-1]
    return PendingReply(chat, user.id, reply_id, user.content, user.model or None, user.timestamp)
