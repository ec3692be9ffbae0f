"""Frame sources: the simulated sensor's pacing, and the V4L2 sensor's use of linuxpy.

The simulated sensor is tested for real (FFmpeg's lavfi pattern, real time).

This host has no V4L2 capture device (no /dev/video*; the QEMU rig with `vivid` comes later),
so `FakeV4L2Device` below stands in for the kernel device: a small fake of the part of
linuxpy's `Device` API that `V4L2Sensor` calls. It is not a mock of our code: it answers with
linuxpy's own types (`ImageFormat`, `FrameSize`, `FrameType`, `Format`, `raw.v4l2_buffer`),
its buffers are real mmaps (of a memfd, at the offsets QUERYBUF reports, mapped by linuxpy's
`mmap_from_buffer`), and the pictures in them are real NV12/YUYV/MJPEG bytes made by FFmpeg.
One test opens a missing device node through the real linuxpy `Device`; if `/dev/video0`
exists (vivid loaded), one more captures from it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import mmap
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from linuxpy.video import raw
from linuxpy.video.device import (
    BufferFlag,
    BufferType,
    Format,
    FrameIntervalType,
    FrameSize,
    FrameSizeType,
    FrameType,
    ImageFormat,
    ImageFormatFlag,
    Memory,
    PixelFormat,
)

from vigil.board.description import BoardSensor
from vigil.media.source import CapturedFrame, SimSensor, SourceLost, make_source
from vigil.media.v4l2 import V4L2Sensor, closest_fps, closest_size

# -- the simulated sensor -----------------------------------------------------------------------


def test_sim_sensor_delivers_frames_at_size_and_roughly_in_real_time() -> None:
    sensor = SimSensor(BoardSensor())
    sensor.open(320, 240, 25)
    try:
        assert sensor.size == (320, 240) and sensor.fps == 25
        begun = time.monotonic()
        frames = [sensor.read(timeout=2.0) for _ in range(26)]
        elapsed = time.monotonic() - begun
    finally:
        sensor.close()
    assert {(f.frame.width, f.frame.height) for f in frames} == {(320, 240)}
    stamps = [f.captured_at for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    # 25 intervals of 40 ms: paced, not as fast as FFmpeg can make them (loose on a busy host).
    assert 0.8 < elapsed < 3.0
    assert stamps[-1] - stamps[0] == pytest.approx(1.0, abs=0.2)
    assert all(f.captured_at <= time.monotonic() for f in frames)


def test_sim_sensor_reader_that_falls_behind_gets_the_newest_frame_and_a_skip_count() -> None:
    sensor = SimSensor(BoardSensor())
    sensor.open(160, 120, 25)
    try:
        first = sensor.read(timeout=2.0)
        time.sleep(0.3)  # about 7 frame intervals with nobody reading
        late = sensor.read(timeout=2.0)
        after = sensor.read(timeout=2.0)
    finally:
        sensor.close()
    assert late.skipped >= 5
    assert time.monotonic() - late.captured_at < 0.3  # fresh, not a backlog
    assert after.skipped == 0
    assert after.captured_at - late.captured_at == pytest.approx(0.04, abs=0.001)
    assert first.skipped == 0


def test_sim_sensor_is_capped_by_the_board_sensor_and_make_source_picks_it() -> None:
    board = BoardSensor(max_width=640, max_height=360, max_fps=10)
    sensor = make_source(board)
    assert isinstance(sensor, SimSensor)
    sensor.open(1920, 1080, 25)
    try:
        assert sensor.size == (640, 360) and sensor.fps == 10
        frame = sensor.read(timeout=2.0).frame
        assert (frame.width, frame.height) == (640, 360)
    finally:
        sensor.close()
    assert isinstance(make_source(BoardSensor(driver="v4l2")), V4L2Sensor)


def test_a_closed_sim_sensor_reports_lost() -> None:
    with pytest.raises(SourceLost):
        SimSensor().read(timeout=0.1)


# -- the kernel device stand-in ---------------------------------------------------------------


@dataclass
class Delivery:
    """What the fake driver puts in the next buffer."""

    data: bytes
    timestamp: float  # seconds on the buffer's clock
    flags: int = BufferFlag.TIMESTAMP_MONOTONIC
    sequence: int | None = None


@dataclass
class FakeV4L2Device:
    """Stands in for a V4L2 capture device (see the module docstring for why and how)."""

    formats: dict[PixelFormat, list[tuple[int, int]]]
    rates: list[int] = field(default_factory=lambda: [30, 15])
    stride_padding: int = 0  # bytes per line beyond the picture, as some drivers align rows
    stepwise: bool = False
    fps_settable: bool = True
    deliveries: deque[Delivery | OSError] = field(default_factory=deque)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    opened: bool = False
    streaming: bool = False
    _format: Format | None = None
    _fps: Fraction = Fraction(30)
    _memfd: int = -1
    _buffer_size: int = 0
    _queued: deque[int] = field(default_factory=deque)
    _sequence: int = 0

    # Device: opening
    def open(self) -> None:
        self.opened = True
        self._memfd = os.memfd_create("fake-v4l2")

    def close(self) -> None:
        self.calls.append(("close",))
        self.opened = False
        os.close(self._memfd)

    def fileno(self) -> int:
        return self._memfd

    def __post_init__(self) -> None:
        self.info = FakeInfo(self)

    # InfoEx: what the device offers
    def format_frame_sizes(self, pixel_format: PixelFormat) -> list[FrameSize]:
        sizes = self.formats[pixel_format]
        if self.stepwise:
            step = raw.v4l2_frmsize_stepwise(
                min_width=sizes[0][0], max_width=sizes[-1][0], step_width=16,
                min_height=sizes[0][1], max_height=sizes[-1][1], step_height=8,
            )  # fmt: skip
            return [FrameSize(0, pixel_format, FrameSizeType.STEPWISE, step)]
        return [
            FrameSize(i, pixel_format, FrameSizeType.DISCRETE, raw.v4l2_frmsize_discrete(w, h))
            for i, (w, h) in enumerate(sizes)
        ]

    def fps_intervals(self, pixel_format: PixelFormat, width: int, height: int) -> list:
        return [
            FrameType(FrameIntervalType.DISCRETE, pixel_format, width, height,
                      Fraction(rate), Fraction(rate), Fraction(rate))
            for rate in self.rates
        ]  # fmt: skip

    # Device: format and rate
    def set_format(self, buffer_type: BufferType, width: int, height: int, pf: Any) -> None:
        self.calls.append(("set_format", width, height, PixelFormat(pf)))
        pf = PixelFormat(pf)
        line = {PixelFormat.NV12: width, PixelFormat.YUYV: width * 2}.get(pf, 0)
        line = line + self.stride_padding if line else 0
        rows = height * 3 // 2 if pf == PixelFormat.NV12 else height
        size = line * rows if line else width * height * 2
        self._format = Format(width, height, pf, size, line)

    def get_format(self, buffer_type: BufferType) -> Format:
        assert self._format is not None
        return self._format

    def set_fps(self, buffer_type: BufferType, fps: Any) -> None:
        self.calls.append(("set_fps", Fraction(fps)))
        if not self.fps_settable:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")
        self._fps = Fraction(fps)

    def get_fps(self, buffer_type: BufferType) -> Fraction:
        return self._fps

    # Device: mmap streaming
    def request_buffers(self, buffer_type: BufferType, memory: Memory, count: int) -> Any:
        assert memory == Memory.MMAP and self._format is not None
        self._buffer_size = -(-self._format.size // mmap.PAGESIZE) * mmap.PAGESIZE
        os.ftruncate(self._memfd, self._buffer_size * count)
        request = raw.v4l2_requestbuffers()
        request.count = count
        self.calls.append(("request_buffers", count))
        return request

    def query_buffer(self, buffer_type: BufferType, memory: Memory, index: int) -> Any:
        buffer = raw.v4l2_buffer()
        buffer.index = index
        buffer.length = self._buffer_size
        buffer.m.offset = index * self._buffer_size
        return buffer

    def enqueue_buffer(
        self, buffer_type: BufferType, memory: Memory, size: int, index: int
    ) -> None:
        assert index not in self._queued, "a buffer queued twice"
        self._queued.append(index)

    def stream_on(self, buffer_type: BufferType) -> None:
        self.streaming = True

    def stream_off(self, buffer_type: BufferType) -> None:
        self.calls.append(("stream_off",))
        self.streaming = False
        self._queued.clear()  # STREAMOFF takes every buffer back from the driver

    def free_buffers(self, buffer_type: BufferType, memory: Memory) -> None:
        self.calls.append(("free_buffers",))

    def dequeue_buffer(self, buffer_type: BufferType, memory: Memory) -> Any:
        if not self.streaming:
            raise OSError(errno.EINVAL, "Invalid argument")
        if self.deliveries and isinstance(self.deliveries[0], OSError):
            raise self.deliveries[0]
        if not self.deliveries or not self._queued:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        delivery = self.deliveries.popleft()
        assert isinstance(delivery, Delivery)
        index = self._queued.popleft()
        os.pwrite(self._memfd, delivery.data, index * self._buffer_size)
        buffer = raw.v4l2_buffer()
        buffer.index = index
        buffer.bytesused = len(delivery.data)
        buffer.flags = delivery.flags
        buffer.timestamp.secs = int(delivery.timestamp)
        buffer.timestamp.usecs = round((delivery.timestamp % 1) * 1_000_000)
        self._sequence = delivery.sequence if delivery.sequence is not None else self._sequence
        buffer.sequence = self._sequence
        self._sequence += 1
        return buffer

    @property
    def queued(self) -> int:
        return len(self._queued)


class FakeInfo:
    """linuxpy's `InfoEx` (`device.info`): the formats, sizes and rates the device offers."""

    def __init__(self, device: FakeV4L2Device) -> None:
        self._device = device
        self.format_frame_sizes = device.format_frame_sizes
        self.fps_intervals = device.fps_intervals

    def buffer_formats(self, buffer_type: BufferType) -> list[ImageFormat]:
        # Only capture formats: asking for all of them (`info.formats`) breaks on a device that
        # also offers an overlay, as vivid does (linuxpy leaves the pixel format unbound).
        assert buffer_type == BufferType.VIDEO_CAPTURE
        return [
            ImageFormat(BufferType.VIDEO_CAPTURE, pf.name, ImageFormatFlag(0), pf)
            for pf in self._device.formats
        ]


