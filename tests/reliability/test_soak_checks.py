"""The soak's verdict on issue 13's faults (pure: facts in, figures and failed checks out).

The short soak shows that the faults are survived; these show that the verdict would say so
when they are not: each check below fails on the facts of a run that went wrong that way.
"""

from __future__ import annotations

import attrs
import pytest
from benchmarks.soak import SentMessage, SoakFacts, evaluate
from benchmarks.soak._checks import BadFrameFacts, OversizedFacts, Placeholder, StuckFacts

from oco.testing._fake_llm import big_text

MIB = 1024 * 1024
BIG = 3 * MIB // 2
CUT = big_text(900_000) + "\n\n[… answer cut: 1.5 MiB is over what a Convex message can hold (1 MiB)]"
SLOW = "".join(f"tok{i} " for i in range(32))


def _facts(**changes) -> SoakFacts:
    sent = [
        SentMessage("w00", "c0", "big", f"BIG {BIG} soak message 0", None),
        SentMessage("w02", "c2", "slow", "SLOW 8 soak message 1", None),
        SentMessage("w02", "c2", "after", "ECHO soak message 2 for w02", "soak message 2 for w02"),
    ]
    placeholders = {
        "big": Placeholder(True, CUT),
        "slow": Placeholder(True, "tok0 tok1 \n\nError: OpenCode stopped answering"),
        "after": Placeholder(True, "soak message 2 for w02"),
    }
    facts = SoakFacts(
        sent=sent,
        placeholders=placeholders,
        completions={},
        parked=[],
        expected_parked=[],
        exit_code=0,
        secret_leaks=[],
        children_left=0,
        fd_warm=30,
        fd_end=30,
        rss_warm=50 * MIB,
        rss_end=66 * MIB,
        faults_planned=["long_outage", "oversized", "stuck", "bad_frames"],
        long_outage_s=90.0,
        long_outage_streaming=2,
        oversized=OversizedFacts("big", BIG, [262144, 262144, 100], 52 * MIB, 64 * MIB),
        stuck=StuckFacts("w02", "slow", SLOW, "after", 100, 200, False),
        bad_frames=BadFrameFacts(4, 0, 0, 3),
    )
    return attrs.evolve(facts, **changes)


def test_a_run_that_survived_every_fault_passes_and_reports_their_figures():
    figures, failed = evaluate(_facts())
    assert failed == []
    assert figures["oversized_cut_marker"] is True and figures["oversized_reply_bytes"] <= MIB
    assert figures["stuck_replaced_by"] == 200 and figures["bad_frame_restarts"] == 0
    # 16 MB more at the end, 12 of them the oversized answer's: 8 % beyond it.
    assert figures["rss_growth_pct"] == 32.0 and figures["rss_growth_beyond_oversized_pct"] == 8.0


@pytest.mark.parametrize(
    "change,complaint",
    [
        ({"long_outage_s": 0.0}, "never came about: long_outage"),
        ({"oversized": None}, "never came about: oversized"),
        ({"long_outage_streaming": 0}, "no answer was streaming"),
        ({"stuck": StuckFacts("w02", "slow", SLOW, "after", 100, 100, False)}, "was not replaced"),
        ({"stuck": StuckFacts("w02", "slow", SLOW, "after", 100, None, False)}, "was not replaced"),
        ({"stuck": StuckFacts("w02", "slow", SLOW, "after", 100, 200, True)}, "was left running"),
        ({"bad_frames": BadFrameFacts(4, 1, 3, 3)}, "2 worker restart(s)"),
        ({"bad_frames": BadFrameFacts(4, 0, 0, 130)}, "a storm"),
        ({"oversized": OversizedFacts("big", BIG, [MIB + 10], 52 * MIB, 64 * MIB)}, "over 1 MiB"),
        ({"oversized": OversizedFacts("big", BIG, [100], 50 * MIB, 90 * MIB)}, "grew the orchestrator's RSS"),
        ({"rss_end": 80 * MIB}, "RSS grew by 36 %"),
    ],
)
def test_each_fault_that_went_wrong_fails_the_soak(change, complaint):
    _, failed = evaluate(_facts(**change))
    assert any(complaint in sentence for sentence in failed), failed


@pytest.mark.parametrize(
    "content,complaint",
    [
        (big_text(900_000), "has no cut marker"),
        ("x" * 10 + CUT, "does not begin with the model's text"),
        ("y" * (MIB + 5) + "answer cut:", "over 1 MiB"),
    ],
)
def test_an_oversized_answer_must_be_the_models_text_cut_with_a_marker_within_1_mib(content, complaint):
    facts = _facts()
    facts = attrs.evolve(facts, placeholders={**facts.placeholders, "big": Placeholder(True, content)})
    _, failed = evaluate(facts)
    assert any(complaint in sentence for sentence in failed), failed


def test_the_stuck_reply_must_say_why_it_ended_unless_it_is_whole():
    facts = _facts()
    cut = attrs.evolve(facts, placeholders={**facts.placeholders, "slow": Placeholder(True, "tok0 tok1 ")})
    _, failed = evaluate(cut)
    assert any("ends without saying why" in sentence for sentence in failed), failed
    whole = attrs.evolve(facts, placeholders={**facts.placeholders, "slow": Placeholder(True, SLOW)})
    assert evaluate(whole)[1] == []
