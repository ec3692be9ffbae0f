"""Segment writer: real libx264/libx265 units into fMP4 that FFmpeg plays, fragments of at most
one second starting on keyframes where they can, and torn files cut back to whole fragments.

Units come from the real encoder fed with FFmpeg's test pattern (unpaced); the checks use
ffprobe/ffmpeg and a box walk independent of the writer's own parser.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.recording import FRAME, decode_errors, encode_units, fragments, probe, top_level_boxes
from vigil.record.fmp4 import FormatError, read_layout
from vigil.record.segment import FRAGMENT_MAX, SegmentWriter, ticks_to_us

CODECS = ("H264", "H265")
ONE_FRAME_S = FRAME / 90_000


@pytest.fixture(scope="module", params=CODECS)
def six_seconds(request: pytest.FixtureRequest) -> list:
    return encode_units(6.0, request.param)


def write_segment(path: Path, units: list, record_type: str = "continuous") -> SegmentWriter:
    writer = SegmentWriter(path, units[0], start_us=1_700_000_000_000_000, record_type=record_type)
    for unit in units[1:]:
        writer.add(unit)
    writer.close()
    return writer


def test_segment_plays_with_the_right_duration(tmp_path: Path, six_seconds: list) -> None:
    path = tmp_path / "a" / "b" / "seg.mp4"  # directories are made on the first fragment
    writer = write_segment(path, six_seconds)
    result = probe(path)
    assert result.ok, result.errors
    expected = (six_seconds[-1].pts - six_seconds[0].pts) / 90_000 + ONE_FRAME_S
    assert abs(expected - 6.0) < 1e-9
    assert abs(result.duration - expected) <= ONE_FRAME_S
    assert result.packets == len(six_seconds)
    assert result.first_keyframe
    assert decode_errors(path) == ""
    assert writer.end_pts - writer.info.start_pts == 6 * 90_000
    assert path.stat().st_size == writer.size


def test_fragments_are_at_most_one_second_and_start_on_keyframes(
    tmp_path: Path, six_seconds: list
) -> None:
    path = tmp_path / "seg.mp4"
    write_segment(path, six_seconds)
    found = fragments(path)
    # GOP 50 at 25 fps: a keyframe every 2 s, so fragments of 1 s, every other one on a key.
    assert len(found) == 6
    assert all(f.duration <= FRAGMENT_MAX for f in found)
    assert [f.base_time for f in found] == [n * 90_000 for n in range(6)]
    assert [f.starts_with_keyframe for f in found] == [True, False] * 3
    # Each fragment follows the previous one with no hole and no overlap.
    for before, after in itertools.pairwise(found):
        assert before.base_time + before.duration == after.base_time


def test_short_gops_give_one_fragment_per_gop(tmp_path: Path) -> None:
    units = encode_units(4.0, gop=15)  # a keyframe every 0.6 s
    path = tmp_path / "seg.mp4"
    write_segment(path, units)
    found = fragments(path)
    assert all(f.starts_with_keyframe for f in found)
    assert all(f.duration == 15 * FRAME for f in found[:-1])
    assert probe(path).ok


def test_late_units_never_stretch_a_fragment_past_one_second(tmp_path: Path) -> None:
    units = encode_units(4.0)
    # The source stalled: 12 frames (0.48 s) never came, late in a fragment.
    kept = units[:20] + units[32:]
    path = tmp_path / "seg.mp4"
    writer = write_segment(path, kept)
    found = fragments(path)
    assert all(f.duration <= FRAGMENT_MAX for f in found)
    result = probe(path)
    assert result.ok, result.errors
    assert result.packets == len(kept)
    assert abs(result.duration - (writer.end_pts - writer.info.start_pts) / 90_000) <= ONE_FRAME_S


def test_decoder_configuration_matches_ffmpeg(tmp_path: Path, six_seconds: list) -> None:
    """FFmpeg's own muxer, remuxing our file, writes the very same avcC/hvcC."""
    path = tmp_path / "seg.mp4"
    write_segment(path, six_seconds)
    remuxed = tmp_path / "ffmpeg.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-c", "copy", str(remuxed)],
        check=True, timeout=30,
    )  # fmt: skip
    kind = b"avcC" if six_seconds[0].codec == "H264" else b"hvcC"

    def record(data: bytes) -> bytes:
        at = data.index(kind)
        return data[at + 4 : at - 4 + int.from_bytes(data[at - 4 : at], "big")]

    assert record(path.read_bytes()) == record(remuxed.read_bytes())


def test_file_appears_with_its_first_fragment_and_reports_follow_the_data(tmp_path: Path) -> None:
    units = encode_units(3.0)
    path = tmp_path / "seg.mp4"
    writer = SegmentWriter(path, units[0], start_us=5_000_000, record_type="motion")
    reports = []
    for unit in units[1:]:
        assert path.exists() == bool(reports)  # no empty file before the first fragment
        report = writer.add(unit)
        if report is not None:
            # What the report says is on disk already (the index may be told).
            assert path.stat().st_size == report.size
            reports.append(report)
    reports.append(writer.close())
    assert [r.new_file for r in reports] == [True] + [False] * (len(reports) - 1)
    assert [r.fragments for r in reports] == list(range(1, len(reports) + 1))
    assert reports[-1].end_pts == units[-1].pts + FRAME
    assert reports[-1].end_us == 5_000_000 + ticks_to_us(3 * 90_000)
    with path.open("rb") as f:
        layout = read_layout(f)
    assert layout.info == writer.info
    assert layout.info is not None and layout.info.record_type == "motion"
    assert not layout.torn and layout.duration == 3 * 90_000


