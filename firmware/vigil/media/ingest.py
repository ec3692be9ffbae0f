"""RtspIngest: another camera's RTSP stream into a StreamHub as it is (no decoding, no re-encoding).

The RTSP client is Vigil's own (`rtsp_pull.RtspPull`), on the event loop: interleaved RTP over
TCP read in large chunks and depacketized into access units, each published into the hub
where it is assembled, with no thread and no hand-over. What the rest of the media plane
relies on is made true here:

- Annex B with parameter sets in band on every keyframe. Many cameras send SPS/PPS (and VPS)
  only in the SDP's `sprop-*` or only on the first keyframe; the latest sets seen, in band or
  in the SDP, go in front of any keyframe that lacks them, so a recorder or a client can start
  on any keyframe. A session's units before its first keyframe are not published (nothing
  can start on them), and the picture size is read from the SPS.
- pts on the 90 kHz clock, increasing across reconnects: each session's RTP timestamps are
  anchored where the previous session's ended plus the time that passed, so the hub's RTP
  timestamps and the recorder's timeline carry on (a recorder sees the outage as a gap).
- `captured_at` is the arrival time (`time.monotonic()`): the best this side knows of it.

A source that goes away (refused, closed, or without media for `read_timeout` seconds) is
retried with doubling back-off; each change of state is one log line. `stop` ends the session
(TEARDOWN) at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from vigil.media.frames import RTP_CLOCK, AccessUnit
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer
from vigil.media.rtsp_pull import PullError, RtspPull, Track
from vigil.media.sps import h264_size, h265_size

log = logging.getLogger(__name__)

START_CODE = b"\x00\x00\x00\x01"
# H.264: SPS, PPS (AUD 9). H.265: VPS, SPS, PPS (AUD 35). A slice ends the search for sets.
PARAMETER_SET_TYPES = {"H264": (7, 8), "H265": (32, 33, 34)}
SPS_TYPE = {"H264": 7, "H265": 33}
AUD_TYPE = {"H264": 9, "H265": 35}
# A pts step this much longer than the time between arrivals is the source's own discontinuity
# (its encoder restarted): the timeline is anchored again on arrival time.
MAX_PTS_LEAD = 2 * RTP_CLOCK
BACKOFF_S = (1.0, 30.0)
# The sockets of all ingests are read together at most this often (`RtspPull._pause`): one
# wake-up for every camera's frames (a few of them) instead of one per frame per camera, for
# at most this much delay (a recorder does not mind; a live view over RTSP hardly notices).
READ_EVERY_S = 0.1
# While only recorders take a stream, half a second: a recorder minds no delay, and one
# wake-up for five frames costs the NVR half the CPU of one for two or three. The bound on
# loss at a power cut still holds: a fragment (1 s) and this is less than 2 s.
UNWATCHED_READ_EVERY_S = 0.5


def nal_type(codec: str, nal: memoryview | bytes) -> int:
    return nal[0] & 0x1F if codec == "H264" else (nal[0] >> 1) & 0x3F


def is_slice(codec: str, kind: int) -> bool:
    return 1 <= kind <= 5 if codec == "H264" else kind <= 31


def nal_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each NAL unit of Annex B `data`, start codes excluded."""
    spans: list[tuple[int, int]] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        begin = start + 3
        start = data.find(b"\x00\x00\x01", begin)
        end = len(data) if start < 0 else start
        while end > begin and data[end - 1] == 0:  # a NAL unit never ends in a zero byte
            end -= 1
        if end > begin:
            spans.append((begin, end))
    return spans


class ParameterSetKeeper:
    """The latest parameter sets of a stream, and keyframes completed with them."""

    def __init__(self, codec: str, extradata: bytes | None) -> None:
        self.codec = codec
        self.kinds = PARAMETER_SET_TYPES[codec]
        self.sets: dict[int, bytes] = {}
        self.inserted = 0  # keyframes that needed sets from here
        if extradata and extradata[:3] in (b"\x00\x00\x01", b"\x00\x00\x00"):
            self._scan(extradata)  # Annex B, as libavformat builds it from the SDP
        elif extradata:
            log.debug("%s extradata is not Annex B; only in-band parameter sets are used", codec)

    def _scan(self, data: bytes) -> tuple[set[int], int]:
        """Remember the sets before the first slice; (kinds found, offset to insert at)."""
        found: set[int] = set()
        insert_at = 0
        for begin, end in nal_spans(data):
            kind = nal_type(self.codec, data[begin : begin + 2])
            if kind in self.kinds:
                self.sets[kind] = data[begin:end]
                found.add(kind)
            elif kind == AUD_TYPE[self.codec] and not found:
                insert_at = end  # the delimiter stays first in its access unit
            elif is_slice(self.codec, kind):
                break
        return found, insert_at

    def complete(self, keyframe: bytes) -> bytes:
        """`keyframe` with every kind of parameter set in front of its first slice."""
        found, insert_at = self._scan(keyframe)
        missing = [self.sets[k] for k in self.kinds if k not in found and k in self.sets]
        if not missing:
            return keyframe
        self.inserted += 1
        extra = b"".join(START_CODE + nal for nal in missing)
        return keyframe[:insert_at] + extra + keyframe[insert_at:]


