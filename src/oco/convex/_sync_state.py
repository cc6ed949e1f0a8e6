"""The client side of a Convex sync session as a pure state machine (no I/O, no trio).

It keeps what `local_state.ts`, `remote_query_set.ts` and `web_socket_manager.ts` of the
`convex` npm package keep: the local query set and its version, the remote state version,
the reconnect bookkeeping (connection count, last close reason, backoff retries) and the
outgoing messages; and how loudly to log reconnects (`ReconnectLog`). Time comes in as
arguments (monotonic seconds), so the backoff rules are tested without a clock. The trio shell in `_sync_client.py` moves frames and time around it.
"""

from __future__ import annotations

from typing import Any

import attrs

from oco._retry import SYNC_RECONNECT
from oco.convex._sync_protocol import (
    INITIAL_VERSION,
    AddQuery,
    Connect,
    ModifyQuerySet,
    QueryFailed,
    QueryMalformed,
    QueryRemoved,
    QueryUpdated,
    RemoveQuery,
    SyncProtocolError,
    Transition,
    TransitionChunk,
    decode_server_message,
    encode_value,
)

# The reconnect policy is SYNC_RECONNECT (oco._retry), as in web_socket_manager.ts: 100 ms
# after a close we initiated (no sign of a server problem), 1 s after an unexplained server
# close or a frame we cannot read, 3 s for "overloaded" reasons; doubling per consecutive
# failure, with +-50 % jitter.
CLIENT_INITIAL_BACKOFF = 0.1
UNKNOWN_INITIAL_BACKOFF = SYNC_RECONNECT.wait_initial
# The cap: the JS client's 16 s while no socket opens (a refused upgrade costs the server
# one request); 60 s once sockets open and then fail, since every opening re-runs the whole
# query set (the worker's message history among it) only for the next frame to break it.
MAX_BACKOFF = SYNC_RECONNECT.wait_max
MAX_REOPEN_BACKOFF = 60.0
# Where the JS client resets its retry count on every Transition that completes a resync,
# we wait until the socket has also stayed open this long after it: a server that sends
# one good Transition and then a bad frame otherwise gets a 0.1 s loop (130 reconnects
# in 20 s were seen). 30 s is two of the server's 15 s Ping intervals.
HEALTHY_AFTER_S = SYNC_RECONNECT.healthy_after
# A failing socket logs its first reconnect at WARNING, later ones at DEBUG, and a WARNING
# summary when this long has passed since the last warning.
SUMMARY_WINDOW_S = 300.0
# Longest Transition that TransitionChunks may join into (each frame is bounded by the
# transport): three query results at the 16 MiB a Convex function may return, and margin.
MAX_TRANSITION_CHARS = 64 << 20
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
CLIENT_CLOSE = "client"


def initial_backoff(reason: str | None) -> float:
    """The first retry delay for a close `reason` (CLIENT_CLOSE or the server's reason)."""
    if reason == CLIENT_CLOSE:
        return CLIENT_INITIAL_BACKOFF
    for prefix, delay in _SERVER_REASON_BACKOFF.items():
        if reason and reason.startswith(prefix):
            return delay
    return UNKNOWN_INITIAL_BACKOFF


def backoff_delay(
    reason: str | None, retries: int, jitter: float, *, max_backoff: float = MAX_BACKOFF
) -> float:
    """Seconds to wait before reconnect number `retries` (0-based); `jitter` in [0, 1)."""
    policy = attrs.evolve(SYNC_RECONNECT, wait_initial=initial_backoff(reason), wait_max=max_backoff)
    return policy.delay(retries + 1, jitter)


@attrs.frozen
class ReconnectReport:
    """How to log one reconnect: `loud` at WARNING (else DEBUG); a loud one with `repeats`
    is a summary of that many reconnects over the last `span` seconds."""

    loud: bool
    repeats: int = 0
    span: float = 0.0


