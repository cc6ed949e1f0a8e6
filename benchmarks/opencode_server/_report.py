"""Issue 16's targets and the side-by-side table `scripts/bench-opencode` prints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs


@attrs.frozen
class Target:
    limit: float
    text: str
    modes: tuple[str, ...]  # the modes the issue sets it for

    def met(self, value: float) -> bool:
        return value <= self.limit


BOTH = ("per-worker", "shared")
TARGETS: dict[str, Target] = {
    "busy_memory_ratio_10_vs_1": Target(1.5, "<= 1.5 (shared)", ("shared",)),
    "cold_turn_over_warm": Target(2.0, "<= 2 (shared)", ("shared",)),
    "cold_burst_5_over_1": Target(1.5, "<= 1.5", BOTH),
    "completion_over_llm_end": Target(1.05, "<= 1.05", BOTH),
}

# Printed without a target, in this order after the targeted ones.
UNTARGETED = (
    "busy_pss_1_mb",
    "busy_pss_10_mb",
    "cold_first_turn_s",
    "cold_turn_s",
    "warm_turn_s",
    "opened_first_turn_over_warm",
    "opened_first_turn_s",
    "unopened_first_turn_s",
    "cold_burst_1_s",
    "cold_burst_s",
    "completion_tail_s",
    "throughput_messages",
    "throughput_answered",
    "throughput_wall_s",
    "throughput_peak_pss_mb",
    "throughput_peak_rss_mb",
)


def _value(figures: Mapping[str, float] | None, name: str) -> str:
    if figures is None:
        return "n/a"
    value = figures.get(name)
    return "-" if value is None else f"{value:g}"


def rows(results: Mapping[str, Mapping[str, float] | None]) -> list[list[str]]:
    """One row per figure: name, a value per mode, the target, whether each mode meets it."""
    modes = list(results)
    out = []
    for name in [*TARGETS, *UNTARGETED]:
        row = [name, *(_value(results[m], name) for m in modes)]
        target = TARGETS.get(name)
        if target is None:
            row += ["", ""]
        else:
            verdicts = []
            for mode in modes:
                figures = results[mode]
                if mode not in target.modes or figures is None or name not in figures:
                    continue
                verdicts.append(f"{mode}: {'yes' if target.met(figures[name]) else 'NO'}")
            row += [target.text, ", ".join(verdicts)]
        out.append(row)
    return out


def table(results: Mapping[str, Mapping[str, float] | None], *, markdown: bool = False) -> str:
    header = ["name", *results, "target", "met?"]
    body = rows(results)
    if markdown:
        align = ["---", *("---:" for _ in results), "---", "---"]
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join([f"`{r[0]}`", *r[1:]]) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *body])


def missed(results: Mapping[str, Mapping[str, float] | None]) -> Sequence[str]:
    out = []
    for name, target in TARGETS.items():
        for mode in target.modes:
            figures = results.get(mode)
            if figures is not None and name in figures and not target.met(figures[name]):
                out.append(f"{name} ({mode})")
    return out
