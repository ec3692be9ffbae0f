"""Frame sources for a local channel: what a source is, and the simulated test pattern.

A source hands out raw pictures as `av.VideoFrame`s with the time they were captured; pixels
stay in C (FFmpeg; numpy views over the V4L2 mmap buffers, in `vigil.media.v4l2`) and are never
walked in Python. Every source behaves like a sensor: frames arrive at the sensor's pace, and a
reader that comes late gets the newest frame, with the number it missed
(`CapturedFrame.skipped`), never a backlog.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import av
import av.error

from vigil.board.description import BoardSensor

log = logging.getLogger(__name__)


class SourceLost(Exception):
    """The source cannot deliver: the device is gone, unusable, or stalled past the timeout."""


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    frame: av.VideoFrame  # any pixel format; encoders reformat in C
    captured_at: float  # time.monotonic() (V4L2: from the kernel buffer timestamp, converted)
    skipped: int = 0  # frames the source dropped just before this one because it was read late


class FrameSource(Protocol):
    def open(self, width: int, height: int, fps: int) -> None:
        """Start capturing at (or as close as the hardware allows to) this size and rate."""
        ...

    def read(self, timeout: float) -> CapturedFrame:
        """The next frame; blocks. SourceLost if the device is gone or stalls past `timeout`."""
        ...

    def close(self) -> None: ...

    @property
    def size(self) -> tuple[int, int]:
        """The size actually captured (valid after open)."""
        ...

    @property
    def fps(self) -> int:
        """The rate actually captured (valid after open)."""
        ...


def clamp_request(sensor: BoardSensor, width: int, height: int, fps: int) -> tuple[int, int, int]:
    """A request limited to what the board says its sensor can do (even sizes for 4:2:0)."""
    width = min(width, sensor.max_width) & ~1
    height = min(height, sensor.max_height) & ~1
    return max(width, 2), max(height, 2), max(1, min(fps, sensor.max_fps))


# -- the simulated sensor ---------------------------------------------------------------------
class SimSensor:
    """`--board sim`: FFmpeg's moving `testsrc2` pattern, paced to real time like a sensor.

    The lavfi device makes frames as fast as they are read, so `read` sleeps until each frame's
    due time. A reader that falls behind gets the frame due now and the count it missed, as a
    real sensor overwrites frames nobody collected.
    """

    def __init__(self, sensor: BoardSensor | None = None) -> None:
        self._sensor = sensor or BoardSensor()
        self._container: Any = None
        self._frames: Any = None
        self._size = (0, 0)
        self._fps = 0
        self._start = 0.0
        self._index = -1

    def open(self, width: int, height: int, fps: int) -> None:
        self.close()
        width, height, fps = clamp_request(self._sensor, width, height, fps)
        # yuv420p: what the software encoders take, so a stream at the capture size needs no
        # conversion at all.
        graph = f"testsrc2=size={width}x{height}:rate={fps},format=yuv420p"
        try:
            self._container = av.open(graph, format="lavfi")
        except av.error.FFmpegError as exc:
            raise SourceLost(f"cannot start the test pattern: {exc}") from exc
        self._frames = self._container.decode(video=0)
        self._size = (width, height)
        self._fps = fps
        self._start = time.monotonic()
        self._index = -1
        log.info("simulated sensor open: %dx%d@%d", width, height, fps)

    def read(self, timeout: float) -> CapturedFrame:
        if self._frames is None:
            raise SourceLost("the simulated sensor is not open")
        index = self._index + 1
        newest = int((time.monotonic() - self._start) * self._fps)
        skipped = max(0, newest - index)
        index += skipped
        try:
            frame = next(self._frames)  # made in C by FFmpeg
        except (StopIteration, av.error.FFmpegError) as exc:
            raise SourceLost(f"the test pattern stopped: {exc!r}") from exc
        due = self._start + index / self._fps
        wait = due - time.monotonic()
        if wait > timeout:
            time.sleep(timeout)
            raise SourceLost(f"no frame within {timeout:.1f} s")
        if wait > 0:
            time.sleep(wait)
        self._index = index
        return CapturedFrame(frame, due, skipped)

    def close(self) -> None:
        if self._container is not None:
            self._frames = None
            self._container.close()
            self._container = None
            log.info("simulated sensor closed")

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def fps(self) -> int:
        return self._fps


def make_source(sensor: BoardSensor) -> FrameSource:
    """The frame source the board describes."""
    if sensor.driver == "v4l2":
        # Imported here: numpy and linuxpy (about 14 MB of a daemon's memory) are needed only
        # by a board with a V4L2 sensor, never by the simulated one.
        from vigil.media.v4l2 import V4L2Sensor

        return V4L2Sensor(sensor)
    return SimSensor(sensor)
