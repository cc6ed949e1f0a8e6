"""The control socket's client: send one request line, read one reply line (standard library only,
so `trio-oco restart NAME` starts fast: no trio, no configuration machinery)."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import _control_protocol as protocol

DEFAULT_TIMEOUT_S = 120.0  # a restart waits for the worker's cleanup (its shutdown timeout)


class NotRunning(Exception):
    """Nothing listens on the socket (no file, or refused: its orchestrator has gone)."""


class ControlFailed(Exception):
    """The socket answered with something that is not a reply, or not in time."""


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    if len(os.fsencode(path)) <= 100:
        yield str(path)
        return
    try:
        fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        raise NotRunning(str(path)) from None
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def send_raw(path: Path, line: bytes, *, timeout: float = DEFAULT_TIMEOUT_S) -> bytes:
    """Send `line` as it is and return the raw reply (tests send hostile lines with it)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            with _address(Path(path)) as address:
                sock.connect(address)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTDIR):
                raise NotRunning(str(path)) from None
            raise ControlFailed(f"cannot connect to {path}: {exc.strerror or exc}") from None
        try:
            sock.sendall(line)
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while len(data) <= protocol.MAX_REPLY_BYTES and not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise ControlFailed(f"no reply from {path} within {timeout:.0f} s") from None
        except OSError as exc:
            raise ControlFailed(f"the connection to {path} failed: {exc.strerror or exc}") from None
    return data


def send(
    path: Path, cmd: str, worker: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    """The reply to `cmd` from the orchestrator listening on `path`."""
    data = send_raw(path, protocol.request(cmd, worker), timeout=timeout)
    try:
        return protocol.parse_reply(data)
    except ValueError:
        raise ControlFailed(f"{path} did not answer with a control reply") from None
