"""The client side of a Convex sync session as a pure state machine (no I/O, no trio).

It keeps what `local_state.ts`, `remote_query_set.ts` and `web_socket_manager.ts` of the
`convex` npm package keep: the local query set and its version, the remote state version,
the reconnect bookkeeping (connection count, last close reason, backoff retries) and the
outgoing messages. The trio shell in `_sync_client.py` moves frames and time around it.
"""

from __future__ import annotations

from typing import Any

import attrs

from oco.convex._sync_protocol import (
    INITIAL_VERSION,
    AddQuery,
    Connect,
    ModifyQuerySet,
    QueryFailed,
    QueryRemoved,
    QueryUpdated,
    RemoveQuery,
    SyncProtocolError,
    Transition,
    TransitionChunk,
    decode_server_message,
    encode_value,
)

# Backoff as in web_socket_manager.ts: 100 ms after a close we initiated (no sign of a
# server problem), 1 s after an unexplained server close, 3 s for "overloaded" reasons;
# doubling per consecutive failure, capped at 16 s, with +-50 % jitter.
CLIENT_INITIAL_BACKOFF = 0.1
UNKNOWN_INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 16.0
_SERVER_REASON_BACKOFF = {
    "InternalServerError": 1.0,
    "SubscriptionsWorkerFullError": 3.0,
    "TooManyConcurrentRequests": 3.0,
    "CommitterFullError": 3.0,
    "AwsTooManyRequestsException": 3.0,
    "ExecuteFullError": 3.0,
    "SystemTimeoutError": 3.0,
    "ExpiredInQueue": 3.0,
    "VectorIndexesUnavailable": 1.0,
    "SearchIndexesUnavailable": 1.0,
    "TableSummariesUnavailable": 1.0,
    "VectorIndexTooLarge": 3.0,
    "SearchIndexTooLarge": 3.0,
    "TooManyWritesInTimePeriod": 3.0,
}
# Close codes the JS client considers routine (4040: "not found", transient during a push).
EXPECTED_CLOSE_CODES = frozenset({1000, 1001, 1005, 4040})

CLIENT_CLOSE = "client"


def initial_backoff(reason: str | None) -> float:
    """The first retry delay for a close `reason` (CLIENT_CLOSE or the server's reason)."""
    if reason == CLIENT_CLOSE:
        return CLIENT_INITIAL_BACKOFF
    for prefix, delay in _SERVER_REASON_BACKOFF.items():
        if reason and reason.startswith(prefix):
            return delay
    return UNKNOWN_INITIAL_BACKOFF


def backoff_delay(reason: str | None, retries: int, jitter: float, *,
                  max_backoff: float = MAX_BACKOFF) -> float:
    """Seconds to wait before reconnect number `retries` (0-based); `jitter` in [0, 1)."""
    base = min(initial_backoff(reason) * 2 ** min(retries, 32), max_backoff)
    return base + base * (jitter - 0.5)


@attrs.frozen
class QuerySuccess:
    value: Any


@attrs.frozen
class QueryError:
    message: str
    data: Any = None


QueryResult = QuerySuccess | QueryError


class VersionMismatch(SyncProtocolError):
    """A Transition that does not start where the client's state is; the client reconnects."""


