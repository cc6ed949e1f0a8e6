"""The control protocol: one JSON request line in, one JSON reply line out, then the socket closes.

Spoken over the orchestrator's control socket (`control.sock` in its instance directory, mode
0600, so only its user can connect; see docs/control-protocol.md). Pure: bytes in, decisions
out; the server (`_control_socket.py`) and the client (`_control_client.py`) share it.

Request (UTF-8, at most `MAX_REQUEST_BYTES` including the newline, within `READ_TIMEOUT_S`):

    {"v": 1, "cmd": "restart", "worker": "alpha"}

`cmd` is one of `COMMANDS`: `ping` (who are you), `workers` (every worker's status),
`start` / `stop` / `restart` (with `worker`: a name, worker id or `machineId:workerId` key, or
`"all"`), `reload` (re-read the workers file, like SIGHUP). Unknown keys are ignored, so a
newer client may send more.

Reply:

    {"v": 1, "ok": true, "result": {...}}
    {"v": 1, "ok": false, "error": {"code": "unknown_worker", "message": "no worker named 'x' ..."}}

`code` is one of `ERROR_CODES`; `message` is one line for a person. A reply's `result` may gain
fields in a later version of the same `v`; readers ignore what they do not know.
"""

from __future__ import annotations

import json
from typing import Any

VERSION = 1
MAX_REQUEST_BYTES = 4096
MAX_REPLY_BYTES = 1 << 20  # what a client reads at most (a status of many workers fits)
READ_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 8
WORKER_COMMANDS = ("start", "stop", "restart")
COMMANDS = ("ping", "workers", "reload", *WORKER_COMMANDS)
ALL = "all"

#: error code → what it means (docs/control-protocol.md has the same table).
ERROR_CODES = {
    "bad_request": "not one JSON object with a known `cmd` (and a `worker` where needed)",
    "too_large": f"the request line is longer than {MAX_REQUEST_BYTES} bytes",
    "timeout": f"no complete request line within {READ_TIMEOUT_S:.0f} s",
    "busy": f"{MAX_CONNECTIONS} requests are already being answered; try again",
    "unknown_worker": "no configured worker has that name, id or key (or several have)",
    "unavailable": "this orchestrator cannot do that (reload in dev mode)",
    "stopping": "the orchestrator is stopping and takes no more commands",
    "failed": "the command was carried out and failed (e.g. the workers file does not load)",
    "internal": "a bug in trio-oco; its log has the details",
}


class BadRequest(ValueError):
    """A request line the server refuses; `code` is its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_request(line: bytes) -> dict[str, Any]:
    """The request in `line` (without its newline), checked; `BadRequest` otherwise."""
    if len(line) > MAX_REQUEST_BYTES:
        raise BadRequest("too_large", ERROR_CODES["too_large"])
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("bad_request", "the request is not one line of JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("bad_request", "the request must be a JSON object")
    if data.get("v", VERSION) != VERSION:
        raise BadRequest(
            "bad_request", f"unknown protocol version {data.get('v')!r} (this server speaks {VERSION})"
        )
    cmd = data.get("cmd")
    if cmd not in COMMANDS:
        shown = repr(cmd)[:40]
        raise BadRequest("bad_request", f"unknown cmd {shown}; known: {', '.join(COMMANDS)}")
    if cmd in WORKER_COMMANDS:
        worker = data.get("worker")
        if not isinstance(worker, str) or not worker or len(worker) > 200:
            raise BadRequest("bad_request", f"{cmd} needs a `worker`: a name, worker id, key or {ALL!r}")
    return data


def request(cmd: str, worker: str | None = None) -> bytes:
    """A request line for `cmd` (what the client sends)."""
    data: dict[str, Any] = {"v": VERSION, "cmd": cmd}
    if worker is not None:
        data["worker"] = worker
    return json.dumps(data).encode() + b"\n"


def ok(result: Any) -> bytes:
    return json.dumps({"v": VERSION, "ok": True, "result": result}, ensure_ascii=False).encode() + b"\n"


def error(code: str, message: str) -> bytes:
    assert code in ERROR_CODES, code
    body = {"v": VERSION, "ok": False, "error": {"code": code, "message": message}}
    return json.dumps(body, ensure_ascii=False).encode() + b"\n"


def parse_reply(data: bytes) -> dict[str, Any]:
    """A reply as the client reads it; `ValueError` when it is not one."""
    reply = json.loads(data.decode("utf-8"))
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ValueError("not a control reply")
    if not reply["ok"] and not isinstance(reply.get("error"), dict):
        raise ValueError("an error reply without an error")
    return reply