class ReconnectLog:
    """Decides how loudly each reconnect is logged, so a server that keeps failing costs a
    few lines, not one per attempt: the first of a burst at WARNING with its cause, the
    rest at DEBUG, and a WARNING summary once `window` seconds passed since the last one."""

    def __init__(self, window: float = SUMMARY_WINDOW_S) -> None:
        self._window = window
        self._since: float | None = None  # when the last WARNING went out
        self._quiet = 0  # reconnects since then, logged at DEBUG only

    def on_reconnect(self, now: float) -> ReconnectReport:
        if self._since is not None and now - self._since < self._window:
            self._quiet += 1
            return ReconnectReport(loud=False)
        since, repeats = self._since, self._quiet
        self._since, self._quiet = now, 0
        if since is None or repeats == 0:
            return ReconnectReport(loud=True)
        return ReconnectReport(loud=True, repeats=repeats + 1, span=now - since)


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
    """Joins TransitionChunks (they arrive in order) into one Transition of at most
    `max_chars` characters."""

    def __init__(self, max_chars: int = MAX_TRANSITION_CHARS) -> None:
        self._parts: list[str] = []
        self._id: str | None = None
        self._total = 0
        self._chars = 0
        self._max_chars = max_chars

    @property
    def busy(self) -> bool:
        return self._id is not None

    def reset(self) -> None:
        self._parts, self._id, self._total, self._chars = [], None, 0, 0

    def feed(self, chunk: TransitionChunk) -> Transition | None:
        bad = (
            chunk.part_number < 0
            or chunk.total_parts <= 0
            or chunk.part_number >= chunk.total_parts
            or (
                self._id is not None and (self._id != chunk.transition_id or self._total != chunk.total_parts)
            )
        )
        if bad or chunk.part_number != len(self._parts):
            self.reset()
            raise SyncProtocolError("invalid or out-of-order TransitionChunk")
        self._chars += len(chunk.chunk)
        if self._chars > self._max_chars:
            self.reset()
            raise SyncProtocolError(f"TransitionChunks join into more than {self._max_chars} characters")
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

    def __init__(self, session_id: str, *, max_transition_chars: int = MAX_TRANSITION_CHARS) -> None:
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
        self._opened_at: float | None = None  # the current socket's opening, if any
        self._synced_at: float | None = None  # when it first had every result again
        self.chunks = ChunkAssembler(max_transition_chars)

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

    def on_open(self, client_ts_ms: int, *, now: float) -> None:
        """A new socket is up (at monotonic `now`): queue Connect and the query set anew."""
        self.chunks.reset()
        self._opened_at, self._synced_at = now, None
        self._remote = INITIAL_VERSION
        self._outstanding = set(self.queries)
        self._query_set_version = 1
        self._outbox = [
            Connect(
                self.session_id,
                self.connection_count,
                self.last_close_reason,
                client_ts_ms,
                self.max_observed_ts,
            ),
            ModifyQuerySet(0, 1, tuple(self.queries.values())),
        ]
        self.connection_count += 1
        self.last_close_reason = None

    def on_close(self, reason: str, kind: str | None, jitter: float, *, now: float) -> float:
        """The socket is gone because of `reason`; returns the delay before reconnecting.

        `kind` is CLIENT_CLOSE when we closed it, else the server's close reason (None when
        unknown). Consecutive failures back off further; only a socket that was healthy
        (`HEALTHY_AFTER_S` past its resync) starts the count over."""
        self.chunks.reset()
        if self.last_close_reason is None:
            self.last_close_reason = reason
        if self._synced_at is not None and now - self._synced_at >= HEALTHY_AFTER_S:
            self.retries = 0
        cap = MAX_BACKOFF if self._opened_at is None else MAX_REOPEN_BACKOFF
        self._opened_at = self._synced_at = None
        delay = backoff_delay(kind, self.retries, jitter, max_backoff=cap)
        self.retries += 1
        return delay

    # -- server messages -----------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Every query re-sent at the last reconnect has its result again."""
        return not self._outstanding

    def apply(self, transition: Transition, *, now: float) -> dict[int, QueryResult]:
        """Apply a Transition (at monotonic `now`); returns the new results of live queries
        by query id. A modification that could not be read fails its query."""
        if transition.start_version != self._remote:
            raise VersionMismatch(
                f"transition starts at {transition.start_version}, client is at {self._remote}"
            )
        results: dict[int, QueryResult] = {}
        for m in transition.modifications:
            match m:
                case QueryUpdated():
                    result: QueryResult = QuerySuccess(m.value)
                case QueryFailed():
                    result = QueryError(m.error_message, m.error_data)
                case QueryMalformed():
                    result = QueryError(f"malformed result from the server ({m.detail})")
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
        if self.synced and self._synced_at is None and self._opened_at is not None:
            self._synced_at = now
        return results


def _canonical_udf_path(path: str) -> str:
    """`module` → `module:default`, `module.js:fn` → `module:fn` (udf_path_utils.ts)."""
    module, sep, function = path.rpartition(":")
    if not sep:
        module, function = path, "default"
    if module.endswith(".js"):
        module = module[:-3]
    return f"{module}:{function}"
