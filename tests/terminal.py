"""Running `trio-oco` on a real pseudo-terminal, as a user at a terminal does: the prompts the
command writes are waited for (no sleeps) and answered, getpass included."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from oco.testing import oco_command


def _controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty becomes /dev/tty (getpass opens that)


def _read(fd: int, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no output in time")
    ready, _, _ = select.select([fd], [], [], left)
    if not ready:
        raise TimeoutError("no output in time")
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the child closed the terminal
        return b""


def on_terminal(
    *args: str,
    dialogue: Sequence[tuple[str, str]],
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = 60,
) -> tuple[int, str]:
    """Run `trio-oco ARGS` on a pty; for each (prompt, answer), wait for the prompt and type
    the answer. Returns the exit code and everything the terminal showed."""
    master, slave = pty.openpty()
    child = subprocess.Popen(
        oco_command(*args),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_controlling_terminal,
    )
    os.close(slave)
    deadline = time.monotonic() + timeout
    shown = b""
    answered = 0  # the prompts before this offset were answered: each is waited for anew
    try:
        for prompt, answer in dialogue:
            while (found := shown.find(prompt.encode(), answered)) < 0:
                data = _read(master, deadline)
                if not data:
                    raise AssertionError(f"ended before {prompt!r}; it showed: {shown.decode()!r}")
                shown += data
            answered = found + len(prompt)
            os.write(master, answer.encode() + b"\n")
        while data := _read(master, deadline):
            shown += data
        return child.wait(timeout=max(0.1, deadline - time.monotonic())), shown.decode(errors="replace")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
