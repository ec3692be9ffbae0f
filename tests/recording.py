"""Helpers for the recording tests: real encoded units and their recording, an independent MP4
box walk, ffprobe.

The box walk here is deliberately separate from `vigil.record.fmp4.read_layout`: a test that
checks the writer with the writer's own parser would pass on a shared misunderstanding.
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from vigil.config.model import StreamSettings
from vigil.media.encoder import VideoEncoder
from vigil.media.frames import AccessUnit
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer
from vigil.media.source import CapturedFrame
from vigil.record.index import RecordingIndex
from vigil.record.recorder import Recorder

FPS = 25
FRAME = 90_000 // FPS


def encode_units(
    seconds: float,
    codec: str = "H264",
    *,
    gop: int = 50,
    width: int = 640,
    height: int = 360,
    t0: float | None = None,
    stream_id: int = 101,
) -> list[AccessUnit]:
    """Access units of `seconds` of FFmpeg's moving pattern from the real encoder, with capture
    times on a 25 fps grid from `t0` (default: now on the monotonic clock)."""
    settings = StreamSettings(
        id=stream_id, codec=codec, width=width, height=height, fps=FPS, gop=gop
    )
    encoder = VideoEncoder(stream_id, settings)
    start = time.monotonic() if t0 is None else t0
    count = round(seconds * FPS)
    units: list[AccessUnit] = []
    with av.open(f"testsrc2=size={width}x{height}:rate={FPS}", format="lavfi") as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == count:
                break
            units += encoder.encode(CapturedFrame(frame, start + number / FPS))
    return units + encoder.flush()


@pytest.fixture
def index(tmp_path: Path) -> Iterator[RecordingIndex]:
    """A new recording index in the test's temporary directory, closed after the test."""
    opened = RecordingIndex.open(tmp_path)
    yield opened
    opened.close()


def record_units(
    root: Path,
    units: list[AccessUnit],
    segment_seconds: int = 10,
    stall: tuple[int, float] | None = None,
) -> None:
    """Record `units` under `root` with a real Recorder, as fast as the writer takes them;
    `stall` = (n, seconds): nothing comes for that long after the first n units."""

    async def run() -> None:
        index = RecordingIndex.open(root)
        hub = StreamHub(units[0].stream_id, make_packetizer(units[0].codec))
        recorder = Recorder(
            units[0].stream_id, hub, root, index, segment_seconds=segment_seconds,
            rotate_offset=0.0, queue_units=len(units) + 10,
        )  # fmt: skip
        await recorder.start()
        for n, au in enumerate(units):
            if stall is not None and n == stall[0]:
                await asyncio.sleep(stall[1])
            hub.publish(au)
            await asyncio.sleep(0)
        deadline = time.monotonic() + 30
        while recorder.stats.units < len(units):
            assert time.monotonic() < deadline, "the recorder did not take every unit"
            await asyncio.sleep(0.01)
        await recorder.stop()
        index.close()

    asyncio.run(run())


@dataclass(frozen=True)
class Fragment:
    offset: int
    base_time: int
    durations: tuple[int, ...]
    flags: tuple[int, ...]

    @property
    def duration(self) -> int:
        return sum(self.durations)

    @property
    def starts_with_keyframe(self) -> bool:
        return not self.flags[0] & 0x00010000  # sample_is_non_sync_sample clear


def top_level_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of each top-level box; stops at one that runs past the end."""
    boxes = []
    position = 0
    while position + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, position)
        if size < 8 or position + size > len(data):
            break
        boxes.append((kind, position, size))
        position += size
    return boxes


def _child(data: bytes, start: int, end: int, kind: bytes) -> int:
    position = start
    while position < end:
        size, name = struct.unpack_from(">I4s", data, position)
        if name == kind:
            return position
        position += size
    raise AssertionError(f"no {kind!r} box")


def fragments(path: Path) -> list[Fragment]:
    data = path.read_bytes()
    found = []
    for kind, offset, size in top_level_boxes(data):
        if kind != b"moof":
            continue
        traf = _child(data, offset + 8, offset + size, b"traf")
        traf_end = traf + struct.unpack_from(">I", data, traf)[0]
        tfdt = _child(data, traf + 8, traf_end, b"tfdt")
        version = data[tfdt + 8]
        base = struct.unpack_from(">Q" if version else ">I", data, tfdt + 12)[0]
        trun = _child(data, traf + 8, traf_end, b"trun")
        flags = struct.unpack_from(">I", data, trun + 8)[0] & 0xFFFFFF
        assert flags == 0x000701, f"trun flags {flags:#x}"
        count = struct.unpack_from(">I", data, trun + 12)[0]
        table = struct.unpack_from(f">{3 * count}I", data, trun + 20)
        found.append(Fragment(offset, base, table[0::3], table[2::3]))
    return found


@dataclass(frozen=True)
class Probe:
    ok: bool
    errors: str
    duration: float
    packets: int
    first_keyframe: bool


def probe(path: Path) -> Probe:
    """ffprobe reads every packet: demuxing errors show on stderr with `-v error`."""
    result = subprocess.run(
        [
            "ffprobe", "-v", "error", "-count_packets", "-of", "json",
            "-show_entries", "format=duration:stream=nb_read_packets",
            str(path),
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    try:
        info = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        info = {}
    duration = float(info.get("format", {}).get("duration", "nan"))
    streams = info.get("streams", [{}])
    packets = int(streams[0].get("nb_read_packets", 0)) if streams else 0
    first = subprocess.run(
        [
            "ffprobe", "-v", "error", "-read_intervals", "%+#1", "-of", "csv=p=0",
            "-show_entries", "packet=flags", str(path),
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    ok = result.returncode == 0 and not result.stderr.strip()
    return Probe(ok, result.stderr.strip(), duration, packets, first.stdout.startswith("K"))


def decode_errors(path: Path) -> str:
    """What FFmpeg says while decoding every frame (empty when the file is clean)."""
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return result.stderr.strip() or ("" if result.returncode == 0 else f"rc {result.returncode}")


def check_download(path: Path, start_us: int, end_us: int, *, within_frames: float) -> None:
    """A downloaded span: ffprobe reads it cleanly and it starts on a keyframe, it lasts the span
    to within `within_frames` of a frame (at 25 fps), and FFmpeg decodes it without a word."""
    result = probe(path)
    assert result.ok, result.errors
    assert result.first_keyframe
    error_frames = abs(result.duration - (end_us - start_us) / 1e6) / (1 / FPS)
    assert error_frames < within_frames, f"{result.duration} s for {(end_us - start_us) / 1e6} s"
    assert decode_errors(path) == ""