class Timeline:
    """Source timestamps -> this stream's 90 kHz pts, increasing across sessions."""

    def __init__(self) -> None:
        self.last_pts: int | None = None
        self._last_arrival = 0.0
        self._offset: int | None = None

    def new_session(self) -> None:
        self._offset = None

    def map(self, ticks: int | None, arrival: float) -> int:
        """The output pts of a unit with source pts `ticks` (None if unknown) arriving now."""
        last = self.last_pts
        elapsed = max(1, round((arrival - self._last_arrival) * RTP_CLOCK))
        expected = 0 if last is None else last + elapsed
        if ticks is None:
            pts = expected
        else:
            if self._offset is not None and last is not None:
                pts = ticks + self._offset
                if pts <= last or pts > last + elapsed + MAX_PTS_LEAD:
                    self._offset = None  # a discontinuity in the source's own clock
            if self._offset is None:
                self._offset = expected - ticks
            pts = ticks + self._offset
        if last is not None and pts <= last:
            pts = last + 1
        self.last_pts = pts
        self._last_arrival = arrival
        return pts


@dataclass
class IngestStats:
    state: str = "idle"  # idle, connecting, streaming, waiting, stopped
    connects: int = 0  # sessions that delivered a first unit
    failures: int = 0  # attempts that failed and sessions that were lost
    units: int = 0
    bytes: int = 0  # access unit bytes published (after any parameter sets inserted)
    keyframes: int = 0
    sets_inserted: int = 0  # keyframes that got parameter sets from the SDP or earlier ones
    last_error: str = ""


class SessionLost(Exception):
    """The source ended the stream, stalled, or sent what cannot be published."""


