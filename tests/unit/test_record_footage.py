"""Footage reader: real segments from a real Recorder fed by real encoder units; the reader
starts at the keyframe at or before the start, stops before the end, crosses segments without
losing or doubling a unit, gives back the encoder's bytes (parameter sets before keyframes),
and what it gives decodes cleanly in FFmpeg. Files that vanish or are still being written are
read as far as they hold whole fragments. Then the playback URI helpers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.recording import FRAME, encode_units, record_units
from vigil.media.frames import AccessUnit
from vigil.record.fmp4 import parameter_sets, to_sample
from vigil.record.footage import (
    RecordedUnit,
    parse_footage_times,
    parse_playback_uri,
    playback_uri,
    read_footage,
)
from vigil.record.index import RecordingIndex, Segment
from vigil.record.segment import ticks_to_us


@pytest.fixture(scope="module")
def units() -> list[AccessUnit]:
    return encode_units(34.0, gop=50)  # a keyframe every 2 s


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, units: list[AccessUnit]) -> Path:
    root = tmp_path_factory.mktemp("footage")
    record_units(root, units)
    return root


@pytest.fixture
def root(recorded: Path, tmp_path: Path) -> Path:
    """A copy of the recording each test may damage."""
    copy = tmp_path / "card"
    shutil.copytree(recorded, copy)
    return copy


@pytest.fixture
def index(root: Path) -> RecordingIndex:
    opened = RecordingIndex.open(root)
    yield opened  # type: ignore[misc]
    opened.close()


def unit_times(segments: list[Segment], units: list[AccessUnit]) -> list[int]:
    """UTC microseconds of each source unit, as the recording places it."""
    first = segments[0]
    return [first.start_us + ticks_to_us(au.pts - first.start_pts) for au in units]


def decode_errors(units: list[RecordedUnit], tmp_path: Path) -> tuple[str, int]:
    """(FFmpeg's complaints, frames decoded) for the units as one Annex B stream."""
    raw = tmp_path / "footage.h264"
    raw.write_bytes(b"".join(unit.au.data for unit in units))
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-f", "h264", "-i", str(raw), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    frames = subprocess.run(
        [
            "ffprobe", "-v", "error", "-f", "h264", "-count_frames", "-select_streams", "v:0",
            "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(raw),
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return result.stderr.strip(), int(frames.stdout.strip() or 0)


def test_a_span_across_segments_starts_on_the_keyframe_before_it_and_stops_before_its_end(
    root: Path, index: RecordingIndex, units: list[AccessUnit], tmp_path: Path
) -> None:
    segments = index.all_segments()
    assert len(segments) >= 3
    times = unit_times(segments, units)
    # From mid-GOP in the first segment to mid-GOP in the third, between frames.
    start_us = segments[0].end_us - 3_300_000 + 7_000
    end_us = segments[2].start_us + 1_500_000 + 11_000
    got = list(read_footage(root, index, 101, start_us, end_us))
    expected_first = max(n for n, au in enumerate(units) if au.keyframe and times[n] <= start_us)
    expected_end = min(n for n in range(len(units)) if times[n] >= end_us)
    assert [unit.au.pts for unit in got] == [au.pts for au in units[expected_first:expected_end]]
    assert got[0].au.keyframe and got[0].at_us <= start_us
    assert got[-1].at_us < end_us <= got[-1].at_us + ticks_to_us(got[-1].duration)
    assert {unit.segment_id for unit in got} == {s.id for s in segments[:3]}
    for unit, au in zip(got, units[expected_first:expected_end], strict=True):
        assert to_sample("H264", unit.au.data) == to_sample("H264", au.data)  # the same slices
        assert unit.au.keyframe == au.keyframe and unit.duration == FRAME
        if au.keyframe:
            assert parameter_sets("H264", unit.au.data) == parameter_sets("H264", au.data)
    errors, frames = decode_errors(got, tmp_path)
    assert errors == "" and frames == len(got)


def test_a_span_inside_one_gop_still_starts_on_its_keyframe(
    root: Path, index: RecordingIndex, units: list[AccessUnit]
) -> None:
    segments = index.all_segments()
    times = unit_times(segments, units)
    start_us, end_us = times[60] + 1000, times[62] + 1000  # keyframes at units 50 and 100
    got = list(read_footage(root, index, 101, start_us, end_us))
    assert [unit.au.pts for unit in got] == [au.pts for au in units[50:63]]


def test_a_span_shorter_than_a_frame_gives_the_frame_showing_then(
    root: Path, index: RecordingIndex, units: list[AccessUnit]
) -> None:
    times = unit_times(index.all_segments(), units)
    got = list(read_footage(root, index, 101, times[70] + 1000, times[70] + 2000))
    assert [unit.au.pts for unit in got] == [au.pts for au in units[50:71]]


def test_keyframes_only(root: Path, index: RecordingIndex, units: list[AccessUnit]) -> None:
    segments = index.all_segments()
    times = unit_times(segments, units)
    got = list(read_footage(root, index, 101, times[60], times[260], keyframes_only=True))
    assert [unit.au.pts for unit in got] == [units[n].pts for n in (50, 100, 150, 200, 250)]
    assert all(parameter_sets("H264", unit.au.data) for unit in got)


def test_no_footage_in_the_span_yields_nothing(root: Path, index: RecordingIndex) -> None:
    last = index.all_segments()[-1]
    assert list(read_footage(root, index, 101, last.end_us, last.end_us + 10**6)) == []
    assert list(read_footage(root, index, 102, last.start_us, last.end_us)) == []
    with pytest.raises(ValueError):
        next(read_footage(root, index, 101, last.end_us, last.start_us))


def test_a_vanished_file_is_skipped_and_the_next_starts_on_a_keyframe(
    root: Path, index: RecordingIndex, units: list[AccessUnit], tmp_path: Path
) -> None:
    first, second, third = index.all_segments()[:3]
    (root / second.path).unlink()  # overwritten between the index query and the read
    got = list(read_footage(root, index, 101, first.start_us, third.end_us))
    assert {unit.segment_id for unit in got} == {first.id, third.id}
    after_hole = next(unit for unit in got if unit.segment_id == third.id)
    assert after_hole.au.keyframe and after_hole.au.pts == third.start_pts
    errors, frames = decode_errors(got, tmp_path)
    assert errors == "" and frames == len(got)


def test_a_file_being_written_is_read_up_to_its_last_whole_fragment(
    root: Path, index: RecordingIndex, units: list[AccessUnit]
) -> None:
    last = index.all_segments()[-1]
    path = root / last.path
    data = path.read_bytes()
    # The writer is in the middle of appending a fragment: its moof is there, its mdat half.
    moofs = [n for n in range(len(data)) if data.startswith(b"moof", n)]
    cut = moofs[-1] + (len(data) - moofs[-1]) // 2
    path.write_bytes(data[:cut])
    got = list(read_footage(root, index, 101, last.start_us, last.end_us))
    complete = [au for au in units if last.start_pts <= au.pts]
    assert 0 < len(got) < len(complete)
    assert [unit.au.pts for unit in got] == [au.pts for au in complete[: len(got)]]


# -- playback URIs ------------------------------------------------------------------------------
T0 = 1_795_257_000_000_000  # 2026-11-21T10:30:00Z


def test_playback_uri_is_hikvisions_form() -> None:
    uri = playback_uri("192.0.2.7", 554, 101, T0 + 250_000, T0 + 600_000_001)
    assert uri == (
        "rtsp://192.0.2.7/Streaming/tracks/101/?starttime=20261121T103000Z&endtime=20261121T104001Z"
    )
    assert playback_uri("::1", 8554, 102, T0, T0 + 10**6).startswith("rtsp://[::1]:8554/")
    assert parse_playback_uri(uri) == (101, T0, T0 + 601_000_000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20261121T103000Z", T0),
        ("20261121T103000.250Z", T0 + 250_000),
        ("2026-11-21T10:30:00Z", T0),
        ("2026-11-21T12:30:00+02:00", T0),
        ("2026-11-21T10:30:00.5Z", T0 + 500_000),
    ],
)
def test_times_in_either_form(text: str, expected: int) -> None:
    assert parse_footage_times(text, "20261122T103000Z")[0] == expected


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("20261121T103000Z", "20261121T102959Z", "not after"),
        ("20261121T103000Z", "20261121T103000Z", "not after"),
        ("20261121T103000Z", "20270101T000000Z", "31 days"),
        ("19991231T235959Z", "20000101T000100Z", "before 2000"),
        ("2026-11-21T10:30:00", "20261121T104000Z", "no time zone"),
        ("yesterday", "20261121T104000Z", "not a time"),
        ("20261321T103000Z", "20261121T104000Z", "not a time"),
    ],
)
def test_bad_spans_are_refused(start: str, end: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_footage_times(start, end)


def test_without_an_end_the_span_is_open() -> None:
    start, end = parse_footage_times("20261121T103000Z", None)
    assert (start, end - start) == (T0, 31 * 86400 * 10**6)


def test_playback_uri_parsing_ignores_name_and_size_and_keeps_offsets() -> None:
    uri = (
        "rtsp://10.0.0.2/Streaming/tracks/201?starttime=2026-11-21T12:30:00+02:00"
        "&endtime=20261121T104000Z&name=ch01_0800000000012345&size=12345"
    )
    assert parse_playback_uri(uri) == (201, T0, T0 + 600_000_000)
    for bad in (
        "http://h/Streaming/tracks/101/?starttime=20261121T103000Z",
        "rtsp://h/Streaming/channels/101/?starttime=20261121T103000Z",
        "rtsp://h/Streaming/tracks/101/?endtime=20261121T103000Z",
    ):
        with pytest.raises(ValueError):
            parse_playback_uri(bad)


def test_h265_footage_comes_back_with_its_vps_sps_pps(tmp_path: Path) -> None:
    source = encode_units(6.0, "H265", gop=25)
    record_units(tmp_path, source, segment_seconds=60)  # one segment, wherever the wall clock is
    index = RecordingIndex.open(tmp_path)
    (segment,) = index.all_segments()
    got = list(read_footage(tmp_path, index, 101, segment.start_us, segment.end_us))
    index.close()
    assert [unit.au.pts for unit in got] == [au.pts for au in source]
    for unit, au in zip(got, source, strict=True):
        assert to_sample("H265", unit.au.data) == to_sample("H265", au.data)
        if au.keyframe:
            assert parameter_sets("H265", unit.au.data) == parameter_sets("H265", au.data)
