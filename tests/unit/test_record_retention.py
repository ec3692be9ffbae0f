"""Retention on a real card: a 64 MB ext4 file system on a loop device, filled with real fMP4
segments (real libx264 units at 8 Mbps written by the real SegmentWriter, or by a running
Recorder), then swept. Checked: which segments go (the oldest unlocked ones, exactly as many as
the marks ask for), which stay (locked, being written, recent), the log, the free space that
statvfs reports afterwards, that the index matches the files, and that a deletion cut short by
a crash is finished by reconciliation. One rows-only test checks the order across streams when
locked footage cuts a page of candidates short. Needs root and loop devices."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from tests.loop_card import CARD_MB, needs_loop_devices, run
from tests.recording import FPS, probe
from vigil.config.model import StorageSettings, StreamSettings
from vigil.media.encoder import VideoEncoder
from vigil.media.frames import AccessUnit
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer
from vigil.media.source import CapturedFrame
from vigil.record.fmp4 import SegmentInfo
from vigil.record.index import RecordingIndex, Segment
from vigil.record.reconcile import reconcile
from vigil.record.recorder import Recorder, segment_path
from vigil.record.retention import (
    BATCH,
    EXPIRY,
    LOW_SPACE,
    QUOTA,
    Retention,
    filesystem_space,
    low_space_marks,
    quota_marks,
)
from vigil.record.segment import SegmentWriter
from vigil.record.storage import MKFS_ARGS, MOUNT_OPTIONS, RECORD_DIR

T0 = 1_700_000_000_000_000  # 2023-11-14, well before anything a live Recorder writes
SECOND = 1_000_000
DAY = 86_400 * SECOND
MB = 1024 * 1024
LOGGER = "vigil.record.retention"

needs_loop = needs_loop_devices("losetup", "mkfs.ext4", "mount", "umount")


@pytest.fixture
def card(tmp_path: Path) -> Iterator[Path]:
    """The record directory of a freshly formatted 64 MB card, as the storage manager makes it."""
    image = tmp_path / "card.img"
    with image.open("wb") as f:
        f.truncate(CARD_MB * MB)
    loop = run("losetup", "--find", "--show", str(image))
    mount_point = tmp_path / "card"
    mount_point.mkdir()
    try:
        run(*MKFS_ARGS, loop)
        run("mount", "-o", MOUNT_OPTIONS, loop, str(mount_point))
        try:
            root = mount_point / RECORD_DIR
            root.mkdir()
            yield root
        finally:
            if subprocess.run(["umount", str(mount_point)], check=False).returncode:
                subprocess.run(["umount", "-l", str(mount_point)], check=False)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


@pytest.fixture
def index(card: Path) -> Iterator[RecordingIndex]:
    opened = RecordingIndex.open(card)
    yield opened
    opened.close()


def cbr_units(seconds: float, t0: float = 100.0) -> list[AccessUnit]:
    """Real libx264 units at a constant 8 Mbps (filler keeps the rate up), a keyframe a second."""
    settings = StreamSettings(
        id=101, width=640, height=360, fps=FPS, gop=FPS, rate_control="CBR",
        max_bitrate_kbps=8192,
    )  # fmt: skip
    encoder = VideoEncoder(101, settings)
    units: list[AccessUnit] = []
    with av.open(f"testsrc2=size=640x360:rate={FPS}", format="lavfi") as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == round(seconds * FPS):
                break
            units += encoder.encode(CapturedFrame(frame, t0 + number / FPS))
    return units + encoder.flush()


@pytest.fixture(scope="module")
def units() -> list[AccessUnit]:
    return cbr_units(2.0)  # about 2 MB


def write_segment(
    root: Path, index: RecordingIndex, units: list[AccessUnit], stream_id: int, start_us: int
) -> Segment:
    """A complete recording of `units` starting at `start_us`, as the recorder writes one."""
    relative = segment_path(stream_id, start_us)
    writer = SegmentWriter(
        root / relative, units[0], start_us=start_us, record_type="continuous",
        stream_id=stream_id,
    )  # fmt: skip
    segment_id = None
    for unit in units[1:]:
        written = writer.add(unit)
        if written is not None:
            if written.new_file:
                segment_id = index.add_segment(
                    written.info, relative, written.end_pts, written.size
                )
            else:
                index.update_segment(segment_id, written.end_pts, written.size)  # type: ignore[arg-type]
    written = writer.close()
    assert written is not None and segment_id is not None
    index.update_segment(segment_id, written.end_pts, written.size, "complete")
    segment = index.segment(segment_id)
    assert segment is not None
    return segment


def fill(
    root: Path, index: RecordingIndex, units: list[AccessUnit], *, leave: int = 5 * MB // 2
) -> list[Segment]:
    """Consecutive 2 s segments of stream 101 from T0 until less than `leave` bytes are free."""
    segments: list[Segment] = []
    while filesystem_space(root)[1] >= leave:
        start = T0 + 2 * SECOND * len(segments)
        segments.append(write_segment(root, index, units, 101, start))
    return segments


def retention(
    root: Path, index: RecordingIndex, *, rate: float = 0.0, **settings: object
) -> Retention:
    """Footage may take the whole card unless a test says otherwise: with the default 80 %
    quota a card of nothing but footage never runs low on space."""
    chosen = StorageSettings(
        **{"record_quota_percent": 100, "picture_quota_percent": 0, **settings}  # type: ignore[arg-type]
    )
    return Retention(root, index, settings=lambda: chosen, rate=lambda: rate)


def assert_index_matches_files(root: Path, index: RecordingIndex) -> None:
    rows = index.all_segments()
    files = sorted(p.relative_to(root).as_posix() for p in (root / "video").rglob("*.mp4"))
    assert sorted(r.path for r in rows) == files
    for row in rows:
        assert row.bytes == (root / row.path).stat().st_size
    assert index.garbage() == []


def oldest_first(segments: list[Segment], need: int) -> list[Segment]:
    """The shortest run of the oldest of `segments` that holds `need` bytes."""
    chosen, total = [], 0
    for segment in sorted(segments, key=lambda s: (s.start_us, s.id)):
        if total >= need:
            break
        chosen.append(segment)
        total += segment.bytes
    return chosen


def sweep_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_marks_cap_the_hour_on_small_cards() -> None:
    one_mbps, four_mbps = 1_000_000 / 8, 4_000_000 / 8
    small, large = 64 * MB, 64 * 1024 * MB
    assert low_space_marks(small, one_mbps) == (round(0.05 * small), round(0.06 * small))
    # Never less than 15 s of recording: a sweep every 5 s must find room left.
    assert low_space_marks(small, four_mbps) == (7_500_000, 7_500_000 + round(0.01 * small))
    assert low_space_marks(large, four_mbps) == (1_800_000_000, 1_800_000_000 + large // 100)
    assert low_space_marks(large, 0.0) == (large // 100, 2 * large // 100)  # not recording
    assert quota_marks(1000 * MB, 80) == (800 * MB, 790 * MB)
    assert quota_marks(1000 * MB, 0) == (0, 0)


@needs_loop
def test_low_space_deletes_the_oldest_unlocked_and_keeps_locked(
    card: Path, index: RecordingIndex, units: list[AccessUnit], caplog: pytest.LogCaptureFixture
) -> None:
    segments = fill(card, index, units)
    assert len(segments) >= 25
    locked = [segments[0], segments[1], segments[3]]
    index.set_locked([s.id for s in locked], True)
    capacity, free = filesystem_space(card)
    rate = 100_000.0  # 0.8 Mbps: an hour is 360 MB, 15 s 1.5 MB, so the 5 % cap decides
    low, high = low_space_marks(capacity, rate)
    assert free < low == round(0.05 * capacity)
    unlocked = [s for s in segments if s not in locked]
    expected = oldest_first(unlocked, high - free)  # segments[2], and [4] if it takes two

    caplog.set_level(logging.INFO, logger=LOGGER)
    report = retention(card, index, rate=rate).sweep()

    assert report.deleted[LOW_SPACE].segments == len(expected)
    assert report.deleted[LOW_SPACE].bytes == sum(s.bytes for s in expected)
    assert report.deleted[EXPIRY].segments == report.deleted[QUOTA].segments == 0
    assert not report.short
    kept = {s.id for s in index.all_segments()}
    assert kept == {s.id for s in segments} - {s.id for s in expected}
    assert {s.id for s in locked} <= kept
    assert_index_matches_files(card, index)
    # The space is really back (statvfs), past the upper mark: storage clears `full` at 2 %.
    assert report.free == filesystem_space(card)[1] >= high - 64 * 1024
    assert report.free >= 0.02 * capacity
    (line,) = sweep_lines(caplog)
    assert f"deleted {len(expected)} segment" in line and "low space" in line
    assert report.oldest_kept_us == segments[0].start_us  # the locked one
    assert "footage kept from 2023-11-14 22:13:20 UTC" in line

    # Above the low mark now: the next sweep deletes nothing and says nothing.
    caplog.clear()
    again = retention(card, index, rate=rate).sweep()
    assert again.segments == 0 and not again.short and sweep_lines(caplog) == []


@needs_loop
def test_overwrite_off_deletes_nothing(
    card: Path, index: RecordingIndex, units: list[AccessUnit], caplog: pytest.LogCaptureFixture
) -> None:
    segments = fill(card, index, units)
    caplog.set_level(logging.INFO, logger=LOGGER)
    report = retention(card, index, rate=1e6, overwrite=False).sweep()
    assert report.segments == 0 and report.short
    assert [s.id for s in index.all_segments()] == [s.id for s in segments]
    assert_index_matches_files(card, index)
    assert sweep_lines(caplog) == []


@needs_loop
def test_only_locked_footage_left_is_logged_once(
    card: Path, index: RecordingIndex, units: list[AccessUnit], caplog: pytest.LogCaptureFixture
) -> None:
    segments = fill(card, index, units)
    index.set_locked([s.id for s in segments], True)
    caplog.set_level(logging.INFO, logger=LOGGER)
    keeper = retention(card, index, rate=1e6)
    first = keeper.sweep()
    assert first.segments == 0 and first.short
    assert [s.id for s in index.all_segments()] == [s.id for s in segments]
    stuck = [line for line in sweep_lines(caplog) if "only locked footage" in line]
    assert len(stuck) == 1 and "low space" in stuck[0]
    second = keeper.sweep()
    assert second.segments == 0 and second.short
    assert len([line for line in sweep_lines(caplog) if "only locked footage" in line]) == 1
    assert_index_matches_files(card, index)


@needs_loop
def test_quota_trims_the_footage_only_with_overwrite(
    card: Path, index: RecordingIndex, units: list[AccessUnit], caplog: pytest.LogCaptureFixture
) -> None:
    segments = [write_segment(card, index, units, 101, T0 + 2 * SECOND * n) for n in range(10)]
    used = sum(s.bytes for s in segments)
    capacity = filesystem_space(card)[0]
    over, under = quota_marks(capacity, 20)
    assert used > over
    assert retention(card, index, record_quota_percent=20, overwrite=False).sweep().short
    assert len(index.all_segments()) == 10

    caplog.set_level(logging.INFO, logger=LOGGER)
    report = retention(card, index, record_quota_percent=20).sweep()
    expected = oldest_first(segments, used - under)
    assert report.deleted[QUOTA].segments == len(expected) >= 3
    assert not report.short
    left = index.all_segments()
    assert [s.id for s in left] == [s.id for s in segments[len(expected) :]]
    assert sum(s.bytes for s in left) <= under
    assert_index_matches_files(card, index)
    (line,) = sweep_lines(caplog)
    assert "quota" in line


@needs_loop
def test_expiry_deletes_old_segments_only(
    card: Path, index: RecordingIndex, units: list[AccessUnit], caplog: pytest.LogCaptureFixture
) -> None:
    now = T0 + 30 * DAY
    ages_days = {101: [12, 10, 8, 7.5, 6, 1], 102: [9, 3]}
    made = {
        (stream, age): write_segment(card, index, units, stream, now - round(age * DAY))
        for stream, ages in ages_days.items()
        for age in ages
    }
    locked_old = made[(101, 10)]
    index.set_locked([locked_old.id], True)
    caplog.set_level(logging.INFO, logger=LOGGER)
    # Expiry applies with overwrite off too; the card is far from full.
    report = retention(card, index, expiry_days=7, overwrite=False).sweep(now_us=now)

    # "Ended more than 7 days ago": the 7.5-day-old one (2 s long) too, the 6-day one not.
    gone = {(101, 12), (101, 8), (101, 7.5), (102, 9)}
    assert report.deleted[EXPIRY].segments == len(gone)
    kept = {(s.stream_id, s.start_us) for s in index.all_segments()}
    assert kept == {(k[0], m.start_us) for k, m in made.items() if k not in gone}
    assert_index_matches_files(card, index)
    (line,) = sweep_lines(caplog)
    assert "expiry 4" in line
    # Day directories emptied by the deletion are gone; the locked segment's day stays.
    for key in gone:
        assert not (card / made[key].path).parent.exists()
    assert (card / locked_old.path).parent.is_dir()
    assert retention(card, index, expiry_days=7).sweep(now_us=now).segments == 0


@needs_loop
async def test_a_segment_being_written_is_never_deleted(
    card: Path, index: RecordingIndex, units: list[AccessUnit], caplog: pytest.LogCaptureFixture
) -> None:
    old = [write_segment(card, index, units, 101, T0 + 2 * SECOND * n) for n in range(3)]
    live = cbr_units(3.0, t0=time.monotonic())
    hub = StreamHub(101, make_packetizer("H264"))
    recorder = Recorder(101, hub, card, index, segment_seconds=600)
    await recorder.start()
    try:
        for au in live:
            hub.publish(au)
            await asyncio.sleep(0)
        deadline = time.monotonic() + 20
        while not any(s.state == "writing" for s in index.all_segments()):
            assert time.monotonic() < deadline, "no segment is being written"
            await asyncio.sleep(0.05)
        caplog.set_level(logging.INFO, logger=LOGGER)
        # A 0 % quota: every byte of footage is to go, as far as it may.
        report = await asyncio.to_thread(retention(card, index, record_quota_percent=0).sweep)
    finally:
        await recorder.stop()
    assert report.deleted[QUOTA].segments == len(old) and report.short
    (recorded,) = index.all_segments()
    assert recorded.stream_id == 101 and recorded.start_us > T0 + DAY
    assert recorded.state == "complete" and probe(card / recorded.path).ok
    assert_index_matches_files(card, index)
    assert any("segments being recorded are left" in line for line in sweep_lines(caplog))


class PowerCut(BaseException):
    """The process dies here (not an Exception: nothing may catch it on the way out)."""


@needs_loop
def test_a_crash_in_the_middle_of_a_deletion_is_finished_by_reconciliation(
    card: Path, index: RecordingIndex, units: list[AccessUnit], monkeypatch: pytest.MonkeyPatch
) -> None:
    segments = fill(card, index, units)
    unlink = Path.unlink
    unlinked: list[Path] = []

    def unlink_then_die(path: Path, missing_ok: bool = False) -> None:
        if unlinked:
            raise PowerCut
        unlink(path, missing_ok)
        unlinked.append(path)

    monkeypatch.setattr(Path, "unlink", unlink_then_die)
    with pytest.raises(PowerCut):  # a quota of half the card: a batch of many segments
        retention(card, index, record_quota_percent=50).sweep()
    monkeypatch.undo()
    doomed = index.garbage()
    assert len(doomed) >= 2  # the batch: rows already garbage, one file gone, the rest not
    assert sum((card / p).exists() for p in doomed) == len(doomed) - 1
    index.close()

    reopened = RecordingIndex.open(card)
    try:
        report = reconcile(card, reopened)
        assert (report.garbage_deleted, report.garbage_forgotten) == (len(doomed) - 1, 1)
        assert report.rows_added == 0  # the doomed files were not taken back
        left = {s.path for s in reopened.all_segments()}
        assert left == {s.path for s in segments} - set(doomed)
        assert not any((card / p).exists() for p in doomed)
        assert_index_matches_files(card, reopened)
    finally:
        reopened.close()


def add_row(root: Path, index: RecordingIndex, stream_id: int, second: int, size: int) -> int:
    """A complete row of a 1 s segment starting `second`s after T0, and a stand-in file."""
    start_us = T0 + second * SECOND
    path = segment_path(stream_id, start_us)
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(b"\0" * size)
    info = SegmentInfo(stream_id, "H264", 640, 360, second * 90_000, start_us, "continuous")
    return index.add_segment(info, path, (second + 1) * 90_000, size, "complete")


def test_oldest_first_across_streams_when_locked_footage_cuts_a_page_short(
    tmp_path: Path,
) -> None:
    """Rows only (files are stand-ins): stream 101 has one unlocked segment, then a page's
    worth of locked ones, then more unlocked ones; stream 102's footage is all later. The
    oldest must go first, not 102's because 101's page ended early."""
    index = RecordingIndex.open(tmp_path)
    size = 100_001  # ten of them free the 1 % margin plus a byte
    ids = {(101, 0): add_row(tmp_path, index, 101, 0, size)}
    for second in range(1, BATCH):
        ids[(101, second)] = add_row(tmp_path, index, 101, second, size)
        index.set_locked([ids[(101, second)]], True)
    for second in range(BATCH, BATCH + 8):
        ids[(101, second)] = add_row(tmp_path, index, 101, second, size)
    for second in range(200, 240):
        ids[(102, second)] = add_row(tmp_path, index, 102, second, size)
    capacity = 100_000_000
    low, _ = low_space_marks(capacity, 0.0)
    keeper = Retention(
        tmp_path, index, settings=StorageSettings, rate=lambda: 0.0,
        space=lambda: (capacity, low - 1),
    )  # fmt: skip
    try:
        report = keeper.sweep()
        assert report.deleted[LOW_SPACE].segments == 10
        expected = [(101, 0)] + [(101, s) for s in range(BATCH, BATCH + 8)] + [(102, 200)]
        remaining = {s.id for s in index.all_segments()}
        assert not remaining & {ids[key] for key in expected}
        assert len(remaining) == len(ids) - 10
        assert_index_matches_files(tmp_path, index)
    finally:
        index.close()


def test_hysteresis_between_the_marks(tmp_path: Path) -> None:
    """Rows only, free space given: deletion starts below the low mark only, frees up to the
    high mark, and when locked footage stops it short, goes on in later sweeps until the
    high mark even while free space is back between the marks."""
    index = RecordingIndex.open(tmp_path)
    ids = [add_row(tmp_path, index, 101, second, 300_000) for second in range(20)]
    capacity, free = 100_000_000, [0]
    low, high = low_space_marks(capacity, 0.0)  # 1 MB, 2 MB
    keeper = Retention(
        tmp_path, index, settings=StorageSettings, rate=lambda: 0.0,
        space=lambda: (capacity, free[0]),
    )  # fmt: skip

    def sweep(free_now: int) -> list[int]:
        free[0] = free_now
        before = {s.id for s in index.all_segments()}
        keeper.sweep()
        return sorted(before - {s.id for s in index.all_segments()})

    between = (low + high) // 2
    try:
        assert sweep(between) == []
        assert sweep(low - 100_000) == ids[:4]  # 1.1 MB to free: four of 0.3 MB
        assert sweep(between) == []  # the high mark was reached: freeing stopped
        index.set_locked(ids[5:], True)
        assert sweep(low - 100_000) == [ids[4]]  # 0.3 of 1.1 MB: all that may go
        index.set_locked(ids[5:], False)
        assert sweep(between) == ids[5:7]  # still freeing: up to the high mark
        assert sweep(between) == []
        assert_index_matches_files(tmp_path, index)
    finally:
        index.close()
