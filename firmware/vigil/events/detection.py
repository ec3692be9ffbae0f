"""The video detectors of each channel: one thread per channel, fed by the channel's frame tap.

Frames: the channel's capture thread hands the luma of its sub stream's picture (e.g. 640x360)
to a tap at 5 fps at most (`VideoChannel.add_tap`; on the local sensor that is the
uncompressed picture before the sub encoder, so nothing is decoded; a remote NVR channel would
feed the same interface from a decoder). The tap puts the picture in a slot of one: a picture
not yet analysed is replaced by the newer one and counted as dropped, so nothing queues and
the capture thread never waits. The channel's detection thread takes the picture, reads the
channel's `ChannelDetection` settings afresh (changes apply at the next picture), runs the
detectors the settings ask for, and publishes each change of state through
`EventBus.publish_threadsafe`; the event loop does none of the pixel work.

Cost: a detector that is off is neither built nor run, and with no pixel detector on the tap
hands out frame times only (no scaling, no copy, numpy never imported): video loss needs no
pixels. Each detector's method is in its module: `motion`, `tamper`, `defocus`, `scenechange`,
`videoloss`. While video is lost, the pixel detectors are reset and their events end.

Which detectors the settings ask for is decided here (`PIXEL_DETECTORS`), so that the
detector modules, which import numpy, are imported only when one is wanted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from vigil.config.events import ChannelDetection, EventSettings
from vigil.events.bus import EventBus
from vigil.events.videoloss import VideoLossDetector

if TYPE_CHECKING:
    from vigil.events.picture import Detector, Luma
    from vigil.media.channel import FrameTap, TapCallback

log = logging.getLogger(__name__)

DETECT_FPS = 5.0
TICK_S = 0.25  # the video loss timer's resolution
ERROR_BACKOFF_S = 1.0  # after a detector failed, before the next picture is looked at


def _motion_wanted(d: ChannelDetection) -> bool:
    motion = d.motion
    if not motion.enabled:
        return False
    if motion.mode == "grid":
        return motion.sensitivity > 0 and any("1" in row for row in motion.grid)
    nights = motion.day_night == "schedule"  # the night set counts only when it is used
    return any(a.sensitivity or (nights and a.night_sensitivity) for a in motion.areas)


# event -> whether the settings ask for that detector
PIXEL_DETECTORS: Mapping[str, Callable[[ChannelDetection], bool]] = {
    "vmd": _motion_wanted,
    "tamperdetection": lambda d: d.tamper.enabled and d.tamper.sensitivity > 0,
    "defocus": lambda d: d.defocus.enabled and d.defocus.sensitivity > 0,
    "scenechangedetection": lambda d: d.scene_change.enabled and d.scene_change.sensitivity > 0,
}


def make_detector(event: str, local_now: Callable[[], datetime]) -> Detector:
    """The detector of one event type (its module, and numpy, imported at the first need)."""
    if event == "vmd":
        from vigil.events.motion import MotionDetector

        return MotionDetector(local_now)
    if event == "tamperdetection":
        from vigil.events.tamper import TamperDetector

        return TamperDetector()
    if event == "defocus":
        from vigil.events.defocus import DefocusDetector

        return DefocusDetector()
    if event == "scenechangedetection":
        from vigil.events.scenechange import SceneChangeDetector

        return SceneChangeDetector()
    raise ValueError(f"no video detector for {event!r}")


class FrameFeed(Protocol):
    """Where a channel's pictures come from (`VideoChannel`; a decoder for a remote channel)."""

    def add_tap(self, callback: TapCallback, max_fps: float, luma: bool = True) -> FrameTap: ...

    def remove_tap(self, tap: FrameTap) -> None: ...