class RtspIngest:
    def __init__(
        self,
        url: str,
        stream_id: int,
        hub: StreamHub,
        *,
        open_timeout: float = 10.0,
        read_timeout: float = 5.0,
        backoff: tuple[float, float] = BACKOFF_S,
        options: dict[str, str] | None = None,
        read_every: float = READ_EVERY_S,
        unwatched_read_every: float = UNWATCHED_READ_EVERY_S,
    ) -> None:
        """`read_timeout`: a source without media this long is lost (well within SPEC's 10 s).
        `options`: only `rtsp_transport=tcp` (interleaved) is supported, and is the default."""
        transport = (options or {}).get("rtsp_transport", "tcp")
        if transport != "tcp":
            raise ValueError(f"rtsp_transport {transport!r}: only tcp is supported")
        self.url = url
        self.stream_id = stream_id
        self.hub = hub
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.read_every = read_every  # while the hub is watched (a viewer), else:
        self.unwatched_read_every = unwatched_read_every
        self._pull: RtspPull | None = None
        self.backoff = backoff
        self.stats = IngestStats()
        self._timeline = Timeline()
        self._task: asyncio.Task[None] | None = None
        self._delivered = False  # the current session has published a unit
        # The current session's state.
        self._codec = "H264"
        self._keeper = ParameterSetKeeper("H264", None)
        self._sps = b""
        self._size = (0, 0)
        self._ts32 = -1  # the last RTP timestamp, and its value unwrapped
        self._ticks = 0

    # -- control ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._run(), name=f"vigil-ingest-{self.stream_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._set_state("stopped", "stopped")

    @property
    def running(self) -> bool:
        return self._task is not None

    # -- sessions -----------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.backoff[0]
        reported = ""  # the failure last logged: a source that stays down logs once
        while True:
            self._set_state("connecting", f"connecting to {self._safe_url()}", quiet=bool(reported))
            self._delivered = False
            try:
                await self._session()
                reason = "the source ended the stream"
            except (OSError, PullError, SessionLost) as exc:
                reason = (str(exc) or type(exc).__name__).replace(self.url, self._safe_url())
            except Exception as exc:  # a bug must not end the ingest: log it, retry
                log.exception("stream %d: ingest failed", self.stream_id)
                reason = repr(exc)
            self.stats.failures += 1
            self.stats.last_error = reason
            if self._delivered:
                delay = self.backoff[0]  # it streamed: this outage starts the back-off afresh
                reported = ""
            message = f"source lost ({reason}); retrying in {delay:g} s"
            self._set_state("waiting", message, quiet=reason == reported)
            reported = reason
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _session(self) -> None:
        """One connection, played until it ends, stalls or the ingest stops."""
        pull = RtspPull(self.url, self._on_unit, self._on_track, read_every=self._pacing())
        self._pull = pull
        try:
            try:
                await asyncio.wait_for(pull.open(), self.open_timeout)
            except TimeoutError:
                raise SessionLost(f"no answer within {self.open_timeout:g} s") from None
            await self._watch(pull)
        finally:
            self._pull = None
            pull.close()  # sends TEARDOWN while the connection is up

    def _on_track(self, track: Track) -> None:
        """The session's track, before its first unit."""
        self._codec = track.codec
        self._keeper = ParameterSetKeeper(track.codec, track.parameter_sets or None)
        self._sps = b""
        self._size = (0, 0)
        self._learn_size()
        self._ts32 = -1
        self._timeline.new_session()
        self._ensure_codec(track.codec)

    async def _watch(self, pull: RtspPull) -> None:
        """Until the connection ends or the media stops; keeps the RTSP session alive."""
        assert pull.closed is not None
        keepalive_at = time.monotonic() + pull.keepalive_s
        while True:
            now = time.monotonic()
            silent_at = pull.last_media + self.read_timeout
            if now >= silent_at:
                raise SessionLost(f"no media for {self.read_timeout:g} s")
            if now >= keepalive_at:
                pull.keep_alive()
                keepalive_at = now + pull.keepalive_s
            await asyncio.wait((pull.closed,), timeout=min(silent_at, keepalive_at) - now)
            if pull.closed.done():
                raise SessionLost(pull.closed.result())

    def _on_unit(self, data: bytes, timestamp: int, keyframe: bool, arrival: float) -> None:
        """One access unit from the connection (on the event loop)."""
        if keyframe:
            completed = self._keeper.complete(data)
            self.stats.sets_inserted += completed is not data
            data = completed
            self._learn_size()
        elif not self._delivered:
            return  # nothing can start on it
        if self._ts32 < 0:
            self._ticks = timestamp
        else:
            step = (timestamp - self._ts32) & 0xFFFFFFFF
            self._ticks += step - (1 << 32) if step >= 1 << 31 else step
        self._ts32 = timestamp
        pts = self._timeline.map(self._ticks, arrival)
        width, height = self._size
        au = AccessUnit(self.stream_id, self._codec, data, pts, keyframe, arrival, width, height)
        if not self._delivered:
            self._delivered = True
            self.stats.connects += 1
            self._set_state("streaming", f"streaming {self._codec} {width}x{height}")
        self.stats.units += 1
        self.stats.bytes += len(data)
        self.stats.keyframes += keyframe
        self.hub.publish(au)
        pull, every = self._pull, self._pacing()
        if pull is not None and pull.read_every != every:
            pull.pace(every)

    def _pacing(self) -> float:
        """How often to read the source: often while someone watches, else seldom."""
        return self.read_every if self.hub.watched else self.unwatched_read_every

    def _learn_size(self) -> None:
        """The picture size from the latest SPS, when it changed."""
        sps = self._keeper.sets.get(SPS_TYPE[self._codec], b"")
        if sps and sps != self._sps:
            self._sps = sps
            try:
                self._size = (h264_size if self._codec == "H264" else h265_size)(sps)
            except ValueError as exc:
                log.warning("stream %d: unreadable SPS (%s)", self.stream_id, exc)

    def _ensure_codec(self, codec: str) -> None:
        """A camera switched codecs: the hub's description (and its sessions) must change."""
        if self.hub.packetizer.encoding_name != codec:
            log.info("stream %d: the source is now %s", self.stream_id, codec)
            self.hub.replace_packetizer(make_packetizer(codec))

    # -- helpers ------------------------------------------------------------------------------
    def _set_state(self, state: str, message: str, *, quiet: bool = False) -> None:
        """Log a change of state; `quiet` ones (the same failure again) only at debug level."""
        self.stats.state = state
        level = logging.WARNING if state == "waiting" else logging.INFO
        log.log(logging.DEBUG if quiet else level, "stream %d: %s", self.stream_id, message)

    def _safe_url(self) -> str:
        """The URL without its password, for the log."""
        scheme, _, rest = self.url.partition("://")
        credentials, at, host = rest.rpartition("@")
        if not at:
            return self.url
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
