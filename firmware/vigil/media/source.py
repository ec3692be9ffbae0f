"""Frame sources for a local channel: what a source is, and the simulated test pattern.

A source hands out raw pictures as `av.VideoFrame`s with the time they were captured; pixels
stay in C (FFmpeg; numpy views over the V4L2 mmap buffers, in `vigil.media.v4l2`) and are never
walked in Python. Every source behaves like a sensor: frames arrive at the sensor's pace, and a
reader that comes late gets the newest frame, with the number it missed
(`CapturedFrame.skipped`), never a backlog.

The simulated sensor shows FFmpeg's moving `testsrc2` pattern. What it sees can be changed
while it runs (`SimSensor.set_scene`, the part "scene" of the simulated board's control socket),
for the event detectors' tests. A request changes only the keys it names:

    still    bool    the pattern frozen: nothing moves
    box      [x, y, w, h] in thousandths of the picture (origin top left), or null: a bright
                     box (a dark rim around it, so it shows on any background) a third of that
                     rectangle's size that moves an eighth of its size each frame, bouncing
                     inside the rectangle; null removes it
    cover    bool    the view covered: a flat dark picture with a little sensor noise
    blur     bool    the picture heavily defocused
    shift    bool    the view moved: the frozen picture shifted by a third of its size
    stopped  bool    the sensor delivers no frames (reads stall past their timeout, as a dead
                     sensor's do); it delivers again when set back to false

They combine in this order: the pattern (moving, still, or shifted), the box, the blur; a
cover hides all of them. Unknown keys and bad values raise ValueError. Drawing (numpy, imported
only then) costs nothing until a scene is set.

Its controls are those of Linux's virtual video driver (vivid): brightness, contrast and
saturation 0-255 (128 leaves the picture as it is), hue -128..128 (a half turn each way) and
the horizontal and vertical flips, and a sharpness 0-255 of its own (128 as it is)
(`SimSensor.controls`, `set_control`: what `vigil.media.isp` drives). The sensor processes
what it sees: the scene first, then these.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import av
import av.error

from vigil.board.description import BoardSensor
from vigil.media.isp import ControlInfo

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
@dataclass(frozen=True)
class Scene:
    """What the simulated sensor sees (the keys are described in the module docstring)."""

    still: bool = False
    box: tuple[int, int, int, int] | None = None
    cover: bool = False
    blur: bool = False
    shift: bool = False
    stopped: bool = False

    @property
    def drawn(self) -> bool:
        """Whether the pattern is changed at all (stopped is no picture, not a drawing)."""
        return self.still or self.box is not None or self.cover or self.blur or self.shift

    def updated(self, changes: object) -> Scene:
        """This scene with `changes` (a JSON object) applied; ValueError for a bad one."""
        if not isinstance(changes, Mapping):
            raise ValueError("a scene is an object of keys to change")
        known = {f.name for f in dataclasses.fields(self)}
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"no scene key {key!r} (known: {', '.join(sorted(known))})")
            values[key] = _box(value) if key == "box" else _flag(key, value)
        return dataclasses.replace(self, **values)


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"scene {key} is true or false, not {value!r}")
    return value


def _box(value: object) -> tuple[int, int, int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"scene box is [x, y, w, h] in thousandths or null, not {value!r}")
    x, y, w, h = value
    if not (0 <= x <= 999 and 0 <= y <= 999 and w >= 1 and h >= 1):
        raise ValueError(f"scene box {list(value)}: x, y in 0-999 and w, h from 1")
    if x + w > 1000 or y + h > 1000:
        raise ValueError(f"scene box {list(value)} reaches outside the picture")
    return x, y, w, h


SIM_CONTROLS = {
    c.name: c
    for c in (
        ControlInfo("brightness", "int", 0, 255),
        ControlInfo("contrast", "int", 0, 255),
        ControlInfo("saturation", "int", 0, 255),
        ControlInfo("hue", "int", -128, 128),
        ControlInfo("sharpness", "int", 0, 255),
        ControlInfo("horizontal_flip", "bool", 0, 1),
        ControlInfo("vertical_flip", "bool", 0, 1),
    )
}
NEUTRAL_CONTROLS = {
    "brightness": 128,
    "contrast": 128,
    "saturation": 128,
    "hue": 0,
    "sharpness": 128,
    "horizontal_flip": 0,
    "vertical_flip": 0,
}


class SimSensor:
    """`--board sim`: FFmpeg's moving `testsrc2` pattern, paced to real time like a sensor.

    The lavfi device makes frames as fast as they are read, so `read` sleeps until each frame's
    due time. A reader that falls behind gets the frame due now and the count it missed, as a
    real sensor overwrites frames nobody collected. `set_scene` (any thread) changes what the
    pattern shows; the capture thread draws it.
    """

    def __init__(self, sensor: BoardSensor | None = None) -> None:
        self._sensor = sensor or BoardSensor()
        self._container: Any = None
        self._frames: Any = None
        self._size = (0, 0)
        self._fps = 0
        self._start = 0.0
        self._index = -1
        self._scene = Scene()  # replaced whole by set_scene; read by the capture thread
        self._delivering = threading.Event()  # clear while the scene says stopped
        self._delivering.set()
        self._painter: Any = None  # vigil.media.simscene.ScenePainter, made at the first scene
        self._controls = dict(NEUTRAL_CONTROLS)  # replaced whole by set_control
        self._tuner: Any = None  # vigil.media.simscene.SensorTuner, made at the first change

    @property
    def scene(self) -> Scene:
        return self._scene

    def set_scene(self, changes: object) -> None:
        """Apply a scene request (see the module docstring); ValueError for a bad one."""
        scene = self._scene.updated(changes)
        self._scene = scene
        if scene.stopped:
            self._delivering.clear()
        else:
            self._delivering.set()
        log.info("simulated sensor scene: %s", _describe(scene))

    def controls(self) -> Mapping[str, ControlInfo]:
        return SIM_CONTROLS

    def set_control(self, name: str, value: int) -> None:
        """Set one control (any thread); ValueError for an unknown one or a value off range."""
        control = SIM_CONTROLS.get(name)
        if control is None:
            raise ValueError(f"the simulated sensor has no control {name!r}")
        if not control.minimum <= value <= control.maximum:
            raise ValueError(f"{name} is {control.minimum}..{control.maximum}, not {value}")
        self._controls = {**self._controls, name: value}

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
        if self._painter is not None and (width, height) != self._size:
            self._painter = None  # what a scene keeps (a frozen picture) is of the old size
        self._tuner = None
        self._size = (width, height)
        self._fps = fps
        self._start = time.monotonic()
        self._index = -1
        log.info("simulated sensor open: %dx%d@%d", width, height, fps)

    def read(self, timeout: float) -> CapturedFrame:
        if self._frames is None:
            raise SourceLost("the simulated sensor is not open")
        if not self._delivering.is_set():
            if not self._delivering.wait(timeout):
                raise SourceLost(
                    f"the simulated sensor is stopped: no frame within {timeout:.1f} s"
                )
            # Back within the wait: the pace goes on from now, with no frame counted as missed.
            self._start = time.monotonic() - (self._index + 1) / self._fps
        index = self._index + 1
        newest = int((time.monotonic() - self._start) * self._fps)
        skipped = max(0, newest - index)
        index += skipped
        try:
            frame = next(self._frames)  # made in C by FFmpeg
        except (StopIteration, av.error.FFmpegError) as exc:
            raise SourceLost(f"the test pattern stopped: {exc!r}") from exc
        scene = self._scene
        if scene.drawn or self._painter is not None:
            frame = self._paint(frame, scene)
        controls = self._controls
        if controls != NEUTRAL_CONTROLS or self._tuner is not None:
            frame = self._tune(frame, controls)
        due = self._start + index / self._fps
        wait = due - time.monotonic()
        if wait > timeout:
            time.sleep(timeout)
            raise SourceLost(f"no frame within {timeout:.1f} s")
        if wait > 0:
            time.sleep(wait)
        self._index = index
        return CapturedFrame(frame, due, skipped)

    def _paint(self, frame: av.VideoFrame, scene: Scene) -> av.VideoFrame:
        if not scene.drawn:
            self._painter = None  # back to the plain pattern: forget the frozen pictures
            return frame
        if self._painter is None:
            # Imported here: numpy is for drawing a scene, never needed by the plain pattern.
            from vigil.media.simscene import ScenePainter

            self._painter = ScenePainter(*self._size)
        painted: av.VideoFrame = self._painter.paint(frame, scene)
        return painted

    def _tune(self, frame: av.VideoFrame, controls: dict[str, int]) -> av.VideoFrame:
        if controls == NEUTRAL_CONTROLS:
            self._tuner = None
            return frame
        if self._tuner is None:
            from vigil.media.simscene import SensorTuner  # numpy: only once a control is set

            self._tuner = SensorTuner(*self._size)
        tuned: av.VideoFrame = self._tuner.tune(frame, controls)
        return tuned

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


def _describe(scene: Scene) -> str:
    changed = {
        f.name: getattr(scene, f.name)
        for f in dataclasses.fields(scene)
        if getattr(scene, f.name) != f.default
    }
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "the plain pattern"


def make_source(sensor: BoardSensor) -> FrameSource:
    """The frame source the board describes."""
    if sensor.driver == "v4l2":
        # Imported here: numpy and linuxpy (about 14 MB of a daemon's memory) are needed only
        # by a board with a V4L2 sensor, never by the simulated one.
        from vigil.media.v4l2 import V4L2Sensor

        return V4L2Sensor(sensor)
    return SimSensor(sensor)
