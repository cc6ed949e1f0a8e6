"""`trio-oco status --watch`: redraw a frame every interval, in place on a terminal.

On a terminal each frame replaces the last (cursor home, clear screen: no curses needed); when
stdout is not a terminal (a pipe, a log) each frame is printed as a block after a blank line,
so nothing is garbled. Timing is trio's, so tests run it on a MockClock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

import trio

CLEAR = "\x1b[H\x1b[2J"


def frame_text(body: str, *, interval: float, now: float, tty: bool) -> str:
    """One frame: a header line (time, interval, how to quit) and `body`."""
    header = f"trio-oco status --watch  {time.strftime('%H:%M:%S', time.localtime(now))}"
    header += f"  every {interval:g}s, Ctrl+C to quit"
    return f"{CLEAR if tty else ''}{header}\n\n{body}\n"


async def watch(render: Callable[[], str], out: TextIO, interval: float, count: int | None = None) -> None:
    """Write `render()`'s frame every `interval` seconds, `count` times (None: until cancelled)."""
    tty = out.isatty()
    shown = 0
    while count is None or shown < count:
        if shown and not tty:
            out.write("\n")
        out.write(frame_text(render(), interval=interval, now=time.time(), tty=tty))
        out.flush()
        shown += 1
        if count is None or shown < count:
            await trio.sleep(interval)
