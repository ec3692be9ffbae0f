"""Download: real segments from a real Recorder; spans across segment boundaries come out as
one fragmented MP4 that lasts the requested span (ffprobe, to a fraction of a frame), decodes
without a word from FFmpeg, shows the frame that was showing at the start first and the one
before the end last, and carries the recorded samples unchanged. Streaming: the first chunk is
the head, each further chunk whole fragments with continuous decode times. Spans without
footage, holes in the recording and a change of picture size."""

from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction
from pathlib import Path

import av
import pytest

from tests.recording import (
    FPS,
    FRAME,
    check_download,
    decode_errors,
    encode_units,
    fragments,
    probe,
    record_units,
)
from tests.recording import top_level_boxes as boxes
from tests.unit.test_record_footage import unit_times
from vigil.media.frames import AccessUnit
from vigil.record.download import NoFootage, download
from vigil.record.fmp4 import to_sample
from vigil.record.index import RecordingIndex

FRAME_S = 1 / FPS


@pytest.fixture(scope="module")
def units() -> list[AccessUnit]:
    return encode_units(34.0, gop=50)  # a keyframe every 2 s, segments of 10 s


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, units: list[AccessUnit]) -> Path:
    card = tmp_path_factory.mktemp("download")
    record_units(card, units)
    return card


@pytest.fixture(scope="module")
def index(root: Path) -> RecordingIndex:
    opened = RecordingIndex.open(root)
    yield opened  # type: ignore[misc]
    opened.close()


def save(chunks: list[bytes], path: Path) -> Path:
    path.write_bytes(b"".join(chunks))
    return path


