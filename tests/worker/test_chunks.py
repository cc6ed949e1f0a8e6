"""Chunk coalescing: paced writes, increasing sequence numbers, no text ever lost."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oco.worker._chunks import Chunk, ChunkBuffer


def test_nothing_pending_means_nothing_due() -> None:
    buffer = ChunkBuffer(0.2)
    assert buffer.next_flush_at() is None
    assert not buffer.due(100.0)
    assert buffer.take(100.0) is None
    assert buffer.flush_all() is None


def test_the_first_text_is_due_as_soon_as_it_arrives() -> None:
    buffer = ChunkBuffer(0.2)
    buffer.add("Hel", 10.0)
    assert buffer.next_flush_at() == 10.0
    assert buffer.due(10.0)
    assert buffer.take(10.0) == Chunk("Hel", 0)
    assert buffer.next_flush_at() is None


def test_later_text_is_coalesced_to_one_write_per_interval() -> None:
    buffer = ChunkBuffer(0.2)
    buffer.add("a", 10.0)
    assert buffer.take(10.0) == Chunk("a", 0)
    buffer.add("b", 10.05)
    buffer.add("c", 10.1)
    assert buffer.next_flush_at() == pytest.approx(10.2)
    assert not buffer.due(10.19)
    assert buffer.take(10.19) is None
    assert buffer.take(10.2) == Chunk("bc", 1)


def test_text_arriving_after_a_quiet_spell_is_due_on_arrival() -> None:
    buffer = ChunkBuffer(0.2)
    buffer.add("a", 1.0)
    buffer.take(1.0)
    buffer.add("b", 5.0)
    assert buffer.next_flush_at() == 5.0
    assert buffer.take(5.0) == Chunk("b", 1)


def test_pacing_counts_from_the_actual_write_time() -> None:
    buffer = ChunkBuffer(0.2)
    buffer.add("a", 1.0)
    assert buffer.take(1.5) == Chunk("a", 0)  # the shell got round to it late
    buffer.add("b", 1.6)
    assert buffer.next_flush_at() == pytest.approx(1.7)


def test_flush_all_ignores_pacing_and_continues_the_sequence() -> None:
    buffer = ChunkBuffer(0.2)
    buffer.add("a", 1.0)
    buffer.take(1.0)
    buffer.add("b", 1.01)
    assert buffer.take(1.01) is None
    assert buffer.flush_all() == Chunk("b", 1)
    assert buffer.flush_all() is None
    buffer.add("c", 1.02)
    assert buffer.flush_all() == Chunk("c", 2)  # the sequence goes on


def test_empty_deltas_are_ignored() -> None:
    buffer = ChunkBuffer(0.2)
    buffer.add("", 1.0)
    assert buffer.next_flush_at() is None
    buffer.add("x", 1.0)
    assert buffer.flush_all() == Chunk("x", 0)  # no number was used up


def test_text_keeps_everything_added_and_pending_only_what_is_unwritten() -> None:
    buffer = ChunkBuffer(0.2)
    buffer.add("one ", 1.0)
    buffer.take(1.0)
    buffer.add("two", 1.1)
    assert buffer.text == "one two"
    assert buffer.pending == "two"


def test_a_zero_interval_writes_whenever_text_is_pending() -> None:
    buffer = ChunkBuffer(0.0)
    buffer.add("a", 1.0)
    assert buffer.take(1.0) == Chunk("a", 0)
    buffer.add("b", 1.0)
    assert buffer.take(1.0) == Chunk("b", 1)


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        ChunkBuffer(-0.1)


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(["", "a", "bc", "é\n"]), st.floats(0, 0.5)),
        st.tuples(st.just("take"), st.just(""), st.floats(0, 0.5)),
        st.tuples(st.just("flush"), st.just(""), st.just(0.0)),
    ),
    max_size=40,
)


@given(_ops, st.sampled_from([0.0, 0.2, 1.0]))
def test_no_text_is_lost_no_sequence_reused_and_paced_writes_keep_their_distance(ops, interval) -> None:
    buffer = ChunkBuffer(interval)
    now = 0.0
    added: list[str] = []
    chunks: list[Chunk] = []
    take_times: list[float] = []
    for op, text, step in ops:
        now += step
        if op == "add":
            buffer.add(text, now)
            added.append(text)
        elif op == "take":
            due = buffer.due(now)
            chunk = buffer.take(now)
            assert (chunk is not None) == due
            if chunk is not None:
                chunks.append(chunk)
                take_times.append(now)
        else:
            chunk = buffer.flush_all()
            if chunk is not None:
                chunks.append(chunk)
    assert [c.sequence for c in chunks] == list(range(len(chunks)))
    assert all(c.text for c in chunks)
    assert "".join(c.text for c in chunks) + buffer.pending == "".join(added) == buffer.text
    for earlier, later in itertools.pairwise(take_times):
        assert later - earlier >= interval - 1e-9


# -- Convex's limits (issue 13: an answer over 1 MiB never completed) -----------------------

from oco.worker._chunks import STREAM_CUT_NOTE  # noqa: E402
from oco.worker._limits import CHUNK_LIMIT, MAX_CHUNK_SEQUENCE, STREAM_BUDGET, VALUE_LIMIT, json_size  # noqa: E402


def _drain(buffer: ChunkBuffer) -> list[Chunk]:
    chunks = []
    while (chunk := buffer.flush_all()) is not None:
        chunks.append(chunk)
    return chunks


def test_a_huge_delta_is_split_into_chunks_that_fit_and_the_stream_stops_with_a_note() -> None:
    buffer = ChunkBuffer(0.2)
    delta = 'é"\n' * (2 * 1024 * 1024)  # 2 Mi × 3 characters: 8 MiB as JSON
    buffer.add(delta, 0.0)
    first = buffer.take(0.0)
    chunks = [first, *_drain(buffer)]
    assert all(json_size(c.text) <= CHUNK_LIMIT <= VALUE_LIMIT for c in chunks)
    assert sum(json_size(c.text) for c in chunks) <= STREAM_BUDGET
    assert [c.sequence for c in chunks] == list(range(len(chunks)))
    assert chunks[-1].text.endswith(STREAM_CUT_NOTE)
    shown = "".join(c.text for c in chunks)[: -len(STREAM_CUT_NOTE)]
    assert delta.startswith(shown) and len(shown) > 300_000  # most of a budget's worth of text
    assert buffer.closed and buffer.text == delta  # the completion still has it all
    buffer.add("more", 1.0)
    assert buffer.next_flush_at() is None and buffer.flush_all() is None


def test_sequence_numbers_stop_below_the_limit_whatever_the_number_of_deltas() -> None:
    buffer = ChunkBuffer(0.0, first_sequence=MAX_CHUNK_SEQUENCE - 3)
    sequences = []
    for step in range(10):
        buffer.add("x", float(step))
        if (chunk := buffer.take(float(step))) is not None:
            sequences.append(chunk.sequence)
    assert sequences == [MAX_CHUNK_SEQUENCE - 3, MAX_CHUNK_SEQUENCE - 2, MAX_CHUNK_SEQUENCE - 1]
    assert buffer.closed


def test_a_standalone_chunk_goes_first_and_is_not_part_of_the_answer_text() -> None:
    buffer = ChunkBuffer(0.2, first_sequence=100)
    buffer.add("Hel", 0.0)
    assert buffer.standalone("--- again ---") == Chunk("--- again ---", 100)
    assert buffer.take(0.0) == Chunk("Hel", 101)  # not delayed by the separator
    assert buffer.text == "Hel"
    assert ChunkBuffer(first_sequence=MAX_CHUNK_SEQUENCE).standalone("x") is None


_small_limits = {"chunk_limit": 400, "stream_budget": 1000, "sequence_limit": 30}


@given(_ops, st.integers(0, 40), st.text(max_size=300))
def test_under_small_limits_chunks_fit_numbers_stay_below_and_the_shown_text_is_a_prefix(
    ops, first, big
) -> None:
    buffer = ChunkBuffer(0.0, first_sequence=first, **_small_limits)
    added = [big]
    buffer.add(big, 0.0)
    chunks: list[Chunk] = []
    for op, text, step in [*ops, ("flush", "", 0.0)]:
        if op == "add":
            buffer.add(text, step)
            added.append(text)
        elif op == "take":
            chunks += [c for c in [buffer.take(step)] if c is not None]
        else:
            chunks += _drain(buffer)
    assert all(json_size(c.text) <= 400 for c in chunks)
    assert sum(json_size(c.text) for c in chunks) <= 1000
    assert [c.sequence for c in chunks] == list(range(first, first + len(chunks)))
    assert all(c.sequence < 30 for c in chunks)
    shown = "".join(c.text for c in chunks)
    if buffer.closed and chunks:
        assert shown.endswith(STREAM_CUT_NOTE)
        shown = shown[: -len(STREAM_CUT_NOTE)]
    assert "".join(added).startswith(shown)
