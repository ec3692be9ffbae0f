"""The V4L2 sensor: a capture device through linuxpy, its frames turned into AVFrames in C.

Format negotiation follows the board's order of formats; size and rate are the closest the
device offers. Buffers are mmapped and never walked in Python: numpy views of the mapping for
NV12/YUYV, FFmpeg's MJPEG decoder for MJPEG. Like every source (`vigil.media.source`) it
behaves like a sensor: a late reader gets the newest frame and the number it missed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import av
import av.error
import numpy as np
from linuxpy.video.device import (
    BufferFlag,
    BufferType,
    Device,
    FrameIntervalType,
    FrameSizeType,
    Memory,
    PixelFormat,
    mmap_from_buffer,
)

from vigil.board.description import BoardSensor
from vigil.media.source import CapturedFrame, SourceLost, clamp_request

log = logging.getLogger(__name__)

# The capture formats board.toml may name, and the V4L2 pixel format each stands for.
PIXEL_FORMATS = {"NV12": PixelFormat.NV12, "YUYV": PixelFormat.YUYV, "MJPEG": PixelFormat.MJPEG}
CAPTURE = BufferType.VIDEO_CAPTURE
# Few buffers: a late reader finds at most this many stale frames, which bounds the latency.
V4L2_BUFFERS = 4
# A kernel timestamp further than this from time.monotonic() is not CLOCK_MONOTONIC after all.
TIMESTAMP_SANITY_S = 1.0
# poll() said the device is ready but DQBUF had nothing: wait a little instead of spinning.
SPURIOUS_WAKE_S = 0.002
# Errors that mean the device is gone (unplugged, driver unbound, file descriptor revoked).
GONE_ERRNOS = {errno.ENODEV, errno.ENXIO, errno.EIO, errno.EBADF, errno.ENOENT}


class V4L2Device(Protocol):
    """The part of `linuxpy.video.device.Device` the V4L2 sensor uses."""

    info: Any

    def open(self) -> None: ...
    def close(self) -> None: ...
    def fileno(self) -> int: ...
    def set_format(
        self, buffer_type: BufferType, width: int, height: int, pixel_format: Any
    ) -> Any: ...
    def get_format(self, buffer_type: BufferType) -> Any: ...
    def set_fps(self, buffer_type: BufferType, fps: Any) -> Any: ...
    def get_fps(self, buffer_type: BufferType) -> Any: ...
    def request_buffers(self, buffer_type: BufferType, memory: Memory, size: int) -> Any: ...
    def query_buffer(self, buffer_type: BufferType, memory: Memory, index: int) -> Any: ...
    def enqueue_buffer(
        self, buffer_type: BufferType, memory: Memory, size: int, index: int
    ) -> Any: ...
    def dequeue_buffer(self, buffer_type: BufferType, memory: Memory) -> Any: ...
    def free_buffers(self, buffer_type: BufferType, memory: Memory) -> Any: ...
    def stream_on(self, buffer_type: BufferType) -> None: ...
    def stream_off(self, buffer_type: BufferType) -> None: ...


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What the device agreed to."""

    pixel_format: PixelFormat
    width: int
    height: int
    bytes_per_line: int
    fps: int


def _linuxpy_device(path: str) -> V4L2Device:
    # Non-blocking: read() waits with poll() and its own timeout, so a stall is noticed.
    return Device(path, blocking=False)  # type: ignore[return-value]


def _frame_sizes(
    device: V4L2Device, pixel_format: PixelFormat, width: int, height: int
) -> list[tuple[int, int]]:
    """The sizes the device offers for this format; a stepwise range gives its nearest size."""
    sizes: list[tuple[int, int]] = []
    for size in device.info.format_frame_sizes(pixel_format):
        if size.type == FrameSizeType.DISCRETE:
            sizes.append((size.info.width, size.info.height))
            continue
        step = size.info
        sizes.append(
            (
                _on_step(width, step.min_width, step.max_width, step.step_width),
                _on_step(height, step.min_height, step.max_height, step.step_height),
            )
        )
    return sizes


