"""The control socket's server: a task in the orchestrator's root nursery.

It listens on `control.sock` (mode 0600, in the 0700 instance directory) and answers each
connection with one reply line (`_control_protocol.py`). Every request goes to the
orchestrator's one serialised command path (`start_worker`, `stop_worker`, `restart_worker`,
`reload`, `workers()`), never around it. Bounded: a request line of at most
`MAX_REQUEST_BYTES` within `READ_TIMEOUT_S`, at most `MAX_CONNECTIONS` answered at once (the
next ones get `busy`); a client that sends garbage gets an error reply, and nothing a client
does can end the orchestrator: each connection's failure is contained in its own task.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from oco.errors import OcoError

from . import _control_protocol as protocol
from ._control import OrchestratorStopping, ReloadUnavailable, UnknownWorker, WorkerChange
from ._status_table import worker_json

if TYPE_CHECKING:
    from ._orchestrator import Orchestrator

log = logging.getLogger(__name__)

_MAX_PATH = 100  # sun_path holds 108 bytes; a longer path is reached through its directory's fd


@contextlib.contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """An address for `path` that fits `sun_path`: the path itself, or for a long one
    `/proc/self/fd/N/NAME` through an O_PATH descriptor of its directory (Linux)."""
    if len(os.fsencode(path)) <= _MAX_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def _change_json(change: WorkerChange) -> dict[str, Any]:
    return {"worker": worker_json(change.status), "changed": change.changed}


async def answer(orchestrator: Orchestrator, data: dict[str, Any]) -> bytes:
    """The reply line to a checked request, carried out through the orchestrator's API."""
    cmd = data["cmd"]
    try:
        if cmd == "ping":
            return protocol.ok(orchestrator.identity())
        if cmd == "workers":
            return protocol.ok({"workers": [worker_json(w) for w in orchestrator.workers()]})
        if cmd == "reload":
            plan = await orchestrator.reload()
            return protocol.ok({"plan": _plan_json(plan), "summary": plan.summary()})
        act = {
            "start": orchestrator.start_worker,
            "stop": orchestrator.stop_worker,
            "restart": orchestrator.restart_worker,
        }[cmd]
        if data["worker"] == protocol.ALL and not orchestrator.has_worker(protocol.ALL):
            changes = [await act(row.key) for row in orchestrator.workers()]
            return protocol.ok({"workers": [_change_json(c) for c in changes]})
        return protocol.ok(_change_json(await act(data["worker"])))
    except UnknownWorker as exc:
        return protocol.error("unknown_worker", str(exc))
    except ReloadUnavailable as exc:
        return protocol.error("unavailable", str(exc))
    except OrchestratorStopping as exc:
        return protocol.error("stopping", str(exc))
    except OcoError as exc:
        return protocol.error("failed", str(exc))


def _plan_json(plan: Any) -> dict[str, Any]:
    """The plan's fields as JSON (tuples as lists; a rename as {"key", "old", "new"})."""
    import attrs

    return json.loads(json.dumps(attrs.asdict(plan), default=str))


async def _read_line(stream: trio.SocketStream) -> bytes:
    """One request line (without its newline); `BadRequest("too_large")` past the limit."""
    data = b""
    while b"\n" not in data:
        chunk = await stream.receive_some(protocol.MAX_REQUEST_BYTES + 1)
        if not chunk:
            break  # EOF: a line without a newline is still one line
        data += chunk
        if len(data.split(b"\n", 1)[0]) > protocol.MAX_REQUEST_BYTES:
            raise protocol.BadRequest("too_large", protocol.ERROR_CODES["too_large"])
    return data.split(b"\n", 1)[0].rstrip(b"\r")


async def _serve_one(
    orchestrator: Orchestrator, stream: trio.SocketStream, limiter: trio.CapacityLimiter
) -> None:
    async with stream:
        try:
            limiter.acquire_nowait()
        except trio.WouldBlock:
            await _send(stream, protocol.error("busy", protocol.ERROR_CODES["busy"]))
            return
        try:
            reply = await _reply_to(orchestrator, stream)
            await _send(stream, reply)
        finally:
            limiter.release()


async def _reply_to(orchestrator: Orchestrator, stream: trio.SocketStream) -> bytes:
    try:
        with trio.fail_after(protocol.READ_TIMEOUT_S):
            line = await _read_line(stream)
        return await answer(orchestrator, protocol.parse_request(line))
    except protocol.BadRequest as exc:
        return protocol.error(exc.code, str(exc))
    except trio.TooSlowError:
        return protocol.error("timeout", protocol.ERROR_CODES["timeout"])
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        return b""  # the client went away
    except Exception as exc:  # a bug must cost one reply, not the orchestrator
        log.error("control request failed (a bug in trio-oco): %r", exc, exc_info=True)
        return protocol.error(
            "internal", f"internal error ({type(exc).__name__}); see the orchestrator's log"
        )


async def _send(stream: trio.SocketStream, reply: bytes) -> None:
    if not reply:
        return
    with (
        contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError),
        trio.move_on_after(protocol.READ_TIMEOUT_S),
    ):
        await stream.send_all(reply)


async def serve_control(
    orchestrator: Orchestrator, path: Path, *, task_status: trio.TaskStatus[bool] = trio.TASK_STATUS_IGNORED
) -> None:
    """Listen on `path` and answer requests until cancelled; `started(False)` when the socket
    cannot be made (logged once: the workers run on without a control channel)."""
    listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a dead predecessor's; we hold the instance lock
        with unix_address(path) as address:
            await listener.bind(address)
            os.chmod(address, 0o600)
        listener.listen(protocol.MAX_CONNECTIONS)
    except OSError as exc:
        listener.close()
        log.warning(
            "no control socket at %s: %s; restart/stop/reload commands cannot reach this process",
            path,
            exc.strerror or exc,
        )
        task_status.started(False)
        return
    limiter = trio.CapacityLimiter(protocol.MAX_CONNECTIONS)
    try:
        async with trio.open_nursery() as connections:
            task_status.started(True)
            server = trio.SocketListener(listener)
            while True:
                try:
                    stream = await server.accept()
                except OSError as exc:  # e.g. EMFILE: wait a little rather than spin
                    log.debug("control accept failed: %s", exc)
                    await trio.sleep(0.1)
                    continue
                connections.start_soon(_serve_one, orchestrator, stream, limiter)
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