def sensor_with(device: FakeV4L2Device, **board: Any) -> V4L2Sensor:
    def factory(path: str) -> Any:
        assert path == "/dev/video0"
        return device

    return V4L2Sensor(BoardSensor(driver="v4l2", **board), device_factory=factory)


# -- real pictures for the fake driver to deliver ----------------------------------------------

PICTURE = (320, 240)


@pytest.fixture(scope="module")
def picture() -> av.VideoFrame:
    with av.open(f"testsrc2=size={PICTURE[0]}x{PICTURE[1]}:rate=25", format="lavfi") as c:
        return next(c.decode(video=0))


def nv12_bytes(frame: av.VideoFrame, padding: int = 0) -> bytes:
    planes = frame.reformat(format="nv12").to_ndarray()  # (h * 3/2, w)
    return np.pad(planes, ((0, 0), (0, padding))).tobytes()


def yuyv_bytes(frame: av.VideoFrame, padding: int = 0) -> bytes:
    packed = frame.reformat(format="yuyv422").to_ndarray().reshape(frame.height, -1)
    return np.pad(packed, ((0, 0), (0, padding))).tobytes()


def mjpeg_bytes(frame: av.VideoFrame) -> bytes:
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    picture = frame.reformat(format="yuvj420p")
    picture.pts = 0
    return bytes((encoder.encode(picture) + encoder.encode(None))[0])


