"""What a reload (SIGHUP) must do: compare two validated configurations, touch only what changed.

Workers are identified by `WorkerConfig.key` (`machineId:workerId`); a disabled entry counts as
absent, so disabling a worker stops it and enabling it starts it. Any other difference in an
entry (secret, Convex URL, directory, name) restarts that worker alone: a worker reads its
config once, when it starts, and a rename also changes its log prefix and status row.

Settings. `LIVE_SETTINGS` are read by the orchestrator itself when it needs them (log level,
shutdown timeout) and are applied without touching a worker. Every other setting is copied
into a worker when it starts (intervals, timeouts, OpenCode binary and permission policy,
concurrency, transport), so a change to any of them restarts every worker that keeps running;
`ReloadPlan.settings_changed` names them for the log line.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from oco.config import Settings, WorkerConfig

#: Settings the orchestrator applies in place; the rest need a restart of every worker.
LIVE_SETTINGS: frozenset[str] = frozenset({"log_level", "shutdown_timeout_s"})


@attrs.frozen
class ReloadPlan:
    """Worker keys (sorted) per action, and the names of the settings that changed.

    `start`: only in the new config; `stop`: only in the old one; `restart`: in both and
    changed (or all of them when a restart-needing setting changed); `unchanged`: leave alone.
    """

    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    settings_changed: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for a person: what the reload did (minimal; i15-control added it)."""
        parts = [
            f"{len(keys)} {verb}"
            for verb, keys in (("started", self.start), ("stopped", self.stop), ("restarted", self.restart))
            if keys
        ]
        parts.append(f"{len(self.unchanged)} unchanged")
        line = ", ".join(parts)
        if self.settings_changed:
            line += f"; settings changed: {', '.join(self.settings_changed)}"
        return line


def changed_settings(old: Settings, new: Settings) -> tuple[str, ...]:
    """Names of the settings whose values differ, in declaration order."""
    return tuple(
        field.name for field in attrs.fields(Settings) if getattr(old, field.name) != getattr(new, field.name)
    )


def plan_reload(
    old: Mapping[str, WorkerConfig],
    new: Mapping[str, WorkerConfig],
    *,
    old_settings: Settings | None = None,
    new_settings: Settings | None = None,
) -> ReloadPlan:
    """Compare the running configuration with the reloaded one (both keyed by `config.key`)."""
    before = {key: cfg for key, cfg in old.items() if cfg.enabled}
    after = {key: cfg for key, cfg in new.items() if cfg.enabled}
    settings = (
        changed_settings(old_settings, new_settings)
        if old_settings is not None and new_settings is not None
        else ()
    )
    restart_all = bool(set(settings) - LIVE_SETTINGS)
    kept = before.keys() & after.keys()
    restart = {key for key in kept if restart_all or before[key] != after[key]}
    return ReloadPlan(
        start=tuple(sorted(after.keys() - before.keys())),
        stop=tuple(sorted(before.keys() - after.keys())),
        restart=tuple(sorted(restart)),
        unchanged=tuple(sorted(kept - restart)),
        settings_changed=settings,
    )
