"""Reload plans: start the new, stop the removed, restart the changed, leave the rest alone."""

from __future__ import annotations

from pathlib import Path

import attrs
from hypothesis import given
from hypothesis import strategies as st

from oco.config import Settings, Token, WorkerConfig
from oco.orchestrator._reload import LIVE_SETTINGS, ReloadPlan, changed_settings, plan_reload


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


def test_the_same_config_changes_nothing() -> None:
    config = keyed(worker(1), worker(2))
    plan = plan_reload(config, dict(config))
    assert plan == ReloadPlan(unchanged=("m1:w1", "m2:w2"))  # nothing to start, stop or restart


def test_added_removed_and_changed_workers_are_each_handled_once() -> None:
    old = keyed(worker(1), worker(2), worker(3))
    new = keyed(worker(1), worker(2, working_directory=Path("/srv/elsewhere")), worker(4))
    assert plan_reload(old, new) == ReloadPlan(
        start=("m4:w4",), stop=("m3:w3",), restart=("m2:w2",), unchanged=("m1:w1",)
    )


def test_a_new_secret_restarts_the_worker() -> None:
    old = keyed(worker(1))
    new = keyed(worker(1, token=Token("m1", "w1", "rotated")))
    assert plan_reload(old, new).restart == ("m1:w1",)


def test_a_new_convex_url_or_name_restarts_the_worker() -> None:
    old = keyed(worker(1), worker(2))
    new = keyed(worker(1, convex_url="https://other.convex.cloud"), worker(2, name="renamed"))
    assert plan_reload(old, new).restart == ("m1:w1", "m2:w2")


def test_disabled_entries_count_as_absent() -> None:
    old = keyed(worker(1), worker(2, enabled=False))
    new = keyed(worker(1, enabled=False), worker(2))
    plan = plan_reload(old, new)
    assert plan.stop == ("m1:w1",)
    assert plan.start == ("m2:w2",)
    assert not plan.restart and not plan.unchanged


def test_live_settings_change_no_worker() -> None:
    config = keyed(worker(1))
    plan = plan_reload(
        config,
        config,
        old_settings=Settings(),
        new_settings=Settings(log_level="DEBUG", shutdown_timeout_s=5.0),
    )
    assert plan.settings_changed == ("shutdown_timeout_s", "log_level")  # something to apply
    assert plan.unchanged == ("m1:w1",) and not plan.restart  # live: no worker restarts


def test_a_worker_setting_restarts_every_kept_worker_but_not_new_or_removed_ones() -> None:
    old = keyed(worker(1), worker(2), worker(3))
    new = keyed(worker(1), worker(2), worker(4))
    plan = plan_reload(old, new, old_settings=Settings(), new_settings=Settings(heartbeat_interval_s=10.0))
    assert plan.settings_changed == ("heartbeat_interval_s",)
    assert plan.restart == ("m1:w1", "m2:w2")
    assert plan.unchanged == ()
    assert plan.start == ("m4:w4",) and plan.stop == ("m3:w3",)


def test_every_setting_is_either_live_or_restarts_workers() -> None:
    names = {f.name for f in attrs.fields(Settings)}
    assert names >= LIVE_SETTINGS
    for name in names - LIVE_SETTINGS:
        value = getattr(Settings(), name)
        changed = {
            bool: lambda v: not v,
            int: lambda v: v + 1,
            float: lambda v: v + 1.0,
            str: lambda v: v + "x",
            type(None): lambda v: "/bin/opencode",
        }[type(value)](value)
        if name == "permission_policy":
            changed = "allow"
        if name == "convex_transport":
            changed = "poll" if value == "subscribe" else "subscribe"
        new = attrs.evolve(Settings(), **{name: changed})
        assert changed_settings(Settings(), new) == (name,)
        kept = keyed(worker(1))
        assert plan_reload(kept, kept, old_settings=Settings(), new_settings=new).restart == ("m1:w1",)


_configs = st.dictionaries(
    st.integers(0, 6),
    st.tuples(st.booleans(), st.sampled_from(["/a", "/b"])),
    max_size=7,
)


@given(_configs, _configs)
def test_each_enabled_key_lands_in_exactly_one_bucket(old_spec, new_spec) -> None:
    def build(spec):
        return keyed(*(worker(n, enabled=on, working_directory=Path(d)) for n, (on, d) in spec.items()))

    old, new = build(old_spec), build(new_spec)
    plan = plan_reload(old, new)
    buckets = [plan.start, plan.stop, plan.restart, plan.unchanged]
    everything = [key for bucket in buckets for key in bucket]
    assert len(everything) == len(set(everything))
    enabled_old = {k for k, c in old.items() if c.enabled}
    enabled_new = {k for k, c in new.items() if c.enabled}
    assert set(everything) == enabled_old | enabled_new
    assert set(plan.start) <= enabled_new and set(plan.stop) <= enabled_old
    assert all(old[k] == new[k] for k in plan.unchanged)
    assert all(old[k] != new[k] for k in plan.restart)