class ChunkAssembler:
    """Joins TransitionChunks (they arrive in order) into one Transition."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._id: str | None = None
        self._total = 0

    @property
    def busy(self) -> bool:
        return self._id is not None

    def reset(self) -> None:
        self._parts, self._id, self._total = [], None, 0

    def feed(self, chunk: TransitionChunk) -> Transition | None:
        bad = (chunk.part_number < 0 or chunk.total_parts <= 0
               or chunk.part_number >= chunk.total_parts
               or (self._id is not None and (self._id != chunk.transition_id
                                             or self._total != chunk.total_parts)))
        if bad or chunk.part_number != len(self._parts):
            self.reset()
            raise SyncProtocolError("invalid or out-of-order TransitionChunk")
        self._id, self._total = chunk.transition_id, chunk.total_parts
        self._parts.append(chunk.chunk)
        if len(self._parts) < self._total:
            return None
        text = "".join(self._parts)
        self.reset()
        message = decode_server_message(text)
        if not isinstance(message, Transition):
            raise SyncProtocolError("TransitionChunks did not join into a Transition")
        return message


class SyncState:
    """Local query set, remote version, reconnect bookkeeping and outbox of one client."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.queries: dict[int, AddQuery] = {}
        self.connection_count = 0
        self.last_close_reason: str | None = "InitialConnect"
        self.retries = 0
        self.max_observed_ts: int | None = None
        self._next_query_id = 0
        self._query_set_version = 0
        self._remote = INITIAL_VERSION
        self._outstanding: set[int] = set()
        self._outbox: list[Connect | ModifyQuerySet] = []
        self.chunks = ChunkAssembler()

    # -- local query set ----------------------------------------------------------------

    def add(self, udf_path: str, args: dict[str, Any]) -> int:
        """Subscribe; queues the ModifyQuerySet and returns the new query id."""
        encode_value(args)  # a bad value fails here, in the caller's task, not in the writer
        query = AddQuery(self._next_query_id, _canonical_udf_path(udf_path), dict(args))
        self._next_query_id += 1
        self.queries[query.query_id] = query
        self._modify((query,))
        return query.query_id

    def remove(self, query_id: int) -> None:
        """Unsubscribe; queues the ModifyQuerySet (nothing if the id is unknown)."""
        if self.queries.pop(query_id, None) is not None:
            self._outstanding.discard(query_id)
            self._modify((RemoveQuery(query_id),))

    def _modify(self, modifications: tuple[AddQuery | RemoveQuery, ...]) -> None:
        base = self._query_set_version
        self._query_set_version = base + 1
        # While disconnected this message is dropped at the next on_open(), which
        # replays the whole query set from version 0 anyway.
        self._outbox.append(ModifyQuerySet(base, base + 1, modifications))

    @property
    def has_outbox(self) -> bool:
        return bool(self._outbox)

    def take_outbox(self) -> list[Connect | ModifyQuerySet]:
        out, self._outbox = self._outbox, []
        return out

    # -- socket lifecycle ----------------------------------------------------------------

    def on_open(self, client_ts_ms: int) -> None:
        """A new socket is up: queue Connect and the full query set from scratch."""
        self.chunks.reset()
        self._remote = INITIAL_VERSION
        self._outstanding = set(self.queries)
        self._query_set_version = 1
        self._outbox = [
            Connect(self.session_id, self.connection_count, self.last_close_reason,
                    client_ts_ms, self.max_observed_ts),
            ModifyQuerySet(0, 1, tuple(self.queries.values())),
        ]
        self.connection_count += 1
        self.last_close_reason = None

    def on_close(self, reason: str, kind: str | None, jitter: float) -> float:
        """The socket is gone because of `reason`; returns the delay before reconnecting.

        `kind` is CLIENT_CLOSE when we closed it, else the server's close reason."""
        self.chunks.reset()
        if self.last_close_reason is None:
            self.last_close_reason = reason
        delay = backoff_delay(kind, self.retries, jitter)
        self.retries += 1
        return delay

    # -- server messages -----------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Every query re-sent at the last reconnect has its result again."""
        return not self._outstanding

    def apply(self, transition: Transition) -> dict[int, QueryResult]:
        """Apply a Transition; returns the new results of live queries by query id."""
        if transition.start_version != self._remote:
            raise VersionMismatch(
                f"transition starts at {transition.start_version}, client is at {self._remote}")
        results: dict[int, QueryResult] = {}
        for m in transition.modifications:
            match m:
                case QueryUpdated():
                    result: QueryResult = QuerySuccess(m.value)
                case QueryFailed():
                    result = QueryError(m.error_message, m.error_data)
                case QueryRemoved():
                    results.pop(m.query_id, None)
                    continue
            self._outstanding.discard(m.query_id)
            if m.query_id in self.queries:
                results[m.query_id] = result
        self._remote = transition.end_version
        ts = transition.end_version.ts
        if self.max_observed_ts is None or ts > self.max_observed_ts:
            self.max_observed_ts = ts
        if self.synced:
            self.retries = 0
        return results


def _canonical_udf_path(path: str) -> str:
    """`module` → `module:default`, `module.js:fn` → `module:fn` (udf_path_utils.ts)."""
    module, sep, function = path.rpartition(":")
    if not sep:
        module, function = path, "default"
    if module.endswith(".js"):
        module = module[:-3]
    return f"{module}:{function}"
