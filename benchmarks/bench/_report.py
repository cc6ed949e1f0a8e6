"""Issue 7's targets and the table `scripts/bench` prints."""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen
class Target:
    limit: float
    text: str

    def met(self, value: float) -> bool:
        return value <= self.limit


TARGETS: dict[str, Target] = {
    "idle_memory_ratio_20_vs_1": Target(1.2, "<= 1.2"),
    "first_chunk_over_completion": Target(0.1, "<= 0.1"),
    "mutations_per_streamed_second": Target(5.0, "<= 5"),
    "idle_requests_per_worker_minute": Target(60.0, "<= 60"),
    "heavy_queries_per_idle_minute": Target(0.0, "0"),
    "start_50_workers_s": Target(2.0, "<= 2.0"),
    "stop_50_workers_over_rtt_bound": Target(1.0, "<= 1.0"),
}

# Printed without a target, in this order after the targeted ones.
UNTARGETED = (
    "stop_50_workers_sequential_s",
    "pickup_idle_p50_s",
    "pickup_idle_p95_s",
    "pickup_active_p50_s",
    "pickup_active_p95_s",
    "throughput_answered",
    "throughput_messages",
    "throughput_wall_s",
    "throughput_orchestrator_cpu_s",
)


def rows(figures: Mapping[str, float]) -> list[tuple[str, str, str, str]]:
    """(name, value, target, met) for every figure; a missing figure shows as "-"/"not measured"."""
    out = []
    for name, target in TARGETS.items():
        value = figures.get(name)
        if value is None:
            out.append((name, "-", target.text, "not measured"))
        else:
            out.append((name, f"{value:g}", target.text, "yes" if target.met(value) else "NO"))
    for name in UNTARGETED:
        value = figures.get(name)
        out.append((name, "-" if value is None else f"{value:g}", "", ""))
    return out


def table(figures: Mapping[str, float], *, markdown: bool = False) -> str:
    header = ("name", "value", "target", "met?")
    body = rows(figures)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "| --- | ---: | --- | --- |"]
        lines += ["| " + " | ".join((f"`{r[0]}`", *r[1:])) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(4)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *body])


def missed(figures: Mapping[str, float]) -> list[str]:
    return [name for name, t in TARGETS.items() if name in figures and not t.met(figures[name])]
