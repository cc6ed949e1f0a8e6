"""What a reload (SIGHUP, `Orchestrator.reload`) must do: compare two validated configurations
and touch only what must change. Pure: the orchestrator carries the plan out.

Everything a reload can change is classified here, in two tables and nowhere else:
`SETTING_RULES` (one row per field of `Settings`) and `WORKER_RULES` (one row per field of
`WorkerConfig`). A test pins that each table names every field, and another that the README's
settings table says the same.

Workers are identified by `WorkerConfig.key` (`machineId:workerId`): a new machine or worker id
is another worker (the old one stops, the new one starts). A disabled entry counts as absent,
so disabling a worker stops it and enabling it starts it. A new `name` relabels the running
worker (log prefix, status row) without restarting it; a new secret, Convex URL or working
directory restarts that worker alone.

Settings are process-wide. A live one (`Effect.LIVE`) is read by the workers and the
orchestrator at its next use from the orchestrator's `live_settings`, which the reload updates:
no worker restarts. A setting that needs a restart (`Effect.RESTART`) restarts every running
worker; a worker stopped by a command stays stopped and takes the new value when started.
A setting fixed on the command line (`pinned`: `--shutdown-timeout`, `--log-level`) keeps the
command line's value.

`ReloadPlan` is also the answer a user sees: `summary()` is one line, and its fields (see the
class) are stable names for the machine-readable form (`attrs.asdict(plan)`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

from oco.config import Settings, WorkerConfig


class Effect(enum.Enum):
    """What a changed field does to the running workers."""

    LIVE = "live"  # applied in place: read again at its next use, nobody restarts
    RESTART = "restart"  # restarts the workers it concerns
    RELABEL = "relabel"  # the running worker is renamed in logs and status, not restarted
    START_STOP = "start_stop"  # the worker starts or stops (enabled)


@attrs.frozen
class Rule:
    """How one field applies on reload, and when (or why not live), in words."""

    effect: Effect
    when: str


LIVE, RESTART = Effect.LIVE, Effect.RESTART

#: Every `Settings` field: live (and when it takes effect) or restart-needing (and why).
SETTING_RULES: Mapping[str, Rule] = {
    "shutdown_timeout_s": Rule(LIVE, "the next stop's deadline (a stop under way keeps its own)"),
    "heartbeat_interval_s": Rule(LIVE, "the next heartbeat, due one new interval after the last"),
    "approval_poll_interval_s": Rule(LIVE, "the next check of a worker waiting for approval"),
    "poll_active_interval_s": Rule(
        LIVE, "the next poll (poll transport, or polling while the socket is down)"
    ),
    "poll_idle_interval_s": Rule(LIVE, "the next poll, and the retry delay of the next failed poll"),
    "stale_message_age_s": Rule(LIVE, "the next snapshot of the worker's messages"),
    "opencode_bin": Rule(RESTART, "each worker's OpenCode server and model list come from this binary"),
    "opencode_start_timeout_s": Rule(LIVE, "the next start of an OpenCode server"),
    "opencode_idle_timeout_s": Rule(LIVE, "the next time an OpenCode server becomes idle"),
    "opencode_server": Rule(RESTART, "a worker takes its own or the shared OpenCode server when it starts"),
    "turn_timeout_s": Rule(LIVE, "the next turn (a running turn keeps its deadline)"),
    "permission_policy": Rule(LIVE, "the next permission OpenCode asks, in running turns too"),
    "max_concurrent_sessions": Rule(
        LIVE, "at once: raised, waiting turns start; lowered, running turns finish and new ones wait"
    ),
    "chunk_interval_s": Rule(LIVE, "the next chunk a running or new turn writes"),
    "convex_transport": Rule(RESTART, "a worker chooses subscriptions or polling when it connects"),
    "log_level": Rule(LIVE, "at once"),
}

#: Every `WorkerConfig` field. `token`: its machine and worker ids are the worker's identity
#: (a new one is another worker), so a changed token of the same key is a new secret.
WORKER_RULES: Mapping[str, Rule] = {
    "token": Rule(RESTART, "a new secret: the worker registers again with it"),
    "convex_url": Rule(RESTART, "the worker moves to another deployment"),
    "working_directory": Rule(RESTART, "the worker's OpenCode server runs in that directory"),
    "name": Rule(Effect.RELABEL, "the running worker's log prefix and status row"),
    "enabled": Rule(Effect.START_STOP, "false stops the worker, true starts it"),
}

#: What a restart reason says for a worker field (never the secret itself).
_REASON = {"token": "secret"}


def live_settings() -> frozenset[str]:
    """The settings applied without restarting anyone."""
    return frozenset(name for name, rule in SETTING_RULES.items() if rule.effect is LIVE)


def restart_settings() -> frozenset[str]:
    """The settings whose change restarts every running worker."""
    return frozenset(name for name, rule in SETTING_RULES.items() if rule.effect is RESTART)


@attrs.frozen
class Renamed:
    """A kept worker whose `name` changed."""

    key: str
    old: str
    new: str


@attrs.frozen
class ReloadPlan:
    """What a reload does, and what the user is told. The field names are a stable interface
    (the `reload` command's JSON is `attrs.asdict(plan)`).

    Worker keys, sorted: `start` (only in the new config), `stop` (only in the old one),
    `restart` (kept, and a restart-needing field or setting changed), `unchanged` (kept, and
    nothing that needs a restart changed: left as it is, a renamed one relabelled in place),
    `still_stopped` (would restart, but stopped by a command: it takes the new config when
    started), `retried` (parked workers among `unchanged`, probed again at once). Each
    configured key is in exactly one of start, stop, restart, unchanged, still_stopped.
    `names`: each key's display name (the new config's; the old one's for `stop`).
    `renamed`: kept workers whose name changed (`Renamed`: key, old, new), restarted or not.
    `restart_reasons`: per restarted key, what changed (worker fields, with `secret` for the
    token, and restart-needing settings).
    Settings, in declaration order: `settings_changed` (all that differ), `settings_live`
    (applied in place), `settings_restart` (they restarted the running workers),
    `settings_pinned` (changed in the file, kept at the command line's value).
    `source`: the file that was read (None: not known).
    """

    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    still_stopped: tuple[str, ...] = ()
    retried: tuple[str, ...] = ()
    names: Mapping[str, str] = attrs.field(factory=dict)
    renamed: tuple[Renamed, ...] = ()
    restart_reasons: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    settings_changed: tuple[str, ...] = ()
    settings_live: tuple[str, ...] = ()
    settings_restart: tuple[str, ...] = ()
    settings_pinned: tuple[str, ...] = ()
    source: str | None = None

    @property
    def changed_anything(self) -> bool:
        return bool(
            self.start
            or self.stop
            or self.restart
            or self.still_stopped
            or self.renamed
            or self.settings_changed
        )

    def summary(self) -> str:
        """One line for the log and the `reload` command's reply, e.g. `reloaded workers.json:
        started a; stopped b; restarted c (opencode_bin changed); renamed d → e; applied live:
        log_level, turn_timeout_s`."""
        head = f"reloaded {self.source}" if self.source else "reloaded"
        parts: list[str] = []
        if self.start:
            parts.append(f"started {self._names(self.start)}")
        if self.stop:
            parts.append(f"stopped {self._names(self.stop)}")
        by_reason: dict[tuple[str, ...], list[str]] = {}
        for key in self.restart:
            by_reason.setdefault(self.restart_reasons.get(key, ()), []).append(key)
        if by_reason:
            groups = (
                self._names(keys) + (f" ({', '.join(reasons)} changed)" if reasons else "")
                for reasons, keys in by_reason.items()
            )
            parts.append(f"restarted {', '.join(groups)}")
        if self.renamed:
            parts.append("renamed " + ", ".join(f"{r.old} → {r.new}" for r in self.renamed))
        if self.settings_live:
            parts.append(f"applied live: {', '.join(self.settings_live)}")
        if self.settings_restart and not self.restart:
            parts.append(
                f"changed for the next start (no worker running): {', '.join(self.settings_restart)}"
            )
        if self.settings_pinned:
            parts.append(f"kept the command line's {', '.join(self.settings_pinned)}")
        if self.still_stopped:
            parts.append(f"{self._names(self.still_stopped)} stay stopped (new config when started)")
        if not parts:
            parts.append("nothing changed")
        if self.retried:
            parts.append(f"retried parked {self._names(self.retried)}")
        return f"{head}: {'; '.join(parts)}"

    def _names(self, keys: Iterable[str]) -> str:
        return ", ".join(self.names.get(key, key) for key in keys)


def changed_settings(old: Settings, new: Settings) -> tuple[str, ...]:
    """Names of the settings whose values differ, in declaration order."""
    return tuple(
        field.name for field in attrs.fields(Settings) if getattr(old, field.name) != getattr(new, field.name)
    )


def changed_fields(old: WorkerConfig, new: WorkerConfig) -> tuple[str, ...]:
    """Names of the `WorkerConfig` fields whose values differ, in declaration order."""
    return tuple(
        field.name
        for field in attrs.fields(WorkerConfig)
        if getattr(old, field.name) != getattr(new, field.name)
    )


def plan_reload(
    old: Mapping[str, WorkerConfig],
    new: Mapping[str, WorkerConfig],
    *,
    old_settings: Settings | None = None,
    new_settings: Settings | None = None,
    held: Iterable[str] = (),
    parked: Iterable[str] = (),
    pinned: Iterable[str] = (),
    source: str | None = None,
) -> ReloadPlan:
    """Compare the running configuration with the reloaded one (both keyed by `config.key`).

    `held`: keys stopped by a command (not started or restarted by a reload); `parked`: keys
    whose worker is parked (retried at once if left running); `pinned`: settings fixed on the
    command line; `source`: the file read, for the summary.
    """
    held, parked, pinned = frozenset(held), frozenset(parked), frozenset(pinned)
    before = {key: cfg for key, cfg in old.items() if cfg.enabled}
    after = {key: cfg for key, cfg in new.items() if cfg.enabled}
    settings = (
        changed_settings(old_settings, new_settings)
        if old_settings is not None and new_settings is not None
        else ()
    )
    settings_pinned = tuple(name for name in settings if name in pinned)
    settings_live = tuple(
        name for name in settings if name not in pinned and SETTING_RULES[name].effect is LIVE
    )
    settings_restart = tuple(
        name for name in settings if name not in pinned and SETTING_RULES[name].effect is RESTART
    )
    kept = sorted(before.keys() & after.keys())
    reasons: dict[str, tuple[str, ...]] = {}
    renamed: list[Renamed] = []
    for key in kept:
        fields = changed_fields(before[key], after[key])
        if "name" in fields:
            renamed.append(Renamed(key, before[key].name, after[key].name))
        why = tuple(_REASON.get(name, name) for name in fields if WORKER_RULES[name].effect is Effect.RESTART)
        if why or settings_restart:
            reasons[key] = why + settings_restart
    started = sorted(after.keys() - before.keys())
    restart = [key for key in reasons if key not in held]
    unchanged = [key for key in kept if key not in reasons]
    names = {key: cfg.name for key, cfg in before.items()} | {key: cfg.name for key, cfg in after.items()}
    return ReloadPlan(
        start=tuple(key for key in started if key not in held),
        stop=tuple(sorted(before.keys() - after.keys())),
        restart=tuple(restart),
        unchanged=tuple(unchanged),
        still_stopped=tuple(sorted({*(k for k in started if k in held), *(k for k in reasons if k in held)})),
        retried=tuple(key for key in unchanged if key in parked and key not in held),
        names=names,
        renamed=tuple(renamed),
        restart_reasons={key: reasons[key] for key in restart},
        settings_changed=settings,
        settings_live=settings_live,
        settings_restart=settings_restart,
        settings_pinned=settings_pinned,
        source=source,
    )
