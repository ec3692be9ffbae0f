"""Pictures: the index's picture rows (time queries by channel and event type, paging, quota
order, garbage rows, an old index gaining the tables)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vigil.record.index import RecordingIndex

S = 1_000_000
T0 = 1_700_000_000 * S


@pytest.fixture
def index(tmp_path: Path) -> RecordingIndex:
    opened = RecordingIndex.open(tmp_path)
    yield opened  # type: ignore[misc]
    opened.close()


def add(index: RecordingIndex, channel: int, at_s: float, event_type: str = "timing") -> int:
    taken_us = T0 + round(at_s * S)
    path = f"{channel:02d}/2023-11-14/x_{channel:02d}_{taken_us}_{event_type.upper()}.jpg"
    return index.add_picture(channel, path, taken_us, event_type, 1000)


def times(pictures: list) -> list[float]:
    return [(p.taken_us - T0) / S for p in pictures]


def test_time_window_is_half_open_by_channel_and_type(index: RecordingIndex) -> None:
    for at in (0, 1, 2, 3):
        add(index, 1, at)
    add(index, 1, 1.5, "motion")
    add(index, 2, 1, "motion")
    assert times(index.pictures_overlapping(1, T0 + S, T0 + 3 * S)) == [1, 1.5, 2]
    assert times(index.pictures_overlapping(1, T0, T0 + 9 * S, ["motion"])) == [1.5]
    assert index.pictures_overlapping(1, T0, T0 + 9 * S, []) == []
    assert index.count_pictures(1, T0, T0 + 9 * S) == 5
    assert index.count_pictures(1, T0, T0 + 9 * S, ["timing", "alarm"]) == 4
    assert index.count_pictures(2, T0, T0 + 9 * S) == 1
    with pytest.raises(ValueError):
        index.pictures_overlapping(1, T0 + S, T0)


def test_paging_and_lookup(index: RecordingIndex) -> None:
    ids = [add(index, 1, at) for at in range(7)]
    pages = [index.pictures_overlapping(1, T0, T0 + 9 * S, limit=3, offset=o) for o in (0, 3, 6)]
    assert [[p.id for p in page] for page in pages] == [ids[:3], ids[3:6], ids[6:]]
    picture = index.picture(ids[2])
    assert picture is not None
    assert (picture.channel, picture.event_type, picture.bytes) == (1, "timing", 1000)
    assert index.picture(12345) is None
    with pytest.raises(ValueError):
        index.pictures_overlapping(1, T0, T0 + S, limit=0)


def test_bad_event_types_are_refused(index: RecordingIndex) -> None:
    for bad in ("", "Motion", "a b", "x" * 33, "../x"):
        with pytest.raises(ValueError):
            index.add_picture(1, f"01/d/{bad}.jpg", T0, bad, 1)


def test_oldest_first_across_channels_and_totals(index: RecordingIndex) -> None:
    add(index, 2, 5)
    first = add(index, 1, 1)
    add(index, 1, 9)
    assert times(index.oldest_pictures(2)) == [1, 5]
    assert index.oldest_pictures(1)[0].id == first
    assert index.picture_bytes() == 3000


def test_dropped_rows_become_garbage_until_forgotten(index: RecordingIndex) -> None:
    keep, drop = add(index, 1, 1), add(index, 1, 2)
    dropped = index.picture(drop)
    assert dropped is not None
    assert index.drop_pictures([drop, 999]) == [dropped.path]
    assert [p.id for p in index.pictures_overlapping(1, T0, T0 + 9 * S)] == [keep]
    assert index.picture_garbage() == [dropped.path]
    # Picture garbage is its own: the recordings' reconciliation never unlinks these paths.
    assert index.garbage() == []
    index.forget_picture_garbage([dropped.path])
    assert index.picture_garbage() == []


def test_paths_under_a_folder(index: RecordingIndex) -> None:
    index.add_picture(1, "01/2023-11-14/a.jpg", T0, "timing", 1)
    index.add_picture(1, "01/2023-11-140/b.jpg", T0, "timing", 1)
    index.add_picture(1, "01/2023-11-15/c.jpg", T0, "timing", 1)
    assert index.picture_paths("01/2023-11-14/") == {"01/2023-11-14/a.jpg"}
    with pytest.raises(ValueError):
        index.picture_paths("01/2023-11-14")


def test_an_index_from_before_pictures_gains_the_tables(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "index.sqlite3") as db:
        db.execute("CREATE TABLE garbage (path TEXT PRIMARY KEY)")
        db.execute("INSERT INTO garbage VALUES ('video/101/x.mp4')")
    index = RecordingIndex.open(tmp_path)
    try:
        assert index.garbage() == ["video/101/x.mp4"]
        add(index, 1, 0)
        assert index.count_pictures(1, T0, T0 + S) == 1
    finally:
        index.close()
    reopened = RecordingIndex.open(tmp_path)
    try:
        assert reopened.count_pictures(1, T0, T0 + S) == 1
    finally:
        reopened.close()
