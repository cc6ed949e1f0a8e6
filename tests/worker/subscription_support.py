"""What the subscription tests count and ask: HTTP watch queries, and a model-less message."""

from __future__ import annotations

from oco.testing import FakeConvex

WATCH_QUERIES = (
    "workers:getByMachineAndWorker",
    "chat:subscribeToWorkerSessions",
    "chat:subscribeToWorkerMessages",
)
SUBSCRIBE = {"convex_transport": "subscribe"}


def watch_calls(fake: FakeConvex) -> int:
    return sum(fake.counts[name] for name in WATCH_QUERIES)


async def ask_without_model(fake: FakeConvex, worker_id: str, timeout: float = 10) -> str:
    chat = fake.start_session(worker_id)
    reply_id = fake.send_message(chat, "which model?", model="")
    return (await fake.wait_reply(reply_id, timeout=timeout)).content