def packets(path: Path) -> list[tuple[int, int, bytes]]:
    """(pts, duration, bytes) of each packet as FFmpeg demuxes the file (time base 1/90000)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base == Fraction(1, 90_000)
        return [
            (p.pts, p.duration, bytes(p))
            for p in container.demux(stream)
            if p.size  # the demuxer's final flush packet is empty
        ]


# From mid-GOP to mid-GOP, over one and over two segment boundaries, off the frame grid.
SPANS = [(3.3137, 12.5071), (1.0, 25.0), (8.02, 8.5), (0.0, 33.0), (19.99, 21.01), (5.01, 5.02)]


@pytest.mark.parametrize(("from_s", "to_s"), SPANS)
def test_a_span_lasts_what_was_asked_and_plays_cleanly(
    root: Path,
    index: RecordingIndex,
    units: list[AccessUnit],
    tmp_path: Path,
    from_s: float,
    to_s: float,
) -> None:
    segments = index.all_segments()
    t0 = segments[0].start_us
    start_us, end_us = t0 + round(from_s * 1e6), t0 + round(to_s * 1e6)
    path = save(list(download(root, index, 101, start_us, end_us)), tmp_path / "span.mp4")
    check_download(path, start_us, end_us, within_frames=0.05)
    # What plays from the start is the frame that was showing then, up to the one before the end.
    times = unit_times(segments, units)
    showing = max(n for n, at in enumerate(times) if at <= start_us)
    last = max(n for n, at in enumerate(times) if at < end_us)
    lead = max(n for n in range(showing + 1) if units[n].keyframe)
    demuxed = packets(path)
    assert [data for _, _, data in demuxed] == [
        to_sample("H264", au.data) for au in units[lead : last + 1]
    ]
    shown = [(pts, duration) for pts, duration, _ in demuxed if pts >= 0]
    assert demuxed[showing - lead][0] == 0  # the edit list puts the start at 0
    assert shown[-1][0] + shown[-1][1] == pytest.approx((end_us - start_us) * 0.09, abs=1)


def test_chunks_are_the_head_then_whole_fragments_on_one_timeline(
    root: Path, index: RecordingIndex, tmp_path: Path
) -> None:
    first = index.all_segments()[0]
    start_us = first.start_us + 4_100_000
    chunks = list(download(root, index, 101, start_us, start_us + 20_000_000))
    assert [kind for kind, _, _ in boxes(chunks[0])] == [b"ftyp", b"moov"]
    assert b"elst" in chunks[0]
    for chunk in chunks[1:]:
        assert [kind for kind, _, _ in boxes(chunk)] == [b"moof", b"mdat"]
    found = fragments(save(chunks, tmp_path / "chunks.mp4"))
    assert len(found) == len(chunks) - 1 >= 10  # at most a second each
    assert found[0].base_time == 0
    for before, after in itertools.pairwise(found):
        assert after.base_time == before.base_time + before.duration
        assert before.duration <= 90_000
    assert all(f.starts_with_keyframe for f in found[::2])  # GOPs of 2 s: every other one
    sequence = [int.from_bytes(chunk[20:24], "big") for chunk in chunks[1:]]  # mfhd
    assert sequence == list(range(1, len(chunks)))


def test_a_span_without_footage_is_refused(root: Path, index: RecordingIndex) -> None:
    last = index.all_segments()[-1]
    with pytest.raises(NoFootage):
        next(download(root, index, 101, last.end_us + 1, last.end_us + 10**7))
    with pytest.raises(LookupError):
        next(download(root, index, 102, last.start_us, last.end_us))


def test_a_span_beyond_the_footage_gives_the_footage_there_is(
    root: Path, index: RecordingIndex, tmp_path: Path
) -> None:
    segments = index.all_segments()
    start_us, end_us = segments[0].start_us - 60 * 10**6, segments[-1].end_us + 60 * 10**6
    path = save(list(download(root, index, 101, start_us, end_us)), tmp_path / "all.mp4")
    result = probe(path)
    assert result.ok and decode_errors(path) == ""
    footage = (segments[-1].end_us - segments[0].start_us) / 1e6
    assert abs(result.duration - footage) < 0.05 * FRAME_S
    assert b"elst" not in path.read_bytes()[:4096]  # nothing to skip: it starts on a keyframe


def test_a_hole_in_the_recording_is_closed_up(tmp_path: Path) -> None:
    source = encode_units(12.0, gop=25)
    jump = 3 * 90_000  # the source was lost for 3 s
    units = source[:110] + [
        dataclasses.replace(au, pts=au.pts + jump, captured_at=au.captured_at + 3)
        for au in source[110:]
    ]
    # 60 s segments: the only cut is the hole's (a 10 s rotation lands on the wall clock's grid
    # and would cut the second part too, now and then).
    record_units(tmp_path, units, segment_seconds=60)
    index = RecordingIndex.open(tmp_path)
    first, second = index.all_segments()
    hole = second.start_us - first.end_us  # 3 s and what was lost until the next keyframe
    start_us, end_us = first.start_us + 1_000_000, second.end_us - 1_000_000
    path = save(list(download(tmp_path, index, 101, start_us, end_us)), tmp_path / "hole.mp4")
    index.close()
    result = probe(path)
    assert result.ok and decode_errors(path) == ""
    assert abs(result.duration - (end_us - start_us - hole) / 1e6) < 0.05 * FRAME_S


def test_a_short_pause_inside_a_recording_keeps_the_span_length(tmp_path: Path) -> None:
    # Three frames the encoder did not deliver, while the writer waited long enough to write
    # the fragment before them with a guessed last duration: a pause in the file's timeline.
    source = encode_units(6.0, gop=25)
    pause = 3 * FRAME
    units = source[:60] + [
        dataclasses.replace(au, pts=au.pts + pause, captured_at=au.captured_at + 3 * FRAME_S)
        for au in source[60:]
    ]
    record_units(tmp_path, units, segment_seconds=60, stall=(60, 2.5))
    index = RecordingIndex.open(tmp_path)
    (segment,) = index.all_segments()
    start_us, end_us = segment.start_us + 1_000_000, segment.end_us - 1_000_000
    path = save(list(download(tmp_path, index, 101, start_us, end_us)), tmp_path / "pause.mp4")
    index.close()
    # The frame before the pause shows until the next one: the file lasts the whole span.
    check_download(path, start_us, end_us, within_frames=0.05)


def test_the_file_stops_where_the_picture_size_changes(tmp_path: Path) -> None:
    large = encode_units(4.0, gop=25)
    small = encode_units(4.0, gop=25, width=320, height=180, t0=large[-1].captured_at + 1 / FPS)
    small = [dataclasses.replace(au, pts=au.pts + large[-1].pts + FRAME) for au in small]
    record_units(tmp_path, large + small)
    index = RecordingIndex.open(tmp_path)
    first, second = index.all_segments()
    assert (first.width, second.width) == (640, 320)
    start_us = first.start_us + 500_000
    path = save(list(download(tmp_path, index, 101, start_us, second.end_us)), tmp_path / "c.mp4")
    index.close()
    result = probe(path)
    assert result.ok and decode_errors(path) == ""
    assert abs(result.duration - (first.end_us - start_us) / 1e6) < 0.05 * FRAME_S
    assert result.packets == len(large)


def test_h265_downloads_too(tmp_path: Path) -> None:
    record_units(tmp_path, encode_units(12.0, "H265", gop=50))
    index = RecordingIndex.open(tmp_path)
    first = index.all_segments()[0]
    start_us, end_us = first.start_us + 2_718_281, first.start_us + 9_314_159
    path = save(list(download(tmp_path, index, 101, start_us, end_us)), tmp_path / "h265.mp4")
    index.close()
    result = probe(path)
    assert result.ok and decode_errors(path) == ""
    assert abs(result.duration - (end_us - start_us) / 1e6) < 0.05 * FRAME_S