@contextlib.contextmanager
def opened(device: FakeV4L2Device, size: tuple[int, int] = PICTURE, fps: int = 25, **board: Any
           ) -> Iterator[V4L2Sensor]:  # fmt: skip
    sensor = sensor_with(device, **board)
    sensor.open(*size, fps)
    try:
        yield sensor
    finally:
        sensor.close()


ALL = {PixelFormat.YUYV: [PICTURE], PixelFormat.MJPEG: [PICTURE], PixelFormat.NV12: [PICTURE]}


# -- negotiation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "board_order", "chosen"),
    [
        (ALL, ["NV12", "YUYV", "MJPEG"], PixelFormat.NV12),
        ({k: v for k, v in ALL.items() if k != PixelFormat.NV12}, ["NV12", "YUYV", "MJPEG"],
         PixelFormat.YUYV),
        ({PixelFormat.MJPEG: [PICTURE]}, ["NV12", "YUYV", "MJPEG"], PixelFormat.MJPEG),
        (ALL, ["MJPEG", "NV12"], PixelFormat.MJPEG),
    ],
)  # fmt: skip
def test_format_is_the_first_of_the_boards_list_the_device_offers(
    offered: dict, board_order: list[str], chosen: PixelFormat
) -> None:
    device = FakeV4L2Device(formats=offered)
    with opened(device, formats=board_order) as sensor:
        assert sensor.negotiated is not None
        assert sensor.negotiated.pixel_format == chosen
    assert ("set_format", *PICTURE, chosen) in device.calls


