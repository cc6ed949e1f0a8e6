"""Running `trio-oco` on a real pseudo-terminal, as a user at a terminal does: the prompts the
command writes are waited for (no sleeps) and answered, getpass included; or with one stream
alone on the terminal, to show that a command looks at that stream."""

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
from typing import Literal

from oco.testing import oco_command


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
    dialogue: Sequence[tuple[str, str]] = (),
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 60,
    only: Literal["stdout", "stderr"] | None = None,
) -> tuple[int, str]:
    """Run `trio-oco ARGS` on a pty; for each (prompt, answer), wait for the prompt and type
    the answer. Returns the exit code and everything the terminal showed. With `only`, that
    stream alone is on the terminal and the others are /dev/null."""
    master, slave = pty.openpty()

    def stream(name: str) -> int:
        return slave if only in (None, name) else subprocess.DEVNULL

    child = subprocess.Popen(
        oco_command(*args),
        stdin=stream("stdin"),
        stdout=stream("stdout"),
        stderr=stream("stderr"),
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        # The pty becomes /dev/tty (getpass opens that); preexec runs before Popen closes `slave`.
        preexec_fn=lambda: fcntl.ioctl(slave, termios.TIOCSCTTY, 0),
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
