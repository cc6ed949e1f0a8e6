"""`oco._text.external`: outside text becomes one bounded, inert line."""

from oco._text import EXTERNAL_MAX_CHARS, external


def test_ansi_and_osc_sequences_are_dropped():
    assert external("a\x1b[31mred\x1b[0m \x1b]0;title\x07b \x1b]8;;http://x\x1b\\c") == "ared b c"


def test_newlines_and_control_characters_are_escaped_to_one_line():
    assert external("one\ntwo\x00\x07") == "one\\ntwo\\x00\\x07"


def test_huge_text_is_cut_with_its_length():
    shown = external("x" * 50_000_000)
    assert len(shown) <= EXTERNAL_MAX_CHARS + 20
    assert shown.endswith("(50000000 chars)")


def test_plain_text_is_unchanged():
    assert external("Worker not found") == "Worker not found"
    assert external(ValueError("boom")) == "boom"
