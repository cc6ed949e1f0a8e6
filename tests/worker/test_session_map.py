"""The per-worker state file: chat → OpenCode session links and the replies being streamed."""

from oco.worker._chunks import ChunkBuffer
from oco.worker._session_map import SEQUENCE_BLOCK, ReplyStart, SessionLink, SessionMap


def test_links_and_open_replies_survive_a_new_process(tmp_path):
    path = tmp_path / "state" / "w.json"
    first = SessionMap(path)
    first.set("chat1", SessionLink("ses_1", "Title"))
    assert first.begin_reply("reply1") == ReplyStart(rerun=False, first_sequence=0)
    assert first.begin_reply("reply2").rerun is False
    first.end_reply("reply2")

    second = SessionMap(path)  # what the next run sees after a crash
    assert second.get("chat1") == SessionLink("ses_1", "Title")
    # begun before: its chunks exist, and its numbers continue above the reserved block
    assert second.begin_reply("reply1") == ReplyStart(rerun=True, first_sequence=SEQUENCE_BLOCK)
    assert second.begin_reply("reply2").rerun is False
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_damaged_state_file_costs_only_context(tmp_path):
    path = tmp_path / "w.json"
    path.write_text("{not json")
    links = SessionMap(path)
    assert links.get("chat1") is None
    assert links.begin_reply("reply1").rerun is False


def test_chunks_can_start_after_an_earlier_attempts_numbers():
    buffer = ChunkBuffer(0.2, first_sequence=5_000)
    buffer.add("a", 0.0)
    first = buffer.take(0.0)
    buffer.add("b", 1.0)
    assert [first.sequence, buffer.take(1.0).sequence] == [5_000, 5_001]


def test_a_rerun_starts_above_every_chunk_number_an_earlier_run_reserved(tmp_path):
    path = tmp_path / "w.json"
    first = SessionMap(path)
    first.begin_reply("reply1")
    for sequence in range(250):  # the state file is written once per block, not per chunk
        first.reserve("reply1", sequence)
    start = SessionMap(path).begin_reply("reply1")
    assert start.rerun and 249 < start.first_sequence <= 249 + SEQUENCE_BLOCK


def test_a_reply_begun_by_a_version_that_kept_no_numbers_streams_nothing_on_its_rerun(tmp_path):
    from oco.worker._limits import MAX_CHUNK_SEQUENCE

    path = tmp_path / "w.json"
    path.write_text('{"version": 1, "replies": ["reply1"], "sessions": {}}')
    start = SessionMap(path).begin_reply("reply1")
    assert start.rerun and start.first_sequence >= MAX_CHUNK_SEQUENCE
    assert ChunkBuffer(first_sequence=start.first_sequence).standalone("again") is None