class _Slot:
    """The newest picture for the detection thread: a queue of one that drops, never queues."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: tuple[float, Luma | None] | None = None
        self._ready = threading.Event()

    def put(self, item: tuple[float, Luma | None]) -> bool:
        """True if a picture not yet taken was dropped for this one."""
        with self._lock:
            dropped = self._item is not None
            self._item = item
            self._ready.set()
        return dropped

    def take(self, timeout: float) -> tuple[float, Luma | None] | None:
        self._ready.wait(timeout)
        with self._lock:
            item, self._item = self._item, None
            self._ready.clear()
        return item

    def wake(self) -> None:
        self._ready.set()


class ChannelDetectors:
    """The detectors of one channel and the thread that runs them."""

    def __init__(
        self,
        channel: int,
        feed: FrameFeed,
        bus: EventBus,
        settings: Callable[[], EventSettings],
        local_now: Callable[[], datetime],
        fps: float = DETECT_FPS,
    ) -> None:
        self.channel = channel
        self._feed, self._bus, self._settings = feed, bus, settings
        self._local_now, self._fps = local_now, fps
        self._slot = _Slot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tap: FrameTap | None = None
        self._video_loss = VideoLossDetector()
        self._detectors: dict[str, Detector] = {}  # built at their first need, kept
        self._running: set[str] = set()
        self._states: dict[str, bool] = {}
        self.analysed = 0  # pictures looked at by at least one pixel detector
        self.dropped = 0  # pictures replaced before the thread took them
        self.thread_id: int | None = None  # the native id, for measuring its CPU time

    def start(self) -> None:
        self._stop.clear()
        self._tap = self._feed.add_tap(self._offer, self._fps, luma=False)
        self._thread = threading.Thread(
            target=self._run, name=f"vigil-detect-{self.channel}", daemon=True
        )
        self._thread.start()
        self.thread_id = self._thread.native_id

    def stop(self) -> None:
        """Blocks until the thread ended (call it in a thread of its own from the loop)."""
        if self._tap is not None:
            self._feed.remove_tap(self._tap)
            self._tap = None
        self._stop.set()
        self._slot.wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def running(self) -> list[str]:
        """The pixel detectors running now."""
        return sorted(self._running)

    # -- the capture thread ---------------------------------------------------------------------
    def _offer(self, at: float, luma: Luma | None) -> None:
        if self._slot.put((at, luma)):
            self.dropped += 1

    # -- the detection thread -------------------------------------------------------------------
    def _run(self) -> None:
        last_frame = time.monotonic()  # the timer runs from the start, frames or not
        while not self._stop.is_set():
            item = self._slot.take(TICK_S)
            if self._stop.is_set():
                break
            now = time.monotonic()
            if item is not None:
                last_frame = now
            detection = self._detection()
            lost = self._video_loss.update(now - last_frame, detection)
            self._set(self._video_loss.event, lost)
            try:
                self._analyse(item, detection, lost)
            except Exception:  # one bad picture or setting must not end detection
                log.exception("channel %d: a detector failed; starting them afresh", self.channel)
                self._switch(set())
                self._stop.wait(ERROR_BACKOFF_S)

    def _detection(self) -> ChannelDetection:
        found = self._settings().channel(self.channel)
        return found if found is not None else ChannelDetection(channel=self.channel)

    def _analyse(
        self, item: tuple[float, Luma | None] | None, detection: ChannelDetection, lost: bool
    ) -> None:
        wanted = set() if lost else {e for e, asks in PIXEL_DETECTORS.items() if asks(detection)}
        if wanted != self._running:
            self._switch(wanted)
        if item is None or not wanted:
            return
        at, luma = item
        if luma is None:  # taken before the tap was told to hand out pixels
            return
        from vigil.events.picture import Picture

        picture = Picture(luma, at)
        for event in sorted(wanted):
            self._set(event, self._detectors[event].update(picture, detection))
        self.analysed += 1

    def _switch(self, wanted: set[str]) -> None:
        """Start the detectors that are now wanted; end the others' events and forget them."""
        for event in sorted(self._running - wanted):
            self._detectors[event].reset()
            self._set(event, False)
            log.info("channel %d: %s detection off", self.channel, event)
        for event in sorted(wanted - self._running):
            if event not in self._detectors:
                self._detectors[event] = make_detector(event, self._local_now)
            self._detectors[event].reset()
            log.info("channel %d: %s detection on", self.channel, event)
        self._running = wanted
        if self._tap is not None:
            self._tap.luma = bool(wanted)

    def _set(self, event: str, active: bool) -> None:
        if self._states.get(event, False) == active:
            return
        self._states[event] = active
        try:
            self._bus.publish_threadsafe(event, self.channel, active)
        except RuntimeError as exc:  # the loop is closed (the daemon is going down) or unbound
            log.warning("channel %d: the event bus takes no events (%s); detection stops",
                        self.channel, exc)  # fmt: skip
            self._stop.set()


class DetectionService:
    """The detectors of every channel that has a frame feed."""

    def __init__(
        self,
        bus: EventBus,
        settings: Callable[[], EventSettings],
        feeds: Mapping[int, FrameFeed],
        local_now: Callable[[], datetime],
        fps: float = DETECT_FPS,
    ) -> None:
        self.channels = {
            channel: ChannelDetectors(channel, feed, bus, settings, local_now, fps)
            for channel, feed in feeds.items()
        }

    async def start(self) -> None:
        for detectors in self.channels.values():
            detectors.start()
        log.info("video detection on channels %s", ", ".join(map(str, self.channels)) or "none")

    async def stop(self) -> None:
        for detectors in self.channels.values():
            await asyncio.to_thread(detectors.stop)

    def stats(self) -> dict[int, dict[str, Any]]:
        return {
            channel: {
                "analysed": d.analysed,
                "dropped": d.dropped,
                "running": d.running,
                "thread_id": d.thread_id,
            }
            for channel, d in self.channels.items()
        }
