"""Reload plans (pure): start the new, stop the removed, restart only what must restart,
relabel a renamed worker, apply live settings in place, and say it all in one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs
from hypothesis import given
from hypothesis import strategies as st

from oco.config import Settings, Token, WorkerConfig
from oco.orchestrator._reload import (
    SETTING_RULES,
    WORKER_RULES,
    Effect,
    Renamed,
    changed_settings,
    live_settings,
    plan_reload,
    restart_settings,
)

README = Path(__file__).parents[2] / "README.md"


def worker(n: int, **changes) -> WorkerConfig:
    config = WorkerConfig(
        token=Token(f"m{n}", f"w{n}", f"secret{n}"),
        convex_url="https://example.convex.cloud",
        working_directory=Path(f"/srv/p{n}"),
        name=f"w{n}",
    )
    return attrs.evolve(config, **changes)


def keyed(*configs: WorkerConfig) -> dict[str, WorkerConfig]:
    return {c.key: c for c in configs}


def other_value(name: str) -> object:
    """A valid value of setting `name` that differs from its default."""
    value = getattr(Settings(), name)
    special = {
        "permission_policy": "allow",
        "convex_transport": "poll",
        "opencode_bin": "/bin/opencode",
        "opencode_server": "per-worker",
    }
    if name in special:
        return special[name]
    return {int: lambda v: v + 1, float: lambda v: v + 1.0, str: lambda v: "DEBUG"}[type(value)](value)


# -- the tables ---------------------------------------------------------------------------------


def test_every_setting_and_worker_field_is_classified_once() -> None:
    assert list(SETTING_RULES) == [f.name for f in attrs.fields(Settings)]
    assert list(WORKER_RULES) == [f.name for f in attrs.fields(WorkerConfig)]
    assert live_settings() | restart_settings() == set(SETTING_RULES)
    assert restart_settings() == {"opencode_bin", "convex_transport", "opencode_server"}


def test_the_readme_lists_the_same_live_and_restart_settings() -> None:
    rows = re.findall(
        r"^\| `(\w+)` \|[^|]*\|[^|]*\| (live|restarts workers)[^|]*\|$", README.read_text(), re.M
    )
    said = {name: "live" if how == "live" else "restart" for name, how in rows}
    assert said == {name: rule.effect.value for name, rule in SETTING_RULES.items()}


# -- workers ------------------------------------------------------------------------------------


def test_the_same_config_changes_nothing() -> None:
    config = keyed(worker(1), worker(2))
    plan = plan_reload(config, dict(config), source="workers.json")
    assert (plan.start, plan.stop, plan.restart) == ((), (), ())
    assert plan.unchanged == ("m1:w1", "m2:w2")
    assert not plan.changed_anything
    assert plan.summary() == "reloaded workers.json: nothing changed"
    assert plan_reload({}, {}).summary() == "reloaded: nothing changed"


def test_added_removed_and_changed_workers_are_each_handled_once() -> None:
    old = keyed(worker(1), worker(2), worker(3))
    new = keyed(worker(1), worker(2, working_directory=Path("/srv/elsewhere")), worker(4))
    plan = plan_reload(old, new, source="workers.json")
    assert (plan.start, plan.stop, plan.restart, plan.unchanged) == (
        ("m4:w4",),
        ("m3:w3",),
        ("m2:w2",),
        ("m1:w1",),
    )
    assert plan.restart_reasons == {"m2:w2": ("working_directory",)}
    assert plan.summary() == (
        "reloaded workers.json: started w4; stopped w3; restarted w2 (working_directory changed)"
    )


def test_a_new_secret_restarts_the_worker_and_the_reason_never_shows_it() -> None:
    old = keyed(worker(1))
    new = keyed(worker(1, token=Token("m1", "w1", "rotated-secret")))
    plan = plan_reload(old, new)
    assert plan.restart == ("m1:w1",)
    assert plan.summary() == "reloaded: restarted w1 (secret changed)"
    assert "rotated" not in repr(attrs.asdict(plan))


def test_a_rename_relabels_without_a_restart() -> None:
    old = keyed(worker(1), worker(2))
    new = keyed(worker(1, name="alpha"), worker(2, convex_url="https://other.convex.cloud", name="beta"))
    plan = plan_reload(old, new, source="workers.json")
    assert plan.restart == ("m2:w2",)  # its URL changed: that restarts it (under its new name)
    assert plan.unchanged == ("m1:w1",)  # renamed only: left running
    assert plan.renamed == (Renamed("m1:w1", "w1", "alpha"), Renamed("m2:w2", "w2", "beta"))
    assert plan.summary() == (
        "reloaded workers.json: restarted beta (convex_url changed); renamed w1 → alpha, w2 → beta"
    )


def test_disabled_entries_count_as_absent() -> None:
    old = keyed(worker(1), worker(2, enabled=False))
    new = keyed(worker(1, enabled=False), worker(2))
    plan = plan_reload(old, new)
    assert plan.stop == ("m1:w1",)
    assert plan.start == ("m2:w2",)
    assert not plan.restart and not plan.unchanged
    assert plan.summary() == "reloaded: started w2; stopped w1"


def test_a_worker_stopped_by_a_command_stays_stopped_and_parked_ones_are_retried() -> None:
    old = keyed(worker(1), worker(2), worker(3))
    new = keyed(worker(1, convex_url="https://other.convex.cloud"), worker(2), worker(3))
    plan = plan_reload(old, new, held={"m1:w1"}, parked={"m2:w2"})
    assert plan.restart == () and plan.still_stopped == ("m1:w1",)
    assert plan.retried == ("m2:w2",)
    assert plan.summary() == "reloaded: w1 stay stopped (new config when started); retried parked w2"


# -- settings -----------------------------------------------------------------------------------


def test_live_settings_change_no_worker() -> None:
    config = keyed(worker(1))
    new = Settings(log_level="DEBUG", turn_timeout_s=60.0, max_concurrent_sessions=1)
    plan = plan_reload(config, config, old_settings=Settings(), new_settings=new, source="workers.json")
    assert plan.settings_live == ("turn_timeout_s", "max_concurrent_sessions", "log_level")
    assert plan.unchanged == ("m1:w1",) and not plan.restart
    assert plan.summary() == (
        "reloaded workers.json: applied live: turn_timeout_s, max_concurrent_sessions, log_level"
    )


def test_a_restart_setting_restarts_every_running_worker_but_not_new_or_removed_ones() -> None:
    old = keyed(worker(1), worker(2), worker(3))
    new = keyed(worker(1), worker(2, working_directory=Path("/x")), worker(4))
    plan = plan_reload(
        old,
        new,
        old_settings=Settings(),
        new_settings=Settings(opencode_bin="/opt/opencode", heartbeat_interval_s=10.0),
    )
    assert plan.settings_restart == ("opencode_bin",) and plan.settings_live == ("heartbeat_interval_s",)
    assert plan.restart == ("m1:w1", "m2:w2") and plan.unchanged == ()
    assert plan.restart_reasons == {
        "m1:w1": ("opencode_bin",),
        "m2:w2": ("working_directory", "opencode_bin"),
    }
    assert plan.summary() == (
        "reloaded: started w4; stopped w3; restarted w1 (opencode_bin changed), "
        "w2 (working_directory, opencode_bin changed); applied live: heartbeat_interval_s"
    )


def test_a_restart_setting_with_every_worker_stopped_is_kept_for_the_next_start() -> None:
    config = keyed(worker(1))
    new = Settings(convex_transport="poll")
    plan = plan_reload(config, config, old_settings=Settings(), new_settings=new, held={"m1:w1"})
    assert plan.restart == () and plan.still_stopped == ("m1:w1",)
    assert plan.summary() == (
        "reloaded: changed for the next start (no worker running): convex_transport; "
        "w1 stay stopped (new config when started)"
    )


def test_a_setting_pinned_on_the_command_line_is_not_applied() -> None:
    config = keyed(worker(1))
    new = Settings(shutdown_timeout_s=5.0, log_level="DEBUG")
    plan = plan_reload(config, config, old_settings=Settings(), new_settings=new, pinned={"log_level"})
    assert plan.settings_live == ("shutdown_timeout_s",) and plan.settings_pinned == ("log_level",)
    assert plan.summary() == "reloaded: applied live: shutdown_timeout_s; kept the command line's log_level"


def test_each_setting_changed_alone_applies_as_its_rule_says() -> None:
    kept = keyed(worker(1))
    for name, rule in SETTING_RULES.items():
        new = attrs.evolve(Settings(), **{name: other_value(name)})
        assert changed_settings(Settings(), new) == (name,)
        plan = plan_reload(kept, kept, old_settings=Settings(), new_settings=new)
        restarts = rule.effect is Effect.RESTART
        assert plan.restart == (("m1:w1",) if restarts else ()), name
        assert (plan.settings_restart if restarts else plan.settings_live) == (name,)
        assert f"{name} changed" in plan.summary() if restarts else f"applied live: {name}" in plan.summary()


def test_the_plan_is_plain_data_for_json() -> None:
    plan = plan_reload(keyed(worker(1)), keyed(worker(1, name="one")), source="/etc/w.json")
    assert attrs.asdict(plan) == {
        "start": (),
        "stop": (),
        "restart": (),
        "unchanged": ("m1:w1",),
        "still_stopped": (),
        "retried": (),
        "names": {"m1:w1": "one"},
        "renamed": ({"key": "m1:w1", "old": "w1", "new": "one"},),
        "restart_reasons": {},
        "settings_changed": (),
        "settings_live": (),
        "settings_restart": (),
        "settings_pinned": (),
        "source": "/etc/w.json",
    }
    assert json.loads(json.dumps(attrs.asdict(plan)))["renamed"] == [
        {"key": "m1:w1", "old": "w1", "new": "one"}
    ]


# -- properties ---------------------------------------------------------------------------------

_configs = st.dictionaries(
    st.integers(0, 6),
    st.tuples(st.booleans(), st.sampled_from(["/a", "/b"]), st.sampled_from(["x", "y"])),
    max_size=7,
)


@given(_configs, _configs, st.sets(st.integers(0, 6)), st.sampled_from([*sorted(SETTING_RULES), None]))
def test_each_enabled_key_lands_in_exactly_one_bucket(old_spec, new_spec, held_ns, setting) -> None:
    def build(spec):
        return keyed(
            *(worker(n, enabled=on, working_directory=Path(d), name=nm) for n, (on, d, nm) in spec.items())
        )

    old, new = build(old_spec), build(new_spec)
    held = {worker(n).key for n in held_ns if n in old_spec and old_spec[n][0]}
    new_settings = (
        Settings() if setting is None else attrs.evolve(Settings(), **{setting: other_value(setting)})
    )
    plan = plan_reload(old, new, old_settings=Settings(), new_settings=new_settings, held=held)
    buckets = [plan.start, plan.stop, plan.restart, plan.unchanged, plan.still_stopped]
    everything = [key for bucket in buckets for key in bucket]
    assert len(everything) == len(set(everything))
    enabled_old = {k for k, c in old.items() if c.enabled}
    enabled_new = {k for k, c in new.items() if c.enabled}
    assert set(everything) == enabled_old | enabled_new
    assert set(plan.start) <= enabled_new and set(plan.stop) <= enabled_old
    assert not set(plan.restart) & held and not set(plan.start) & held
    # Left running: nothing but the name may differ, and no restart-needing setting changed.
    assert all(attrs.evolve(old[k], name=new[k].name) == new[k] for k in plan.unchanged)
    assert not (plan.unchanged and plan.settings_restart)
    assert {r.key for r in plan.renamed} == {
        k for k in enabled_old & enabled_new if old[k].name != new[k].name
    }
    summary = plan.summary()
    assert "\n" not in summary and summary.startswith("reloaded: ")
    assert ("nothing changed" in summary) == (not plan.changed_anything)