def test_segments_start_on_a_keyframe_with_parameter_sets(tmp_path: Path) -> None:
    units = encode_units(1.0)
    with pytest.raises(FormatError):
        SegmentWriter(tmp_path / "x.mp4", units[1], start_us=0, record_type="continuous")
    stripped = units[0].__class__(**{**_fields(units[0]), "data": units[0].data[-200:]})
    with pytest.raises(FormatError):
        SegmentWriter(tmp_path / "x.mp4", stripped, start_us=0, record_type="continuous")
    writer = SegmentWriter(tmp_path / "x.mp4", units[0], start_us=0, record_type="continuous")
    with pytest.raises(ValueError):
        writer.add(units[0])  # the same pts again
    assert not (tmp_path / "x.mp4").exists()


def _fields(unit: object) -> dict:
    return {name: getattr(unit, name) for name in unit.__dataclass_fields__}  # type: ignore[attr-defined]


def _cut_points(path: Path) -> dict[str, int]:
    """Offsets to cut a file at, each leaving a different kind of torn tail."""
    data = path.read_bytes()
    boxes = top_level_boxes(data)
    last_moof = max(offset for kind, offset, _ in boxes if kind == b"moof")
    last_mdat = next(
        (offset, size) for kind, offset, size in boxes if kind == b"mdat" and offset > last_moof
    )
    return {
        "mid mdat": last_mdat[0] + last_mdat[1] // 2,
        "mdat header only": last_mdat[0] + 8,
        "moof without mdat": last_mdat[0],
        "mid moof": last_moof + 20,
        "short box header": last_moof + 5,
    }


@pytest.mark.parametrize(
    "cut", ["mid mdat", "mdat header only", "moof without mdat", "mid moof", "short box header"]
)
def test_torn_file_truncated_to_its_complete_fragments_plays(
    tmp_path: Path, six_seconds: list, cut: str
) -> None:
    whole = tmp_path / "whole.mp4"
    write_segment(whole, six_seconds)
    complete = fragments(whole)[:-1]  # everything before the torn last fragment
    torn = tmp_path / "torn.mp4"
    shutil.copy(whole, torn)
    with torn.open("r+b") as f:
        f.truncate(_cut_points(whole)[cut])
    with torn.open("rb") as f:
        layout = read_layout(f)
    assert layout.torn and layout.problem
    assert len(layout.fragments) == len(complete)
    with torn.open("r+b") as f:
        f.truncate(layout.valid_end)
    result = probe(torn)
    assert result.ok, result.errors
    expected = (complete[-1].base_time + complete[-1].duration) / 90_000
    assert abs(result.duration - expected) <= ONE_FRAME_S
    assert result.packets == sum(len(f.durations) for f in complete)
    assert decode_errors(torn) == ""


def test_zero_filled_tail_counts_as_torn(tmp_path: Path) -> None:
    """A last fragment whose size is durable but whose bytes never were (zeros) is dropped."""
    units = encode_units(3.0)
    path = tmp_path / "seg.mp4"
    write_segment(path, units)
    last = fragments(path)[-1]
    data = bytearray(path.read_bytes())
    moof_size = int.from_bytes(data[last.offset : last.offset + 4], "big")
    payload_at = last.offset + moof_size + 8
    data[payload_at:] = bytes(len(data) - payload_at)
    path.write_bytes(bytes(data))
    with path.open("rb") as f:
        layout = read_layout(f)
    assert layout.torn
    assert len(layout.fragments) == len(fragments(path)) - 1


def test_writing_a_fragment_costs_little(tmp_path: Path) -> None:
    """The per-unit work is a few `find`s and one struct pack: far below a frame interval."""
    units = encode_units(4.0, width=1280, height=720)
    path = tmp_path / "seg.mp4"
    began = time.perf_counter()
    write_segment(path, units)
    per_unit_ms = (time.perf_counter() - began) * 1000 / len(units)
    assert per_unit_ms < 5, per_unit_ms  # fsync included; a frame is 40 ms


@pytest.fixture
def tiny_fs(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real file system that runs out of space quickly (tmpfs of 256 KB; needs root)."""
    point = tmp_path / "tiny"
    point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_full_card_leaves_only_whole_fragments(tiny_fs: Path) -> None:
    """ENOSPC part way through a fragment: `abandon` cuts the file back to what was fsynced,
    and a file whose first fragment never made it is removed (it has no index row)."""
    units = encode_units(8.0, gop=25)
    path = tiny_fs / "seg.mp4"
    writer = SegmentWriter(path, units[0], start_us=1_700_000_000_000_000, record_type="continuous")
    with pytest.raises(OSError, match="No space"):
        for unit in units[1:]:
            writer.add(unit)
    assert writer.fragments >= 1
    writer.abandon()
    assert path.stat().st_size == writer.size
    with path.open("rb") as f:
        layout = read_layout(f)
    assert not layout.torn and len(layout.fragments) == writer.fragments
    assert probe(path).ok

    path.unlink()
    (tiny_fs / "ballast").write_bytes(b"\0" * (250 * 1024))  # no room for even one fragment
    second = tiny_fs / "second.mp4"
    writer = SegmentWriter(second, units[0], start_us=1_700_000_000_000_000, record_type="motion")
    with pytest.raises(OSError, match="No space"):
        for unit in units[1:]:
            writer.add(unit)
    writer.abandon()
    assert not second.exists()
