"""A local video channel: one capture, one encoder per stream, in one worker thread.

The thread reads the source at the highest rate and the largest size any enabled stream needs
and gives each stream the frames due at its own rate (a 15 fps sub stream from a 25 fps
capture takes the frames closest to its own clock). Finished access units go to the event loop
with `call_soon_threadsafe`; the loop never waits on capture or encoding.

Nothing queues without bound: the source keeps only the newest frames, so when encoding all
streams takes longer than a frame interval the frames in between are dropped and counted.
The thread is supervised: a lost source is reopened with back-off (0.5 s doubling to 10 s)
and an unexpected failure is logged and the loop restarted, so it never stops silently.

Frame taps (`add_tap`) hand the luma of the sub stream's picture to analysis (the event
detectors) at a bounded rate. The uncompressed picture is at hand here before the sub encoder,
so a tap scales it in swscale and copies the Y plane instead of decoding the sub stream: the same
picture, no decode cost. A tap is called in this thread and must return at once (it hands the
array to a thread of its own); with no tap registered the capture loop does no extra work.

An overlay (`set_overlay`: the privacy masks and OSD of `vigil.media.osd`) is drawn into each
captured frame before it is encoded or kept for snapshots; taps get it masked but without text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from av.video.reformatter import VideoReformatter

from vigil.config.model import StreamSettings
from vigil.media.encoder import VideoEncoder, snapshot_jpeg
from vigil.media.frames import AccessUnit
from vigil.media.source import CapturedFrame, FrameSource, SourceLost

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
HEALTHY_RUN_S = 30.0  # a loop that ran this long before failing starts its back-off afresh
READ_TIMEOUT_MIN_S = 2.0  # a source silent for longer (or 3 frame intervals) is lost
SUB_STREAM = 2  # stream id % 100 of the sub stream, whose size the taps' pictures have

if TYPE_CHECKING:
    import numpy as np

    from vigil.media.osd import Overlay

    # Called in the capture thread with the frame's capture time (time.monotonic()) and its
    # luma at the sub stream's size, or None for a tap that asked for the times only.
    TapCallback = Callable[[float, np.ndarray[Any, np.dtype[np.uint8]] | None], None]


class SnapshotUnavailable(LookupError):
    """No picture to take a snapshot of: the channel has not captured one (or lost its source)."""


@dataclass
class _Paced:
    """A frame schedule at `interval` seconds (worker thread only)."""

    interval: float
    due: float | None = None
    dropped: int = 0

    def take(self, captured: CapturedFrame, source_interval: float) -> bool:
        """Whether this frame is due; counts the slots that were dropped."""
        t = captured.captured_at
        if self.due is None:
            self.due = t
        # Half a capture interval of slack: the frame nearest to the due time is the one taken.
        if t < self.due - source_interval / 2:
            return False
        late = t - self.due
        if late > self.interval / 2:
            missed = round(late / self.interval)
            self.due += missed * self.interval
            # Slots lost because the source dropped frames while we were busy are drops; a gap
            # with no drop reported (a slow sensor, a dark scene) is the source's own pace.
            if captured.skipped:
                self.dropped += missed
        self.due += self.interval
        return True


@dataclass(kw_only=True)
class _Stream(_Paced):
    """One stream's encoder, its frame schedule and its counters (worker thread only)."""

    settings: StreamSettings
    encoder: VideoEncoder
    encoded: int = 0
    last_encode_ms: float = 0.0


@dataclass(kw_only=True, eq=False)
class FrameTap(_Paced):
    """A consumer of the channel's pictures at `interval` seconds at most.

    `luma` may be switched at any time: False hands out the capture times only (no scaling,
    no copy), for a consumer that just needs to know that frames arrive.
    """

    callback: TapCallback
    luma: bool = True


def _stats_of(stream: _Stream) -> dict[str, float | int | str]:
    return {
        "codec": stream.settings.codec,
        "encoder": stream.encoder.encoder_name,
        "frames_encoded": stream.encoded,
        "frames_dropped": stream.dropped,
        "last_encode_ms": round(stream.last_encode_ms, 2),
    }


def _encoder_key(settings: StreamSettings) -> StreamSettings:
    # The name is not encoded: renaming a stream must not restart its encoder.
    return dataclasses.replace(settings, name="")


