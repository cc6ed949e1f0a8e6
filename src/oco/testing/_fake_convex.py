"""`FakeConvex`: the reference backend's tables and functions in memory, plus web-app helpers.

Tests drive it two ways: over HTTP like a worker (`fake.app`, in process through
`in_process_convex` or served by `serve_fake_convex`), and directly in Python like the web
app (`create_worker`, `send_message`, `wait_reply`, ...). Every committed mutation bumps
`fake.version`, which waiters and the sync endpoint (`fake.sync`) watch.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
from trio_util import AsyncValue

from oco.convex import CodecError, decode, structure
from oco.domain import ChatMessage, WorkerRecord
from oco.testing import _fake_convex_webapp_api, _fake_convex_worker_api  # noqa: F401 (register)
from oco.testing._fake_convex_app import make_app
from oco.testing._fake_convex_errors import (
    FunctionFailure,
    QueryFailure,
    canonical,
    not_found,
    render,
    stable_request_id,
    throw_site,
    wrong_kind,
)
from oco.testing._fake_convex_faults import Faults
from oco.testing._fake_convex_store import FUNCTIONS, Function, Store, validate_args
from oco.testing._fake_convex_values import (
    MAX_ARGS_SIZE,
    MAX_RESULT_SIZE,
    display,
    format_size,
    size,
    value_problem,
)
from oco.testing._fake_convex_worker_api import nanoid
from oco.testing._sync_server import sync_endpoint

# The two kinds of Convex deployment a test can run against: `FakeConvex(prod=mode == "prod")`.
CONVEX_MODES = ("dev", "prod")

WebSocketHandler = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@attrs.frozen
class Call:
    """One function call the fake received over HTTP (`secret` and `sessionId` redacted)."""

    function: str
    kind: str
    args: dict[str, Any]
    at: float  # the fake's clock, milliseconds


@attrs.frozen
class CreatedWorker:
    """A worker made through the web-app path; `token` is its full token (not in the repr)."""

    token: str = attrs.field(repr=False)
    machine_id: str
    worker_id: str

    @property
    def secret(self) -> str:
        """The secret part of `token` (what must never show in output)."""
        return self.token.split(":secret_", 1)[1]

    def token_with_secret(self, secret: str) -> str:
        """This worker's token with another secret (a wrong one, for rejection tests)."""
        return f"{self.token.rsplit(':secret_', 1)[0]}:secret_{secret}"


@attrs.frozen
class Chunk:
    chunk: str
    sequence: float
    timestamp: float


class FakeFunctionError(Exception):
    """A web-app helper's call failed the way the backend would fail it."""


_REDACTED = {"secret", "sessionId"}


