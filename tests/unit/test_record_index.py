"""Recording index: overlap queries by stream and record type, paging, overwrite order, garbage
rows, events, and what survives a reopen. Real SQLite files in a temporary directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests import recording
from vigil.record.fmp4 import SegmentInfo
from vigil.record.index import MAX_SEGMENT_US, RecordingIndex

S = 1_000_000  # one second in microseconds
T0 = 1_700_000_000 * S


index = recording.index  # the fixture: a new index in tmp_path, closed after the test


def add(
    index: RecordingIndex,
    stream_id: int,
    start_s: float,
    length_s: float,
    record_type: str = "continuous",
    state: str = "complete",
) -> int:
    start_us = T0 + round(start_s * S)
    info = SegmentInfo(stream_id, "H264", 640, 360, 1000, start_us, record_type)
    end_pts = 1000 + round(length_s * 90_000)
    path = f"video/{stream_id}/{start_us}.mp4"
    return index.add_segment(info, path, end_pts, int(length_s * 1000), state)


def spans(segments: list) -> list[tuple[float, float]]:
    return [((s.start_us - T0) / S, (s.end_us - T0) / S) for s in segments]


def test_end_time_follows_the_media_clock(index: RecordingIndex) -> None:
    segment_id = add(index, 101, 0, 0.04, state="writing")
    index.update_segment(segment_id, 1000 + 90_000 * 59 + 3600, 123, None)
    row = index.segment(segment_id)
    assert row is not None and row.state == "writing"
    assert row.end_us - row.start_us == 59_040_000
    assert row.duration_pts == 90_000 * 59 + 3600
    index.update_segment(segment_id, 1000 + 1, 124, "complete")  # one tick: rounded to 11 us
    row = index.segment(segment_id)
    assert row is not None and (row.state, row.bytes, row.end_us - row.start_us) == (
        "complete",
        124,
        11,
    )


def test_overlap_is_half_open_and_ordered(index: RecordingIndex) -> None:
    for n in range(5):  # 60 s segments back to back: [0,60) [60,120) ... [240,300)
        add(index, 101, n * 60, 60)
    add(index, 102, 0, 300)  # another stream: never in stream 101's answers

    def query(a: float, b: float) -> list[tuple[float, float]]:
        return spans(index.segments_overlapping(101, T0 + round(a * S), T0 + round(b * S)))

    assert query(60, 120) == [(60, 120)]  # touching neighbours are not overlapping
    assert query(59.9, 120.1) == [(0, 60), (60, 120), (120, 180)]
    assert query(-100, 0) == []
    assert query(300, 400) == []
    assert query(299, 299.5) == [(240, 300)]
    assert query(-1000, 1000) == [(n * 60, n * 60 + 60) for n in range(5)]
    assert index.count_overlapping(101, T0, T0 + 1000 * S) == 5
    assert len(index.segments_overlapping(102, T0 + 100 * S, T0 + 101 * S)) == 1


def test_a_long_segment_starting_well_before_the_window_is_found(index: RecordingIndex) -> None:
    add(index, 101, 0, 3600)  # a one-hour segment
    found = index.segments_overlapping(101, T0 + 3000 * S, T0 + 3001 * S)
    assert spans(found) == [(0, 3600)]


def test_spans_beyond_the_bound_the_query_relies_on_are_refused(index: RecordingIndex) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        add(index, 101, 0, MAX_SEGMENT_US / S + 1)
    with pytest.raises(sqlite3.IntegrityError):
        segment_id = add(index, 101, 0, 10)
        index.update_segment(segment_id, 1000 + (MAX_SEGMENT_US // S + 1) * 90_000, 1)


def test_record_type_filter(index: RecordingIndex) -> None:
    add(index, 101, 0, 60, "continuous")
    add(index, 101, 60, 60, "motion")
    add(index, 101, 120, 60, "alarm")
    add(index, 101, 180, 60, "manual")
    window = (101, T0, T0 + 1000 * S)
    assert [s.record_type for s in index.segments_overlapping(*window, ["motion", "alarm"])] == [
        "motion",
        "alarm",
    ]
    assert index.count_overlapping(*window, ["manual"]) == 1
    assert index.segments_overlapping(*window, []) == []
    with pytest.raises(ValueError):
        index.segments_overlapping(*window, ["vmd"])


def test_paging(index: RecordingIndex) -> None:
    for n in range(25):
        add(index, 101, n * 10, 10)
    window = (101, T0, T0 + 1000 * S)
    pages = [index.segments_overlapping(*window, limit=10, offset=o) for o in (0, 10, 20, 30)]
    assert [len(p) for p in pages] == [10, 10, 5, 0]
    starts = [s.start_us for page in pages for s in page]
    assert starts == sorted(starts) and len(set(starts)) == 25
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        with pytest.raises(ValueError):
            index.segments_overlapping(*window, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        index.segments_overlapping(101, T0 + 10, T0)  # inverted span


def test_oldest_unlocked_skips_locked_and_open_segments(index: RecordingIndex) -> None:
    first = add(index, 101, 0, 60)
    second = add(index, 102, 30, 60)
    third = add(index, 101, 60, 60)
    add(index, 102, 90, 60, state="writing")
    assert index.oldest_unlocked().id == first  # type: ignore[union-attr]
    assert index.set_locked([first], True) == 1
    assert index.oldest_unlocked().id == second  # type: ignore[union-attr]
    assert index.oldest_unlocked(101).id == third  # type: ignore[union-attr]
    index.set_locked([second, third], True)
    assert index.oldest_unlocked() is None  # the writing one is never offered
    index.set_locked([first], False)
    assert index.oldest_unlocked().id == first  # type: ignore[union-attr]


def test_totals_by_stream(index: RecordingIndex) -> None:
    a = add(index, 101, 0, 60)
    add(index, 101, 60, 30)
    add(index, 102, 10, 20)
    index.set_locked([a], True)
    totals = index.totals_by_stream()
    assert sorted(totals) == [101, 102]
    assert (totals[101].segments, totals[101].bytes, totals[101].locked_bytes) == (2, 90000, 60000)
    assert (totals[101].start_us, totals[101].end_us) == (T0, T0 + 90 * S)
    assert totals[102].segments == 1 and totals[102].locked_bytes == 0


def test_garbage_rows_replace_segment_rows(index: RecordingIndex) -> None:
    old = add(index, 101, 0, 60)
    locked = add(index, 101, 60, 60)
    writing = add(index, 101, 120, 60, state="writing")
    index.set_locked([locked], True)
    paths = index.mark_garbage([old, locked, writing])
    assert paths == [f"video/101/{T0}.mp4"]  # never a locked or an open segment
    assert index.segment(old) is None and index.segment(locked) is not None
    assert index.garbage() == paths
    index.forget_garbage(paths)
    assert index.garbage() == []
    forced = index.mark_garbage([writing], force=True)
    assert forced == [f"video/101/{T0 + 120 * S}.mp4"] and index.garbage() == forced
    index.add_garbage(["video/101/stray.mp4"])
    assert sorted(index.garbage()) == sorted([*forced, "video/101/stray.mp4"])


def test_events(index: RecordingIndex) -> None:
    closed = index.add_event(101, "vmd", T0 + 10 * S, T0 + 20 * S)
    open_event = index.add_event(101, "io", T0 + 50 * S)
    index.add_event(102, "vmd", T0, T0 + 100 * S)

    def found(a: float, b: float, types: list[str] | None = None) -> list[int]:
        return [
            e.id for e in index.events_overlapping(101, T0 + round(a * S), T0 + round(b * S), types)
        ]

    assert found(0, 10) == []
    assert found(0, 10.5) == [closed]
    assert found(15, 1000) == [closed, open_event]  # an open event lasts until now
    assert found(15, 1000, ["io"]) == [open_event]
    index.end_event(open_event, T0 + 60 * S)
    assert found(61, 100) == []
    with pytest.raises(ValueError):
        index.add_event(101, "vmd", T0 + 10, T0)


def test_reopen_keeps_everything_and_uses_wal(tmp_path: Path) -> None:
    index = RecordingIndex.open(tmp_path)
    segment_id = add(index, 101, 0, 60, "alarm")
    index.set_locked([segment_id], True)
    index.add_garbage(["video/101/x.mp4"])
    index.close()
    again = RecordingIndex.open(tmp_path)
    row = again.segment(segment_id)
    assert row is not None and row.locked and row.record_type == "alarm"
    assert again.garbage() == ["video/101/x.mp4"]
    again.close()
    with sqlite3.connect(tmp_path / "index.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1


def test_unknown_record_types_and_states_are_refused(index: RecordingIndex) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        add(index, 101, 0, 10, "sometimes")
    with pytest.raises(sqlite3.IntegrityError):
        add(index, 101, 0, 10, state="half")


def test_overlap_query_is_an_index_range(tmp_path: Path) -> None:
    """The bound on segment length is what lets the query seek instead of scanning a year."""
    RecordingIndex.open(tmp_path).close()
    with sqlite3.connect(tmp_path / "index.sqlite3") as db:
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM segments WHERE stream_id = ?"
            " AND start_us > ? AND start_us < ? AND end_us > ? ORDER BY start_us, id",
            (101, 0, 1, 0),
        ).fetchall()
    detail = " ".join(row[-1] for row in plan)
    assert "segments_by_start (stream_id=? AND start_us>? AND start_us<?)" in detail, detail
