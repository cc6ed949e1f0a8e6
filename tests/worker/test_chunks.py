"""Chunk coalescing: paced writes, increasing sequence numbers, no text ever lost."""

from __future__ import annotations

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
    assert buffer.next_sequence == 2


def test_empty_deltas_are_ignored() -> None:
    buffer = ChunkBuffer(0.2)
    buffer.add("", 1.0)
    assert buffer.next_flush_at() is None
    assert buffer.next_sequence == 0


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
def test_no_text_is_lost_no_sequence_reused_and_paced_writes_keep_their_distance(
    ops, interval
) -> None:
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
    for earlier, later in zip(take_times, take_times[1:]):
        assert later - earlier >= interval - 1e-9
