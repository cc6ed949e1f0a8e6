"""The settings a worker reads at each use, so that a reload applies them without a restart.

The orchestrator owns one `LiveSettings` (a `trio_util.AsyncValue[Settings]`) and sets a new
value on reload; each worker it makes reads `.value` where a setting is used (the next
heartbeat, turn, poll, chunk, permission answer) and follows the few that hold state
(the concurrency limit, OpenCode's timeouts). A worker given plain `Settings` (tests, one-off
use) gets a value of its own that nothing changes. Which settings apply live is decided in
`oco.orchestrator._reload` (`SETTING_RULES`).
"""

from __future__ import annotations

from collections.abc import Callable

import trio
import trio_util

from oco.config import Settings

LiveSettings = trio_util.AsyncValue[Settings]


def live(settings: Settings | LiveSettings) -> LiveSettings:
    """`settings` as a value to read at each use (plain `Settings`: one that never changes)."""
    if isinstance(settings, trio_util.AsyncValue):
        return settings
    return trio_util.AsyncValue(settings)


async def sleep_until_due(settings: LiveSettings, due: Callable[[Settings], float]) -> None:
    """Sleep until the trio time `due(settings)`, computed again whenever the settings change:
    a shorter interval set meanwhile ends the wait at once if that moment has passed."""
    while True:
        with trio.move_on_at(due(settings.value)) as deadline:
            await settings.wait_transition()
        if deadline.cancelled_caught:
            return