def test_a_device_without_any_wanted_format_is_refused_and_released() -> None:
    device = FakeV4L2Device(formats={PixelFormat.MJPEG: [PICTURE]})
    sensor = sensor_with(device, formats=["NV12", "YUYV"])
    with pytest.raises(SourceLost, match="offers none"):
        sensor.open(*PICTURE, 25)
    assert not device.opened


SIZES = [(640, 480), (1280, 720), (320, 240)]


@pytest.mark.parametrize(
    ("asked", "got"),
    [((1280, 720), (1280, 720)), ((800, 600), (1280, 720)), ((1920, 1080), (1280, 720)),
     ((160, 120), (320, 240)), ((640, 360), (640, 480))],
)  # fmt: skip
def test_size_is_the_smallest_offered_that_covers_the_request_else_the_largest(
    asked: tuple[int, int], got: tuple[int, int]
) -> None:
    device = FakeV4L2Device(formats={PixelFormat.NV12: SIZES})
    with opened(device, size=asked) as sensor:
        assert sensor.size == got
    assert closest_size(SIZES, *asked) == got


def test_stepwise_sizes_give_the_request_rounded_onto_the_grid() -> None:
    device = FakeV4L2Device(formats={PixelFormat.NV12: [(160, 120), (1920, 1080)]}, stepwise=True)
    with opened(device, size=(1000, 562)) as sensor:
        assert sensor.size == (1008, 568)
    with opened(device, size=(1920, 1080), max_width=3840, max_height=2160) as sensor:
        assert sensor.size == (1920, 1080)


@pytest.mark.parametrize(("asked", "got"), [(25, 30), (15, 15), (10, 15), (60, 30)])
def test_rate_is_the_lowest_offered_at_or_above_the_request_else_the_highest(
    asked: int, got: int
) -> None:
    device = FakeV4L2Device(formats={PixelFormat.NV12: [PICTURE]}, rates=[30, 15])
    with opened(device, fps=asked, max_fps=120) as sensor:
        assert sensor.fps == got
    assert ("set_fps", Fraction(got)) in device.calls
    assert closest_fps([Fraction(30), Fraction(15)], asked) == got


