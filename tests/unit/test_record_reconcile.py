"""Start-up reconciliation: every kind of disagreement between files and rows that a crash can
leave, made with the real writer and index, repaired, and checked with ffprobe; deletion
through garbage rows."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from tests.recording import FRAME, encode_units, fragments, probe, top_level_boxes
from vigil.record.index import RecordingIndex
from vigil.record.reconcile import ReconcileReport, delete_segments, reconcile
from vigil.record.recorder import segment_path
from vigil.record.segment import SegmentWriter

ONE_FRAME_S = FRAME / 90_000
T0 = 1_700_000_000_000_000


@pytest.fixture(scope="module")
def units() -> list:
    return encode_units(4.0, gop=25)


def record(
    root: Path,
    index: RecordingIndex,
    units: list,
    start_us: int,
    *,
    row: str = "complete",
    record_type: str = "continuous",
) -> tuple[str, int | None]:
    """A recording of `units`; its row `complete`, left `writing` after the first fragment (a
    crash), or `none` (a crash between the directory fsync and the insert)."""
    relative = segment_path(101, start_us)
    writer = SegmentWriter(root / relative, units[0], start_us=start_us, record_type=record_type)
    segment_id = None
    for unit in units[1:]:
        written = writer.add(unit)
        if written is not None and row != "none":
            if written.new_file:
                segment_id = index.add_segment(
                    written.info, relative, written.end_pts, written.size
                )
            elif row == "complete":
                index.update_segment(segment_id, written.end_pts, written.size)  # type: ignore[arg-type]
    written = writer.close()
    if row == "complete" and written is not None:
        index.update_segment(segment_id, written.end_pts, written.size, "complete")  # type: ignore[arg-type]
    return relative, segment_id


def moof_offsets(path: Path) -> list[int]:
    return [offset for kind, offset, _ in top_level_boxes(path.read_bytes()) if kind == b"moof"]


def assert_consistent(root: Path, index: RecordingIndex) -> None:
    rows = index.all_segments()
    files = sorted(p.relative_to(root).as_posix() for p in (root / "video").rglob("*.mp4"))
    assert sorted(r.path for r in rows) == files
    for row in rows:
        result = probe(root / row.path)
        assert result.ok, (row.path, result.errors)
        assert result.first_keyframe
        assert abs(result.duration - (row.end_us - row.start_us) / 1e6) <= ONE_FRAME_S
        assert row.state == "complete" and row.bytes == (root / row.path).stat().st_size
    assert index.garbage() == []


def test_every_kind_of_crash_damage_is_repaired(
    tmp_path: Path, units: list, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path
    index = RecordingIndex.open(root)
    second = 1_000_000
    good, good_id = record(root, index, units, T0)
    open_row, _ = record(root, index, units, T0 + 10 * second, row="writing")
    no_row, _ = record(root, index, units, T0 + 20 * second, row="none", record_type="alarm")
    torn, torn_id = record(root, index, units, T0 + 30 * second, row="writing")
    gone, _ = record(root, index, units, T0 + 40 * second)
    head_only, head_id = record(root, index, units, T0 + 50 * second, row="writing")
    deleting, deleting_id = record(root, index, units, T0 + 60 * second)
    deleted, deleted_id = record(root, index, units, T0 + 70 * second)
    # The crash: a torn last fragment; a file whose only fragment never made it; a file
    # removed behind the index's back; two deletions interrupted, one before its unlink.
    whole_fragments = fragments(root / torn)
    os.truncate(root / torn, moof_offsets(root / torn)[-1] + 100)
    os.truncate(root / head_only, moof_offsets(root / head_only)[0])  # no sample at all
    (root / gone).unlink()
    assert index.mark_garbage([deleting_id, deleted_id]) == [deleting, deleted]  # type: ignore[list-item]
    (root / deleted).unlink()
    (root / "video" / "notes.txt").write_text("someone's file")
    empty = segment_path(101, T0 + 80 * second)
    (root / empty).touch()  # created, killed before the first write landed
    index.close()

    fresh = RecordingIndex.open(root)
    with caplog.at_level(logging.INFO, logger="vigil.record.reconcile"):
        report = reconcile(root, fresh)
    assert report == ReconcileReport(
        garbage_deleted=1,
        garbage_forgotten=1,
        truncated=1,
        empty_deleted=2,
        rows_dropped=1,
        rows_added=1,
        rows_completed=2,
        rows_corrected=0,
        foreign=1,
    )
    # One line per kind of fix found (eight of the nine), with its count.
    lines = [r.getMessage() for r in caplog.records if r.name == "vigil.record.reconcile"]
    assert len(lines) == 8 and any("1 torn fragments truncated" in line for line in lines)

    assert_consistent(root, fresh)
    assert (root / "video" / "notes.txt").exists()
    assert not (root / deleting).exists() and not (root / head_only).exists()
    assert not (root / empty).exists()
    assert fresh.segment(head_id) is None  # type: ignore[arg-type]
    by_path = {row.path: row for row in fresh.all_segments()}
    assert set(by_path) == {good, open_row, no_row, torn}
    assert by_path[good].id == good_id
    assert by_path[no_row].record_type == "alarm"  # from the file's own info box
    assert by_path[no_row].start_us == T0 + 20 * second
    assert by_path[open_row].end_pts == units[-1].pts + FRAME
    repaired = by_path[torn]
    assert repaired.id == torn_id
    kept = whole_fragments[:-1]
    assert repaired.duration_pts == kept[-1].base_time + kept[-1].duration

    # A second pass finds nothing to do.
    assert reconcile(root, fresh).changes == 0
    fresh.close()


def test_complete_rows_of_the_right_size_are_trusted(tmp_path: Path, units: list) -> None:
    """Their files are not parsed: damage inside a file of the stated size is not looked for
    (a stat per file at start-up, as Moonfire NVR; a full check is an offline job)."""
    index = RecordingIndex.open(tmp_path)
    relative, _ = record(tmp_path, index, units, T0)
    size = (tmp_path / relative).stat().st_size
    with (tmp_path / relative).open("r+b") as f:
        f.seek(size - 10)
        f.write(b"\x00" * 10)
    assert reconcile(tmp_path, index).changes == 0
    with (tmp_path / relative).open("ab") as f:
        f.write(b"\x00" * 10)  # a size that disagrees: parsed, and the tail found torn
    report = reconcile(tmp_path, index)
    assert report.truncated == 1 and report.changes == 1
    assert_consistent(tmp_path, index)
    index.close()


def test_delete_segments_goes_through_garbage_rows(tmp_path: Path, units: list) -> None:
    index = RecordingIndex.open(tmp_path)
    first, first_id = record(tmp_path, index, units, T0)
    second, second_id = record(tmp_path, index, units, T0 + 10_000_000)
    index.set_locked([second_id], True)  # type: ignore[list-item]
    assert delete_segments(tmp_path, index, [first_id, second_id]) == [first]  # type: ignore[list-item]
    assert not (tmp_path / first).exists() and (tmp_path / second).exists()
    assert index.garbage() == [] and [s.path for s in index.all_segments()] == [second]
    index.close()


def test_reconcile_of_an_empty_card(tmp_path: Path) -> None:
    index = RecordingIndex.open(tmp_path)
    assert reconcile(tmp_path, index) == ReconcileReport()
    shutil.rmtree(tmp_path / "video", ignore_errors=True)
    index.close()