class FakeConvex:
    """The fake backend. `clock` gives Convex timestamps in ms (pass a trio clock under MockClock).

    `prod=True` behaves like a production deployment: a failed function's error reaches the
    client as `[Request ID: ...] Server Error` only (a ConvexError's data kept) and log lines
    are dropped. `strict_client_version` refuses a `Convex-Client` header that is not
    `<name>-<semver>`; real Convex refuses only one without a `-` (see `_fake_convex_http`).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = lambda: time.time() * 1000,
        prod: bool = False,
        strict_client_version: bool = True,
    ) -> None:
        self.prod = prod
        self.strict_client_version = strict_client_version
        self.store = Store(clock)
        self.version: AsyncValue[int] = AsyncValue(0)
        self.faults = Faults()
        self.calls: list[Call] = []
        self.counts: Counter[str] = Counter()
        self.http_requests = 0
        self.batch_enabled = True
        # Where another module mounts the sync protocol: path -> ASGI websocket handler,
        # e.g. {"/api/sync": h}; "/api/{version}/sync" matches any version segment.
        self.websocket_routes: dict[str, WebSocketHandler] = {}
        self.app = make_app(self)
        # The sync protocol on the paths the official clients use (any client version).
        self.sync = sync_endpoint(self.run_query, self.version)
        self.websocket_routes["/api/{version}/sync"] = self.websocket_routes["/api/sync"] = self.sync
        self._owner_session: dict[str, str] = {}  # userId -> a web session of that user
        self._default_user_session: str | None = None

    def __repr__(self) -> str:
        mode = "prod" if self.prod else "dev"
        return f"<FakeConvex {mode} version={self.version.value} requests={self.http_requests}>"

    # -- running functions ----------------------------------------------------------------

    def record(self, function: str, kind: str, args: dict[str, Any]) -> None:
        shown = {k: ("***" if k in _REDACTED else v) for k, v in args.items()}
        self.calls.append(Call(function, kind, shown, float(self.store.clock())))
        self.counts[function] += 1

    def resolve(self, path: str, kind: str) -> Function:
        """The public function `path` called as `kind`, or the failure Convex answers."""
        function = FUNCTIONS.get(path)
        if function is None or not function.public:
            raise not_found(path)
        if function.kind != kind:
            raise wrong_kind(path, kind, function.kind)
        return function

    def invoke(self, kind: str, path: str, raw_args: Any) -> Any:
        """Run `path` as a client call does: resolve it, parse and check its arguments (JSON
        from the request: an object, or the legacy list of one), then `execute` it."""
        self.resolve(path, kind)
        target = canonical(path)
        positional = raw_args if isinstance(raw_args, list) else [raw_args]
        try:
            values = [decode(arg) for arg in positional]
        except CodecError as exc:
            raise FunctionFailure(f"Invalid arguments for {target}: {exc}", uncaught=False) from None
        if (problem := value_problem(values)) is not None:
            raise FunctionFailure(f"Invalid arguments for {target}: {problem}", uncaught=False)
        if (measured := size(values)) > MAX_ARGS_SIZE:
            raise FunctionFailure(
                f"Arguments for {target} are too large (actual: {format_size(measured)}, "
                f"limit: {format_size(MAX_ARGS_SIZE)})",
                uncaught=False,
            )
        if len(values) != 1:
            raise FunctionFailure(
                "ArgumentValidationError: Expected to receive a single object as the function's "
                f"argument. Instead received {len(values)} arguments: {display(values)}",
                uncaught=False,
            )
        if not isinstance(values[0], dict):
            raise FunctionFailure(
                "ArgumentValidationError: Expected to receive an object as the function's "
                f"argument. Instead received: {display(values[0])}",
                uncaught=False,
            )
        return self.execute(path, values[0])

    def execute(self, path: str, args: dict[str, Any]) -> Any:
        """Run a function as one transaction; a committed mutation bumps `version`.

        A failure (`FunctionFailure`) undoes the function's writes; `store.log_lines` holds
        what it logged either way."""
        function = FUNCTIONS[path]
        self.store.begin()
        try:
            validate_args(function.args, args)
            value = function.handler(self.store, args)
            if (problem := value_problem(value)) is not None:
                raise FunctionFailure(
                    f"Function {canonical(path)} return value invalid: {problem}", uncaught=False
                )
            if (measured := size(value)) > MAX_RESULT_SIZE:
                raise FunctionFailure(
                    f"Function {canonical(path)} return value is too large (actual: "
                    f"{format_size(measured)}, limit: {format_size(MAX_RESULT_SIZE)})",
                    uncaught=False,
                )
            self.store.commit()
        except FunctionFailure as failure:
            if failure.uncaught and failure.site is None:
                failure.site = throw_site(path, failure.message)
            raise
        finally:
            if self.store.in_transaction:  # it failed: undo its writes
                self.store.rollback()
        if function.kind == "mutation":
            self.version.value += 1
        return value

    def error_message(self, failure: FunctionFailure, request_id: str) -> str:
        """The `errorMessage` this deployment sends for `failure`."""
        return render(failure, request_id, prod=self.prod)

    def run_query(self, path: str, args: dict[str, Any]) -> Any:
        """A query's current value (pure: no version bump, no call record), as the sync
        endpoint runs it: a failure is a `QueryFailure` carrying the deployment's text."""
        try:
            self.resolve(path, "query")
            return self.execute(path, args)
        except FunctionFailure as failure:
            request = stable_request_id(path, args, failure.message)
            raise QueryFailure(failure, self.error_message(failure, request), prod=self.prod) from None

    def websocket_route(self, path: str) -> WebSocketHandler | None:
        if path in self.websocket_routes:
            return self.websocket_routes[path]
        parts = path.split("/")
        if len(parts) == 4 and parts[:2] == ["", "api"] and parts[3] == "sync":
            return self.websocket_routes.get("/api/{version}/sync")
        return None

    def call(self, path: str, args: dict[str, Any]) -> Any:
        """Call a function directly, as the web app would (errors as `FakeFunctionError`)."""
        try:
            return self.execute(path, args)
        except FunctionFailure as exc:
            raise FakeFunctionError(f"{path}: {exc}") from None

    # -- the web app ----------------------------------------------------------------------

    def create_user(self, name: str = "Test User") -> str:
        """A user and a logged-in web session; returns the session id (the `sessionId` arg)."""
        user_id, session_id = nanoid(), nanoid()
        self.store.insert("users", {"userId": user_id, "name": name})
        self.store.insert("sessions", {"sessionId": session_id, "userId": user_id})
        self._owner_session[user_id] = session_id
        self.version.value += 1
        return session_id

    @property
    def user_session(self) -> str:
        """The default user's web session (created on first use)."""
        if self._default_user_session is None:
            self._default_user_session = self.create_user()
        return self._default_user_session

    def create_worker(
        self,
        *,
        approved: bool = True,
        name: str | None = None,
        machine_id: str | None = None,
        user_session: str | None = None,
        online: bool = False,
    ) -> CreatedWorker:
        """A worker on a (new or given) machine of the user; approved unless told otherwise.

        `online=True` marks it online as if it had run already (the web app starts sessions
        only with online workers)."""
        session = user_session or self.user_session
        machine_id = machine_id or nanoid()
        if self.store.first("machines", machineId=machine_id) is None:
            self.call(
                "machines:create", {"sessionId": session, "machineId": machine_id, "name": "test machine"}
            )
        worker_id = nanoid()
        args: dict[str, Any] = {"sessionId": session, "machineId": machine_id, "workerId": worker_id}
        if name is not None:
            args["name"] = name
        created = self.call("workers:create", args)
        if approved:
            self.call("workers:approve", {"sessionId": session, "workerId": worker_id})
        if online:
            record = self.store.first("workers", workerId=worker_id)
            assert record is not None  # just created
            self.store.patch(record, status="online")
        return CreatedWorker(created["token"], machine_id, worker_id)

    def _session_owning_worker(self, worker_id: str) -> str:
        worker = self.store.first("workers", workerId=worker_id)
        machine = worker and self.store.first("machines", machineId=worker["machineId"])
        if not machine:
            raise FakeFunctionError(f"no worker {worker_id}")
        return self._owner_session[machine["userId"]]

    def _session_owning_chat(self, chat_session_id: str) -> str:
        chat = self.store.first("chatSessions", sessionId=chat_session_id)
        if chat is None:
            raise FakeFunctionError(f"no chat session {chat_session_id}")
        return self._owner_session[chat["userId"]]

    def _as_owner(self, path: str, worker_id: str) -> Any:
        session = self._session_owning_worker(worker_id)
        return self.call(path, {"sessionId": session, "workerId": worker_id})

    def approve(self, worker_id: str) -> None:
        self._as_owner("workers:approve", worker_id)

    def reject(self, worker_id: str) -> None:
        self._as_owner("workers:reject", worker_id)

    def remove(self, worker_id: str) -> None:
        self._as_owner("workers:remove", worker_id)

    def request_connect(self, worker_id: str) -> dict[str, Any]:
        return self.call("workers:requestConnect", {"workerId": worker_id})

    def start_session(self, worker_id: str) -> str:
        return self._as_owner("chat:startSession", worker_id)

    def send_message(self, chat_session_id: str, content: str, model: str = "fake/fake-model") -> str:
        """Send a user message; returns the assistant placeholder's message id."""
        session = self._session_owning_chat(chat_session_id)
        args = {"sessionId": session, "chatSessionId": chat_session_id, "content": content, "model": model}
        return self.call("chat:sendMessage", args)

    def end_session(self, chat_session_id: str) -> None:
        session = self._session_owning_chat(chat_session_id)
        self.call("chat:endSession", {"sessionId": session, "chatSessionId": chat_session_id})

    def messages(self, chat_session_id: str) -> list[ChatMessage]:
        session = self._session_owning_chat(chat_session_id)
        raw = self.call("chat:getMessages", {"sessionId": session, "chatSessionId": chat_session_id})
        return structure("chat:getMessages", raw, list[ChatMessage])

    def message(self, message_id: str) -> ChatMessage | None:
        doc = self.store.first("chatMessages", messageId=message_id)
        if doc is None:
            return None
        return structure("chatMessages", _fake_convex_worker_api.message_view(doc), ChatMessage)

    def chunks(self, message_id: str) -> list[Chunk]:
        found = sorted(self.store.find("chatChunks", messageId=message_id), key=lambda c: c["sequence"])
        return [Chunk(c["chunk"], c["sequence"], c["timestamp"]) for c in found]

    def worker(self, worker_id: str) -> WorkerRecord | None:
        doc = self.store.first("workers", workerId=worker_id)
        if doc is None:
            return None
        raw = self.run_query(
            "workers:getByMachineAndWorker", {"machineId": doc["machineId"], "workerId": worker_id}
        )
        return structure("workers:getByMachineAndWorker", raw, WorkerRecord | None)

    # -- waiting ------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Return once `predicate()` holds, re-checked after every commit; `trio.TooSlowError` at timeout."""
        with trio.fail_after(timeout):
            await self.version.wait_value(lambda _version: predicate())

    async def wait_reply(self, message_id: str, timeout: float) -> ChatMessage:
        """The assistant message `message_id` once completed."""
        await self.wait_for(lambda: bool((m := self.message(message_id)) and m.completed), timeout)
        reply = self.message(message_id)
        assert reply is not None
        return reply
