"""Recorder: a real StreamHub fed with real encoder units; segments rotate at keyframes and
abut exactly, a gap (queue overflow, pts jump, codec change) ends a segment and the next
starts at a keyframe, a stalled source still gets its last fragment written, a failing card
is retried. Files are checked with ffprobe, rows against files."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from tests import recording
from tests.recording import FRAME, encode_units, probe
from vigil.media.frames import AccessUnit
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer
from vigil.record.index import RecordingIndex, Segment
from vigil.record.recorder import Recorder, default_rotate_offset, next_boundary_us

ONE_FRAME_S = FRAME / 90_000


index = recording.index  # the fixture: a new index in tmp_path, closed after the test


@pytest.fixture(scope="module")
def gop1s() -> list[AccessUnit]:
    return encode_units(32.0, gop=25)  # 800 units, a keyframe every second


async def settle(recorder: Recorder, count: int, timeout: float = 20.0) -> None:
    """Wait until the writer thread has taken `count` units."""
    deadline = time.monotonic() + timeout
    while recorder.stats.units < count:
        assert time.monotonic() < deadline, f"writer took {recorder.stats.units} of {count}"
        await asyncio.sleep(0.01)


async def start_recorder(
    root: Path, index: RecordingIndex, **settings: Any
) -> tuple[StreamHub, Recorder]:
    """A hub for H.264 stream 101 and a started Recorder of it under `root`."""
    hub = StreamHub(101, make_packetizer("H264"))
    recorder = Recorder(101, hub, root, index, **settings)
    await recorder.start()
    return hub, recorder


async def feed(hub: StreamHub, units: list[AccessUnit]) -> None:
    for au in units:
        hub.publish(au)
        await asyncio.sleep(0)  # the pump gets its turn, as with an encoder thread


async def feed_in_step(
    recorder: Recorder, hub: StreamHub, units: list[AccessUnit], taken: int
) -> int:
    """Publish one unit at a time, each once the recorder has taken the last (the writer gets
    them by fragment): `taken` so far."""
    deadline = time.monotonic() + 20.0
    for au in units:
        hub.publish(au)
        taken += 1
        while recorder.stats.received < taken:
            assert time.monotonic() < deadline, f"took {recorder.stats.received} of {taken}"
            await asyncio.sleep(0.001)
    return taken


def check_rows_against_files(root: Path, segments: list[Segment]) -> None:
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.mp4"))
    assert sorted(s.path for s in segments) == on_disk
    for segment in segments:
        result = probe(root / segment.path)
        assert result.ok, result.errors
        assert result.first_keyframe, segment.path
        assert abs(result.duration - (segment.end_us - segment.start_us) / 1e6) <= ONE_FRAME_S
        assert segment.state == "complete"
        assert (root / segment.path).stat().st_size == segment.bytes


def pts_index(units: list[AccessUnit]) -> dict[int, int]:
    return {au.pts: n for n, au in enumerate(units)}


async def test_rotation_at_keyframes_segments_abut(
    tmp_path: Path, index: RecordingIndex, gop1s: list[AccessUnit]
) -> None:
    hub, recorder = await start_recorder(tmp_path, index, segment_seconds=10, rotate_offset=3.3)
    await feed(hub, gop1s)
    await settle(recorder, len(gop1s))
    await recorder.stop()
    segments = index.all_segments()
    check_rows_against_files(tmp_path, segments)
    assert len(segments) >= 3
    where = pts_index(gop1s)
    for segment in segments:
        assert gop1s[where[segment.start_pts]].keyframe
    for before, after in itertools.pairwise(segments):
        assert before.end_pts == after.start_pts  # no unit lost or doubled at a rotation
        assert before.end_us == after.start_us
    for segment in segments[1:-1]:
        assert segment.duration_pts == 10 * 90_000  # on the grid, every segment the same
    # The rotations fall on this stream's grid: a keyframe within a GOP after grid points.
    for segment in segments[1:]:
        phase = (segment.start_us / 1e6 - 3.3) % 10
        assert phase < 1.0 + 1e-6, phase
    assert sum(probe(tmp_path / s.path).packets for s in segments) == len(gop1s)
    assert segments[0].start_pts == gop1s[0].pts
    assert segments[-1].end_pts == gop1s[-1].pts + FRAME
    assert recorder.stats.gaps == 0 and recorder.stats.segments == len(segments)


async def test_queue_overflow_closes_the_segment_and_the_next_starts_on_a_keyframe(
    tmp_path: Path, index: RecordingIndex, gop1s: list[AccessUnit]
) -> None:
    units = gop1s[:300]
    hub, recorder = await start_recorder(tmp_path, index, segment_seconds=600, queue_units=60)
    await feed(hub, units[:75])
    await settle(recorder, 75)
    for au in units[75:175]:  # a burst nobody drains: the subscription overflows
        hub.publish(au)
    taken = 75 + 25  # after the skip: units 150..174 were queued
    await settle(recorder, taken)
    # Then at a pace the writer keeps up with.
    await feed_in_step(recorder, hub, units[175:], taken)
    await recorder.stop()
    assert recorder.stats.skips == 1 and recorder.stats.gaps == 1
    first, second = index.all_segments()
    check_rows_against_files(tmp_path, [first, second])
    # The first ends with the last unit it had (no claim to the lost span) ...
    assert first.end_pts == units[74].pts + FRAME
    # ... and the second begins on the first keyframe that survived the overflow.
    assert second.start_pts == units[150].pts and units[150].keyframe
    assert second.start_us - first.end_us == pytest.approx(75 * FRAME / 90 * 1000, abs=1000)
    assert probe(tmp_path / second.path).packets == 150


async def test_a_short_overflow_without_a_pts_jump_is_still_a_gap(
    tmp_path: Path, index: RecordingIndex, gop1s: list[AccessUnit]
) -> None:
    """0.4 s lost just before a keyframe: the pts step alone would pass for a late frame."""
    units = gop1s[:150]
    hub, recorder = await start_recorder(tmp_path, index, segment_seconds=600, queue_units=5)
    taken = await feed_in_step(recorder, hub, units[:90], 0)
    # 90..94 fill the queue, 95 overflows it (all are lost) and 96..99 wait for the keyframe.
    for au in units[90:100]:
        hub.publish(au)
    await feed_in_step(recorder, hub, units[100:], taken)
    await recorder.stop()
    assert recorder.stats.skips == 1
    first, second = index.all_segments()
    check_rows_against_files(tmp_path, [first, second])
    assert first.end_pts == units[89].pts + FRAME
    assert second.start_pts == units[100].pts


async def test_pts_jump_is_a_gap(
    tmp_path: Path, index: RecordingIndex, gop1s: list[AccessUnit]
) -> None:
    # The source was lost for 3 s: capture times and pts jump, and the encoder goes on mid-GOP.
    jump = 3 * 90_000
    units = gop1s[:110] + [
        dataclasses.replace(au, pts=au.pts + jump, captured_at=au.captured_at + 3)
        for au in gop1s[110:200]
    ]
    hub, recorder = await start_recorder(tmp_path, index, segment_seconds=600)
    await feed(hub, units)
    await settle(recorder, len(units))
    await recorder.stop()
    first, second = index.all_segments()
    check_rows_against_files(tmp_path, [first, second])
    assert first.end_pts == units[109].pts + FRAME
    assert second.start_pts == units[125].pts and units[125].keyframe  # the next keyframe
    assert second.start_us - first.end_us == pytest.approx(3.6e6, abs=1000)


async def test_codec_change_goes_on_in_a_new_segment(tmp_path: Path, index: RecordingIndex) -> None:
    h264 = encode_units(3.0, "H264", gop=25)
    h265 = encode_units(3.0, "H265", gop=25, t0=h264[-1].captured_at + 1 / 25)
    h265 = [dataclasses.replace(au, pts=au.pts + h264[-1].pts + FRAME) for au in h265]
    hub, recorder = await start_recorder(tmp_path, index, segment_seconds=600)
    await feed(hub, h264)
    await settle(recorder, len(h264))
    hub.replace_packetizer(make_packetizer("H265"))  # ends the recorder's subscription
    await asyncio.sleep(0.05)
    await feed(hub, h265)
    await settle(recorder, len(h264) + len(h265))
    await recorder.stop()
    segments = index.all_segments()
    check_rows_against_files(tmp_path, segments)
    assert [s.codec for s in segments] == ["H264", "H265"]
    assert segments[1].start_pts == h265[0].pts


async def test_a_stalled_source_still_gets_its_last_fragment_written(
    tmp_path: Path, index: RecordingIndex, gop1s: list[AccessUnit]
) -> None:
    hub, recorder = await start_recorder(tmp_path, index, segment_seconds=600)
    await feed(hub, gop1s[:12])  # under half a second: no fragment is complete yet
    await settle(recorder, 12)
    assert index.all_segments() == []
    await asyncio.sleep(2.0)  # the next unit never comes
    (row,) = index.all_segments()
    assert row.state == "writing" and row.end_pts == gop1s[11].pts + FRAME
    assert probe(tmp_path / row.path).packets == 12
    # Units that were only late (their pts go on where the guess ended) stay in the segment.
    await feed(hub, gop1s[12:50])
    await settle(recorder, 50)
    await recorder.stop()
    (row,) = index.all_segments()
    check_rows_against_files(tmp_path, [row])
    assert row.duration_pts == 50 * FRAME and recorder.stats.gaps == 0
    assert probe(tmp_path / row.path).packets == 50


async def test_a_late_unit_after_a_skipped_frame_stays_in_the_segment(
    tmp_path: Path, index: RecordingIndex, gop1s: list[AccessUnit]
) -> None:
    """A loaded machine: the encoder skipped a frame, then the next units came late. The
    written end must not be guessed past the next unit, or it and the rest of its GOP are lost
    (CI's playback test saw 2.4 s go this way)."""
    hub, recorder = await start_recorder(tmp_path, index, segment_seconds=600)
    await feed(hub, [*gop1s[:11], gop1s[12]])  # frame 11 skipped: the last step is two frames
    await settle(recorder, 12)
    await asyncio.sleep(2.0)  # late: the writer flushes with a guessed last duration
    (row,) = index.all_segments()
    assert row.end_pts == gop1s[12].pts + FRAME
    await feed(hub, gop1s[13:50])  # one frame apart again
    await settle(recorder, 49)
    await recorder.stop()
    (row,) = index.all_segments()
    check_rows_against_files(tmp_path, [row])
    assert recorder.stats.gaps == 0 and row.duration_pts == 50 * FRAME
    assert probe(tmp_path / row.path).packets == 49


async def test_a_failing_card_is_retried_at_a_keyframe(
    tmp_path: Path, index: RecordingIndex, gop1s: list[AccessUnit]
) -> None:
    (tmp_path / "video").write_bytes(b"not a directory")  # every segment file fails
    hub, recorder = await start_recorder(tmp_path, index, segment_seconds=600)
    await feed(hub, gop1s[:50])
    await settle(recorder, 50)
    assert recorder.stats.write_errors >= 1 and index.all_segments() == []
    (tmp_path / "video").unlink()
    await asyncio.sleep(1.1)  # the first back-off
    await feed(hub, gop1s[50:150])
    await settle(recorder, 150)
    await recorder.stop()
    segments = index.all_segments()
    check_rows_against_files(tmp_path, segments)
    assert segments and segments[0].start_pts == gop1s[50].pts


async def test_stop_completes_the_open_segment(
    tmp_path: Path, index: RecordingIndex, gop1s: list[AccessUnit]
) -> None:
    hub, recorder = await start_recorder(tmp_path, index, segment_seconds=600)
    await feed(hub, gop1s[:80])
    await settle(recorder, 80)
    assert [s.state for s in index.all_segments()] == ["writing"]
    await recorder.stop()
    (row,) = index.all_segments()
    assert row.state == "complete" and row.end_pts == gop1s[79].pts + FRAME
    check_rows_against_files(tmp_path, [row])


def test_rotations_of_many_streams_are_spread() -> None:
    ids = [channel * 100 + n for channel in range(1, 17) for n in (1, 2)]  # 32 streams
    offsets = sorted(default_rotate_offset(i, 60) for i in ids)
    gaps = [b - a for a, b in itertools.pairwise([*offsets, offsets[0] + 60])]
    assert max(gaps) < 6  # no long quiet stretch ...
    per_second = [sum(1 for o in offsets if int(o) == s) for s in range(60)]
    assert max(per_second) <= 2  # ... and never a crowd in the same second
    assert default_rotate_offset(101, 60) != default_rotate_offset(102, 60)


def test_boundary_grid() -> None:
    s = 1_000_000
    # A first segment runs to the first grid point at least half a segment away.
    assert next_boundary_us(0, 60, 15) == 75 * s
    assert next_boundary_us(20 * s, 60, 15) == 75 * s
    assert next_boundary_us(46 * s, 60, 15) == 135 * s
    assert next_boundary_us(75 * s, 60, 15) == 135 * s


def test_settings_are_checked(tmp_path: Path, index: RecordingIndex) -> None:
    hub = StreamHub(101, make_packetizer("H264"))
    for bad in ({"segment_seconds": 9}, {"segment_seconds": 3601}, {"record_type": "x"}):
        with pytest.raises(ValueError):
            Recorder(101, hub, tmp_path, index, **bad)  # type: ignore[arg-type]