class VideoChannel:
    def __init__(
        self,
        channel: int,
        source: FrameSource,
        publish: Callable[[AccessUnit], None],
        loop: asyncio.AbstractEventLoop,
        hardware_h264: str = "",
    ) -> None:
        self.channel = channel
        self._source = source
        self._publish = publish
        self._loop = loop
        self._hardware_h264 = hardware_h264
        self._lock = threading.Lock()
        self._pending: list[StreamSettings] | None = []
        self._configured: list[StreamSettings] = []  # the last configuration applied
        self._wake = threading.Event()  # configure() or stop() while the thread idles
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._streams: dict[int, _Stream] = {}
        self._stats: dict[int, dict[str, float | int | str]] = {}
        self._source_request: tuple[int, int, int] | None = None  # what it was opened with
        self._source_open = False
        self._latest: CapturedFrame | None = None
        self._epoch = time.monotonic()  # pts 0 of every stream of this channel
        self._lost_since: float | None = None
        self._retry = BACKOFF_FIRST_S
        self._taps: tuple[FrameTap, ...] = ()
        # Held while the taps are fed: once remove_tap() returns, that tap is never called
        # again (re-entrant: a failing tap removes itself from inside the feeding).
        self._tap_lock = threading.RLock()
        self._tap_size = (0, 0)  # the sub stream's size (worker thread only)
        self._tap_scaler: VideoReformatter | None = None  # its own: see VideoEncoder
        self._overlay: Overlay | None = None  # OSD and privacy masks, drawn before all else

    # -- control (event loop) -----------------------------------------------------------------
    def configure(self, streams: list[StreamSettings]) -> None:
        """Takes effect at the next frame: changed encoders are rebuilt, disabled ones stop."""
        for settings in streams:
            if settings.id // 100 != self.channel:
                raise ValueError(f"stream {settings.id} is not a stream of channel {self.channel}")
        with self._lock:
            self._pending = list(streams)
        self._wake.set()

    async def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._supervise, name=f"vigil-channel-{self.channel}", daemon=True
        )
        self._thread.start()
        log.info("channel %d started", self.channel)

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        await asyncio.to_thread(thread.join)
        log.info("channel %d stopped", self.channel)

    async def snapshot(self, width: int, height: int, quality: int = 80) -> bytes:
        """A JPEG of the latest captured frame, encoded in a thread."""
        latest = self._latest
        if latest is None:
            raise SnapshotUnavailable(f"channel {self.channel} has no picture")
        return await asyncio.to_thread(snapshot_jpeg, latest.frame, width, height, quality)

    def set_overlay(self, overlay: Overlay | None) -> None:
        """Draw `overlay` into every frame from the next one on (None: draw nothing)."""
        self._overlay = overlay  # one reference swapped: the thread reads it once per frame

    def add_tap(self, callback: TapCallback, max_fps: float, luma: bool = True) -> FrameTap:
        """Call `callback` in the capture thread with at most `max_fps` pictures a second."""
        tap = FrameTap(interval=1 / max_fps, callback=callback, luma=luma)
        with self._tap_lock:
            self._taps = (*self._taps, tap)
        return tap

    def remove_tap(self, tap: FrameTap) -> None:
        """After this returns the tap is not called again (a call under way is waited for)."""
        with self._tap_lock:
            self._taps = tuple(t for t in self._taps if t is not tap)

    @property
    def stats(self) -> dict[int, dict[str, float | int | str]]:
        """Per stream: frames encoded, frames dropped (the loop too slow), last encode time."""
        return {stream_id: dict(values) for stream_id, values in self._stats.items()}

    # -- worker thread ------------------------------------------------------------------------
    def _supervise(self) -> None:
        backoff = BACKOFF_FIRST_S
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._run()
            except Exception:
                if time.monotonic() - started > HEALTHY_RUN_S:
                    backoff = BACKOFF_FIRST_S
                log.exception(
                    "channel %d: capture loop failed; restarting in %.1f s", self.channel, backoff
                )
                self._close_source()
                self._reset_streams()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        self._close_source()
        self._streams = {}

    def _run(self) -> None:
        while not self._stop.is_set():
            self._apply_pending()
            if not self._streams:
                self._close_source()
                self._wake.wait()  # nothing to encode: no capture until configured
                self._wake.clear()
                continue
            if not self._ensure_source():
                continue
            try:
                captured = self._source.read(self._read_timeout())
            except SourceLost as exc:
                self._lost(exc)
                continue
            overlay = self._overlay
            if overlay is not None:
                captured = overlay.mask(captured)
            if self._taps:
                self._feed_taps(captured)  # masked, without the OSD text (see vigil.media.osd)
            if overlay is not None:
                overlay.label(captured.frame)
            self._latest = captured
            self._encode(captured)

    def _read_timeout(self) -> float:
        fps = self._source.fps or 1
        return max(READ_TIMEOUT_MIN_S, 3 / fps)

    def _encode(self, captured: CapturedFrame) -> None:
        source_interval = 1 / (self._source.fps or 1)
        for stream_id, stream in self._streams.items():
            if not stream.take(captured, source_interval):
                continue
            begun = time.perf_counter()
            units = stream.encoder.encode(captured)
            stream.last_encode_ms = (time.perf_counter() - begun) * 1000
            stream.encoded += 1
            self._stats[stream_id].update(_stats_of(stream))
            for unit in units:
                self._hand_over(unit)

    def _feed_taps(self, captured: CapturedFrame) -> None:
        source_interval = 1 / (self._source.fps or 1)
        luma = None
        with self._tap_lock:
            for tap in self._taps:
                if not tap.take(captured, source_interval):
                    continue
                if tap.luma and luma is None:
                    luma = self._luma(captured)
                try:
                    tap.callback(captured.captured_at, luma if tap.luma else None)
                except Exception:  # a consumer's failure must not stop capture and encoding
                    log.exception("channel %d: a frame tap failed; removing it", self.channel)
                    self.remove_tap(tap)

    def _luma(self, captured: CapturedFrame) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """The Y plane at the sub stream's size: scaled in swscale, one copy owned by the taps."""
        if self._tap_scaler is None:
            self._tap_scaler = VideoReformatter()
        width, height = self._tap_size
        gray = self._tap_scaler.reformat(captured.frame, width, height, "gray")
        # A view of the plane (with its line padding): a compact copy of its own, so the
        # consumer holds neither the frame nor the captured picture itself.
        return gray.to_ndarray().copy()

    def _hand_over(self, unit: AccessUnit) -> None:
        try:
            self._loop.call_soon_threadsafe(self._publish, unit)
        except RuntimeError:  # the loop is closed: the daemon is going down
            self._stop.set()

    # -- configuration (worker thread) --------------------------------------------------------
    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        self._configured = pending
        wanted = {s.id: s for s in pending if s.enabled}
        for stream_id in list(self._streams):
            if stream_id not in wanted:
                del self._streams[stream_id]
                log.info("channel %d: stream %d stopped", self.channel, stream_id)
        for stream_id, settings in sorted(wanted.items()):
            current = self._streams.get(stream_id)
            if current is not None and _encoder_key(current.settings) == _encoder_key(settings):
                current.settings = settings
                continue
            try:
                # A new encoder: its first unit is a keyframe with the new parameters.
                encoder = VideoEncoder(
                    stream_id,
                    settings,
                    self._hardware_h264,
                    epoch=self._epoch,
                    after_pts=current.encoder.last_pts if current is not None else -1,
                )
            except Exception:  # one stream's bad settings must not stop the others
                log.exception("channel %d: stream %d cannot be encoded", self.channel, stream_id)
                self._streams.pop(stream_id, None)
                continue
            self._streams[stream_id] = _Stream(
                settings=settings, encoder=encoder, interval=1 / settings.fps
            )
        self._tap_size = self._sub_size(pending)
        # A new dict, swapped in whole: the event loop may be reading the old one.
        self._stats = {stream_id: _stats_of(stream) for stream_id, stream in self._streams.items()}
        if self._streams and self._source_open and self._source_need() != self._source_request:
            log.info(
                "channel %d: capture needs %dx%d@%d now; reopening the source",
                self.channel, *self._source_need(),
            )  # fmt: skip
            self._close_source()

    def _sub_size(self, streams: list[StreamSettings]) -> tuple[int, int]:
        """The sub stream's size (enabled or not), else the smallest stream's."""
        sub = [s for s in streams if s.id == self.channel * 100 + SUB_STREAM]
        chosen = sub or sorted(streams, key=lambda s: s.width * s.height)
        return (chosen[0].width, chosen[0].height) if chosen else (640, 360)

    def _source_need(self) -> tuple[int, int, int]:
        streams = [s.settings for s in self._streams.values()]
        return (
            max(s.width for s in streams),
            max(s.height for s in streams),
            max(s.fps for s in streams),
        )

    def _reset_streams(self) -> None:
        """After a failure the encoders may be in any state: rebuild them all at the next frame."""
        with self._lock:
            if self._pending is None:
                self._pending = list(self._configured)
        self._streams = {}

    # -- the source (worker thread) -----------------------------------------------------------
    def _ensure_source(self) -> bool:
        """Open the source if it is closed; False (after a back-off wait) if it cannot be."""
        if self._source_open:
            return True
        need = self._source_need()
        try:
            self._source.open(*need)
        except SourceLost as exc:
            self._lost(exc)
            return False
        self._source_open = True
        self._source_request = need
        for paced in (*self._streams.values(), *self._taps):
            paced.due = None  # a new capture clock
        if self._lost_since is not None:
            log.info(
                "channel %d: source back after %.1f s (%dx%d@%d)",
                self.channel, time.monotonic() - self._lost_since, *self._source.size,
                self._source.fps,
            )  # fmt: skip
            self._lost_since = None
            self._retry = BACKOFF_FIRST_S
        return True

    def _lost(self, exc: SourceLost) -> None:
        """Log the loss once, close the source, and wait before the next attempt."""
        self._close_source()
        self._latest = None
        if self._lost_since is None:
            self._lost_since = time.monotonic()
            self._retry = BACKOFF_FIRST_S
            log.warning("channel %d: source lost: %s; retrying", self.channel, exc)
        else:
            log.debug("channel %d: source still unavailable: %s", self.channel, exc)
        self._stop.wait(self._retry)
        self._retry = min(self._retry * 2, BACKOFF_MAX_S)

    def _close_source(self) -> None:
        if not self._source_open:
            return
        self._source_open = False
        try:
            self._source.close()
        except Exception:  # a broken source must not stop the channel from going on
            log.warning("channel %d: closing the source failed", self.channel, exc_info=True)