def test_a_device_that_cannot_set_the_rate_still_captures() -> None:
    device = FakeV4L2Device(formats={PixelFormat.NV12: [PICTURE]}, fps_settable=False)
    with opened(device) as sensor:
        assert sensor.fps == 30


def test_the_board_caps_the_request_before_the_device_sees_it() -> None:
    device = FakeV4L2Device(formats={PixelFormat.NV12: SIZES}, rates=[60, 30, 15])
    with opened(device, size=(1920, 1080), fps=60, max_width=640, max_height=480,
                         max_fps=15) as sensor:  # fmt: skip
        assert (sensor.size, sensor.fps) == ((640, 480), 15)


# -- conversion ---------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [0, 64])
@pytest.mark.parametrize("kind", ["NV12", "YUYV"])
def test_raw_buffers_become_frames_of_the_right_size_and_content(
    kind: str, padding: int, picture: av.VideoFrame
) -> None:
    pf = PixelFormat[kind]
    make = nv12_bytes if kind == "NV12" else yuyv_bytes
    device = FakeV4L2Device(formats={pf: [PICTURE]}, stride_padding=padding)
    now = time.monotonic()
    device.deliveries.append(Delivery(make(picture, padding), now))
    with opened(device) as sensor:
        captured = sensor.read(timeout=1.0)
        assert device.queued == 4  # the buffer went straight back to the driver
    frame = captured.frame
    assert (frame.width, frame.height) == PICTURE
    expected = picture.reformat(format=frame.format.name).to_ndarray()
    assert np.array_equal(frame.to_ndarray(), expected)


def test_mjpeg_buffers_are_decoded(picture: av.VideoFrame) -> None:
    device = FakeV4L2Device(formats={PixelFormat.MJPEG: [PICTURE]})
    device.deliveries.append(Delivery(mjpeg_bytes(picture), time.monotonic()))
    with opened(device) as sensor:
        frame = sensor.read(timeout=1.0).frame
    assert (frame.width, frame.height) == PICTURE
    original = picture.reformat(format="gray").to_ndarray().astype(int)
    decoded = frame.reformat(format="gray").to_ndarray().astype(int)
    assert np.abs(original - decoded).mean() < 4  # a JPEG round trip, not a different picture


def test_a_corrupt_mjpeg_frame_is_skipped(picture: av.VideoFrame) -> None:
    device = FakeV4L2Device(formats={PixelFormat.MJPEG: [PICTURE]})
    now = time.monotonic()
    device.deliveries.append(Delivery(b"\xff\xd8 not a jpeg", now))
    with opened(device) as sensor:
        time.sleep(0.05)
        device.deliveries.append(Delivery(mjpeg_bytes(picture), now + 0.04))
        captured = sensor.read(timeout=1.0)
    assert captured.captured_at == pytest.approx(now + 0.04, abs=1e-5)


# -- timestamps, late readers, losses -----------------------------------------------------------


def test_kernel_monotonic_timestamps_become_capture_times(picture: av.VideoFrame) -> None:
    device = FakeV4L2Device(formats={PixelFormat.NV12: [PICTURE]})
    stamp = time.monotonic() - 0.123456
    device.deliveries.append(Delivery(nv12_bytes(picture), stamp))
    with opened(device) as sensor:
        captured = sensor.read(timeout=1.0)
    assert captured.captured_at == pytest.approx(stamp, abs=2e-6)


