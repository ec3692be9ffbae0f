"""RtspIngest: another camera's RTSP stream into a StreamHub as it is (no decoding, no re-encoding).

PyAV (libavformat's RTSP client and its H.264/H.265 parser) pulls the stream over TCP in a
thread of its own; each packet it yields is one access unit, published on the event loop. What
the rest of the media plane relies on is made true here:

- Annex B with parameter sets in band on every keyframe. Many cameras send SPS/PPS (and VPS)
  only in the SDP's `sprop-*` (libavformat puts them in the codec's extradata) or only on the
  first keyframe; the latest sets seen, in band or in the extradata, go in front of any
  keyframe that lacks them, so a recorder or a client can start on any keyframe.
- pts on the 90 kHz clock, increasing across reconnects: each session's timestamps are
  anchored where the previous session's ended plus the time that passed, so the hub's RTP
  timestamps and the recorder's timeline carry on (a recorder sees the outage as a gap).
- `captured_at` is the arrival time (`time.monotonic()`): the best this side knows of it.

A source that goes away (refused, closed, or silent for `read_timeout` seconds) is retried with
doubling back-off; each change of state is one log line. `stop` ends the session (TEARDOWN)
within about `read_timeout` at worst: libavformat's blocking read cannot be interrupted sooner
from Python, and a live stream wakes it every frame anyway.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from vigil.media.frames import RTP_CLOCK, AccessUnit
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer

log = logging.getLogger(__name__)

CODECS = {"h264": "H264", "hevc": "H265"}  # libavcodec name -> AccessUnit codec
START_CODE = b"\x00\x00\x00\x01"
# H.264: SPS, PPS (AUD 9). H.265: VPS, SPS, PPS (AUD 35). A slice ends the search for sets.
PARAMETER_SET_TYPES = {"H264": (7, 8), "H265": (32, 33, 34)}
AUD_TYPE = {"H264": 9, "H265": 35}
# A pts step this much longer than the time between arrivals is the source's own discontinuity
# (its encoder restarted): the timeline is anchored again on arrival time.
MAX_PTS_LEAD = 2 * RTP_CLOCK
BACKOFF_S = (1.0, 30.0)


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
    ) -> None:
        """`read_timeout`: a source silent this long is lost (well within SPEC's 10 s)."""
        self.url = url
        self.stream_id = stream_id
        self.hub = hub
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.backoff = backoff
        self.options = {"rtsp_transport": "tcp", **(options or {})}
        self.stats = IngestStats()
        self._timeline = Timeline()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivered = False  # the current session has published a unit

    # -- control (event loop) -----------------------------------------------------------------
    async def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"vigil-ingest-{self.stream_id}", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        await asyncio.to_thread(thread.join)
        self._set_state("stopped", "stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None

    # -- the ingest thread --------------------------------------------------------------------
    def _run(self) -> None:
        delay = self.backoff[0]
        reported = ""  # the failure last logged: a source that stays down logs once
        while not self._stop.is_set():
            self._set_state("connecting", f"connecting to {self._safe_url()}", quiet=bool(reported))
            self._delivered = False
            try:
                self._session()
                reason = "the source ended the stream"
            except (av.FFmpegError, OSError, SessionLost) as exc:
                # libavformat's messages quote the URL, credentials included.
                reason = (str(exc) or type(exc).__name__).replace(self.url, self._safe_url())
            except Exception as exc:  # a bug must not end the ingest: log it, retry
                log.exception("stream %d: ingest failed", self.stream_id)
                reason = repr(exc)
            if self._stop.is_set():
                return
            self.stats.failures += 1
            self.stats.last_error = reason
            if self._delivered:
                delay = self.backoff[0]  # it streamed: this outage starts the back-off afresh
                reported = ""
            message = f"source lost ({reason}); retrying in {delay:g} s"
            self._set_state("waiting", message, quiet=reason == reported)
            reported = reason
            self._stop.wait(delay)
            delay = min(delay * 2, self.backoff[1])

    def _session(self) -> None:
        """One connection, demuxed until it ends, stalls or the ingest stops."""
        container: Any = av.open(
            self.url, options=self.options, timeout=(self.open_timeout, self.read_timeout)
        )
        try:
            if not container.streams.video:
                raise SessionLost("the source has no video track")
            stream = container.streams.video[0]
            codec = CODECS.get(stream.codec_context.name)
            if codec is None:
                raise SessionLost(f"{stream.codec_context.name} cannot be ingested")
            self._demux(container, stream, codec)
        finally:
            container.close()  # sends TEARDOWN while the connection is up

    def _demux(self, container: Any, stream: Any, codec: str) -> None:
        context = stream.codec_context
        keeper = ParameterSetKeeper(codec, context.extradata)
        scale = Fraction(stream.time_base or Fraction(1, RTP_CLOCK)) * RTP_CLOCK  # RTSP: 1
        width, height = context.width, context.height
        self._timeline.new_session()
        self._call(self._ensure_codec, codec)
        for packet in container.demux(stream):
            if self._stop.is_set():
                break
            if packet.size == 0:
                continue  # the flush packet at the end of the stream
            arrival = time.monotonic()
            ticks = packet.pts if packet.pts is not None else packet.dts
            if ticks is not None and scale != 1:
                ticks = round(ticks * scale)
            pts = self._timeline.map(ticks, arrival)
            data = bytes(packet)
            if packet.is_keyframe:
                completed = keeper.complete(data)
                self.stats.sets_inserted += completed is not data
                data = completed
            au = AccessUnit(
                self.stream_id, codec, data, pts, packet.is_keyframe, arrival, width, height
            )
            if not self._delivered:
                self._delivered = True
                self.stats.connects += 1
                self._set_state("streaming", f"streaming {codec} {width}x{height}")
            self._call(self._publish, au)

    # -- on the event loop --------------------------------------------------------------------
    def _call(self, function: Any, *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(function, *args)
        except RuntimeError:  # the loop is closed: the daemon is going down
            self._stop.set()

    def _ensure_codec(self, codec: str) -> None:
        """A camera switched codecs: the hub's description (and its sessions) must change."""
        if self.hub.packetizer.encoding_name != codec:
            log.info("stream %d: the source is now %s", self.stream_id, codec)
            self.hub.replace_packetizer(make_packetizer(codec))

    def _publish(self, au: AccessUnit) -> None:
        self.stats.units += 1
        self.stats.bytes += len(au.data)
        self.stats.keyframes += au.keyframe
        self.hub.publish(au)

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