def _on_step(value: int, low: int, high: int, step: int) -> int:
    value = min(max(value, low), high)
    step = max(step, 1)
    # Round up to the grid so the capture still covers the request, unless that leaves the range.
    value = low + -(-(value - low) // step) * step
    return value if value <= high else high


def closest_size(offered: list[tuple[int, int]], width: int, height: int) -> tuple[int, int]:
    """The smallest size covering the request, or the largest one there is if none covers it."""
    covering = [s for s in offered if s[0] >= width and s[1] >= height]
    if covering:
        return min(covering, key=lambda s: (s[0] * s[1], s))
    return max(offered, key=lambda s: (s[0] * s[1], s))


def closest_fps(offered: list[Fraction], fps: int) -> Fraction | None:
    """The lowest rate at or above the request, or the highest there is; None if unknown."""
    rates = sorted({rate for rate in offered if rate > 0})
    if not rates:
        return None
    for rate in rates:
        if rate >= fps:
            return rate
    return rates[-1]


def _offered_rates(device: V4L2Device, pixel_format: PixelFormat, width: int, height: int, fps: int
                   ) -> list[Fraction]:  # fmt: skip
    rates: list[Fraction] = []
    for interval in device.info.fps_intervals(pixel_format, width, height):
        if interval.type == FrameIntervalType.DISCRETE:
            rates.append(Fraction(interval.max_fps))
        elif interval.max_fps:
            # A continuous range: the request itself if it lies inside, else the nearer end.
            low, high = Fraction(interval.min_fps), Fraction(interval.max_fps)
            rates.append(min(max(Fraction(fps), low), high))
    return rates


class V4L2Sensor:
    """A V4L2 capture device through linuxpy: format negotiation, mmap streaming, kernel time.

    The formats are tried in the board's order (NV12, YUYV, MJPEG by default); size and rate
    are the closest the device offers, and what was chosen is logged. Buffers are mmapped and
    turned into frames in C: numpy views of the mapping for NV12/YUYV (`from_ndarray` copies
    them into an AVFrame, then the buffer goes straight back to the driver), FFmpeg's MJPEG
    decoder for MJPEG.
    """

    def __init__(
        self,
        sensor: BoardSensor,
        device_factory: Callable[[str], V4L2Device] = _linuxpy_device,
    ) -> None:
        self._sensor = sensor
        self._device_factory = device_factory
        self._device: V4L2Device | None = None
        self._maps: list[mmap.mmap] = []
        self._poll: select.poll | None = None
        self._decoder: Any = None
        self._format: Negotiated | None = None
        self._last_sequence: int | None = None
        self._warned_clock = False
        self.negotiated: Negotiated | None = None

    # -- opening ------------------------------------------------------------------------------
    def open(self, width: int, height: int, fps: int) -> None:
        self.close()
        width, height, fps = clamp_request(self._sensor, width, height, fps)
        device = self._device_factory(self._sensor.device)
        try:
            device.open()
        except OSError as exc:
            raise SourceLost(f"{self._sensor.device}: {exc.strerror or exc}") from exc
        self._device = device
        try:
            self._format = self._negotiate(device, width, height, fps)
            self._start_streaming(device)
        except OSError as exc:
            self.close()
            raise SourceLost(f"{self._sensor.device}: cannot start capture: {exc}") from exc
        except SourceLost:
            self.close()
            raise
        self.negotiated = self._format
        f = self._format
        log.info(
            "V4L2 sensor %s open: %s %dx%d@%d (asked %dx%d@%d)",
            self._sensor.device, f.pixel_format.name, f.width, f.height, f.fps,
            width, height, fps,
        )  # fmt: skip

    def _negotiate(self, device: V4L2Device, width: int, height: int, fps: int) -> Negotiated:
        # Capture formats only: linuxpy's `info.formats` also lists the overlay's (vivid has
        # one) and fails on them (its pixel_format is left unbound for that buffer type).
        offered = {f.pixel_format for f in device.info.buffer_formats(CAPTURE)}
        wanted = [PIXEL_FORMATS[name] for name in self._sensor.formats if name in PIXEL_FORMATS]
        chosen = next((pf for pf in wanted if pf in offered), None)
        if chosen is None:
            names = ", ".join(sorted(pf.name for pf in offered)) or "none"
            raise SourceLost(
                f"{self._sensor.device} offers none of {self._sensor.formats} (it has {names})"
            )
        sizes = _frame_sizes(device, chosen, width, height)
        w, h = closest_size(sizes, width, height) if sizes else (width, height)
        device.set_format(CAPTURE, w, h, int(chosen))
        actual = device.get_format(CAPTURE)
        if actual.pixel_format != chosen:
            raise SourceLost(f"{self._sensor.device} refused {chosen.name}")
        rate = closest_fps(_offered_rates(device, chosen, actual.width, actual.height, fps), fps)
        try:
            device.set_fps(CAPTURE, rate if rate is not None else fps)
            got = device.get_fps(CAPTURE)
            actual_fps = max(1, round(float(got))) if got else fps
        except OSError as exc:
            # Not every driver lets the rate be set (S_PARM); it then runs at its own pace.
            log.warning("%s: cannot set the frame rate (%s)", self._sensor.device, exc)
            actual_fps = round(rate) if rate is not None else fps
        bytes_per_line = actual.bytes_per_line or (
            actual.width * 2 if chosen == PixelFormat.YUYV else actual.width
        )
        return Negotiated(chosen, actual.width, actual.height, bytes_per_line, actual_fps)

    def _start_streaming(self, device: V4L2Device) -> None:
        request = device.request_buffers(CAPTURE, Memory.MMAP, V4L2_BUFFERS)
        count = getattr(request, "count", V4L2_BUFFERS)
        for index in range(count):
            buffer = device.query_buffer(CAPTURE, Memory.MMAP, index)
            self._maps.append(mmap_from_buffer(device, buffer))
            device.enqueue_buffer(CAPTURE, Memory.MMAP, 0, index)
        device.stream_on(CAPTURE)
        self._poll = select.poll()
        self._poll.register(device.fileno(), select.POLLIN | select.POLLPRI)
        self._last_sequence = None
        if self._format is not None and self._format.pixel_format == PixelFormat.MJPEG:
            self._decoder = av.CodecContext.create("mjpeg", "r")

    # -- reading ------------------------------------------------------------------------------
    def read(self, timeout: float) -> CapturedFrame:
        if self._device is None or self._format is None:
            raise SourceLost("the V4L2 sensor is not open")
        deadline = time.monotonic() + timeout
        while True:
            buffer = self._dequeue(deadline)
            skipped = 0
            # A late reader takes the newest frame: older ready buffers go back to the driver.
            for _ in range(len(self._maps) - 1):
                newer = self._try_dequeue()
                if newer is None:
                    break
                self._requeue(buffer)
                skipped += 1
                buffer = newer
            try:
                frame = self._to_frame(buffer)
            finally:
                self._requeue(buffer)
            sequence = int(buffer.sequence)
            if self._last_sequence is not None and sequence > self._last_sequence + 1:
                skipped = max(skipped, sequence - self._last_sequence - 1)
            self._last_sequence = sequence
            if frame is not None:
                return CapturedFrame(frame, self._captured_at(buffer), skipped)
            if time.monotonic() >= deadline:
                raise SourceLost(f"no usable frame within {timeout:.1f} s")

    def _dequeue(self, deadline: float) -> Any:
        assert self._poll is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SourceLost(f"{self._sensor.device}: no frame (stalled)")
            try:
                ready = self._poll.poll(remaining * 1000)
            except InterruptedError:
                continue
            if not ready:
                raise SourceLost(f"{self._sensor.device}: no frame (stalled)")
            buffer = self._try_dequeue()
            if buffer is not None:
                return buffer
            time.sleep(min(SPURIOUS_WAKE_S, max(0.0, deadline - time.monotonic())))

    def _try_dequeue(self) -> Any | None:
        assert self._device is not None
        try:
            return self._device.dequeue_buffer(CAPTURE, Memory.MMAP)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno in GONE_ERRNOS:
                raise SourceLost(f"{self._sensor.device}: device gone ({exc.strerror})") from exc
            raise SourceLost(f"{self._sensor.device}: capture failed: {exc}") from exc

    def _requeue(self, buffer: Any) -> None:
        assert self._device is not None
        try:
            self._device.enqueue_buffer(CAPTURE, Memory.MMAP, 0, buffer.index)
        except OSError as exc:
            raise SourceLost(f"{self._sensor.device}: cannot requeue a buffer: {exc}") from exc

    def _to_frame(self, buffer: Any) -> av.VideoFrame | None:
        """The buffer's picture as an AVFrame, all in C; None for a corrupt MJPEG frame."""
        f = self._format
        assert f is not None
        data = self._maps[buffer.index]
        used = int(buffer.bytesused) or len(data)
        if f.pixel_format == PixelFormat.MJPEG:
            try:
                frames = self._decoder.decode(av.Packet(data[:used]))
            except av.error.FFmpegError as exc:
                log.debug("corrupt MJPEG frame dropped: %s", exc)
                return None
            return frames[-1] if frames else None
        stride = f.bytes_per_line
        if f.pixel_format == PixelFormat.NV12:
            rows = f.height * 3 // 2
            view = np.frombuffer(data, dtype=np.uint8, count=rows * stride).reshape(rows, stride)
            return av.VideoFrame.from_ndarray(view[:, : f.width], format="nv12")
        view = np.frombuffer(data, dtype=np.uint8, count=f.height * stride)
        pixels = view.reshape(f.height, stride)[:, : f.width * 2].reshape(f.height, f.width, 2)
        return av.VideoFrame.from_ndarray(pixels, format="yuyv422")

    def _captured_at(self, buffer: Any) -> float:
        now = time.monotonic()
        if (int(buffer.flags) & BufferFlag.TIMESTAMP_MASK) != BufferFlag.TIMESTAMP_MONOTONIC:
            return now
        # CLOCK_MONOTONIC is the clock of time.monotonic() on Linux: no conversion but units.
        stamp = buffer.timestamp.secs + buffer.timestamp.usecs / 1_000_000
        if abs(now - stamp) > TIMESTAMP_SANITY_S:
            if not self._warned_clock:
                log.warning(
                    "%s: kernel timestamps are %.1f s off the monotonic clock; using arrival time",
                    self._sensor.device, now - stamp,
                )  # fmt: skip
                self._warned_clock = True
            return now
        return stamp

    # -- closing ------------------------------------------------------------------------------
    def close(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        # Each step may fail on a device that is already gone; the rest must still be released.
        with contextlib.suppress(OSError):
            device.stream_off(CAPTURE)
        for mapping in self._maps:
            mapping.close()
        self._maps = []
        with contextlib.suppress(OSError):
            device.free_buffers(CAPTURE, Memory.MMAP)
        with contextlib.suppress(OSError):
            device.close()
        self._poll = None
        self._decoder = None
        self._format = None
        if self.negotiated is not None:  # a failed open was not a capture that stopped
            self.negotiated = None
            log.info("V4L2 sensor %s closed", self._sensor.device)

    @property
    def size(self) -> tuple[int, int]:
        f = self.negotiated
        return (f.width, f.height) if f else (0, 0)

    @property
    def fps(self) -> int:
        return self.negotiated.fps if self.negotiated else 0