@pytest.mark.parametrize(
    ("flags", "stamp"),
    [(BufferFlag.TIMESTAMP_UNKNOWN, 12.0), (BufferFlag.TIMESTAMP_COPY, 12.0),
     (BufferFlag.TIMESTAMP_MONOTONIC, time.time())],  # the last: wall time mislabelled
    ids=["unknown", "copy", "wall-time-as-monotonic"],  # the same on every xdist worker
)  # fmt: skip
def test_timestamps_not_on_the_monotonic_clock_fall_back_to_arrival(
    flags: int, stamp: float, picture: av.VideoFrame
) -> None:
    device = FakeV4L2Device(formats={PixelFormat.NV12: [PICTURE]})
    device.deliveries.append(Delivery(nv12_bytes(picture), stamp, flags=flags))
    with opened(device) as sensor:
        before = time.monotonic()
        captured = sensor.read(timeout=1.0)
    assert before <= captured.captured_at <= time.monotonic()


def test_a_late_reader_gets_the_newest_buffer_and_the_count_it_missed(
    picture: av.VideoFrame,
) -> None:
    device = FakeV4L2Device(formats={PixelFormat.NV12: [PICTURE]})
    now = time.monotonic()
    for i in range(3):
        device.deliveries.append(Delivery(nv12_bytes(picture), now - 0.08 + i * 0.04))
    with opened(device) as sensor:
        captured = sensor.read(timeout=1.0)
        assert device.queued == 4
        # The driver itself dropped two frames (sequence 2, then 5) before the next one.
        device.deliveries.append(Delivery(nv12_bytes(picture), now + 0.12, sequence=5))
        after = sensor.read(timeout=1.0)
    assert captured.skipped == 2 and captured.captured_at == pytest.approx(now, abs=2e-6)
    assert after.skipped == 2


def test_a_device_that_disappears_is_lost_and_closing_it_still_releases_everything(
    picture: av.VideoFrame,
) -> None:
    device = FakeV4L2Device(formats={PixelFormat.NV12: [PICTURE]})
    device.deliveries.append(Delivery(nv12_bytes(picture), time.monotonic()))
    sensor = sensor_with(device)
    sensor.open(*PICTURE, 25)
    sensor.read(timeout=1.0)
    device.deliveries.append(OSError(errno.ENODEV, "No such device"))  # unplugged
    with pytest.raises(SourceLost, match="gone"):
        sensor.read(timeout=1.0)
    sensor.close()
    assert [c[0] for c in device.calls[-3:]] == ["stream_off", "free_buffers", "close"]
    assert not device.opened


def test_a_device_that_stops_delivering_is_lost_after_the_timeout(picture: av.VideoFrame) -> None:
    device = FakeV4L2Device(formats={PixelFormat.NV12: [PICTURE]})
    device.deliveries.append(Delivery(nv12_bytes(picture), time.monotonic()))
    with opened(device) as sensor:
        sensor.read(timeout=1.0)
        begun = time.monotonic()
        with pytest.raises(SourceLost, match="stalled"):
            sensor.read(timeout=0.3)
        waited = time.monotonic() - begun
    assert 0.29 < waited < 2.0


def test_reading_a_closed_sensor_is_lost() -> None:
    with pytest.raises(SourceLost):
        V4L2Sensor(BoardSensor(driver="v4l2")).read(timeout=0.1)


def test_a_missing_device_node_is_lost_through_real_linuxpy(tmp_path: Path) -> None:
    sensor = V4L2Sensor(BoardSensor(driver="v4l2", device=str(tmp_path / "video9")))
    with pytest.raises(SourceLost, match="video9"):
        sensor.open(640, 360, 25)


@pytest.mark.skipif(
    not Path("/dev/video0").exists(),
    reason="no /dev/video0 on this host (load vivid, as the QEMU rig does, to run it)",
)
def test_a_real_v4l2_device_captures_frames() -> None:
    sensor = V4L2Sensor(BoardSensor(driver="v4l2", device="/dev/video0"))
    sensor.open(640, 360, 25)
    try:
        frames: list[CapturedFrame] = [sensor.read(timeout=3.0) for _ in range(5)]
    finally:
        sensor.close()
    assert {(f.frame.width, f.frame.height) for f in frames} == {sensor.size}
    assert all(abs(time.monotonic() - f.captured_at) < 5 for f in frames)
