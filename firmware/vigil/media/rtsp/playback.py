"""RTSP playback of recordings: what a request names and asks for, and how footage is described.

URLs are Hikvision's (SPEC §1): `rtsp://host/Streaming/tracks/101?starttime=20261121T101500Z&
endtime=20261121T102000Z`, the track id being the recorded stream id; a trailing slash before
`?`, `/ISAPI` in front, any case, and other query parameters (`name=`, `size=`) are accepted.
The times are read by `vigil.record.footage.parse_footage_times` (an `endtime` may be left out:
the footage then runs to its end); a missing or unreadable time is 400, a span with no footage
404, and the user needs the `playBack` permission (the server asks a second `RtspAuth`).

What this server chose, where RFC 2326 and the vendors leave room:
- The description (DESCRIBE) is the recorded codec's, with the parameter sets of the first
  keyframe of the span, and `a=range:npt=0-<duration>` (the form FFmpeg and GStreamer read):
  npt 0 is `starttime`, the duration runs to `endtime` or to the end of the footage if that is
  earlier. The `Content-Base` is the track's URL without the query (`.../tracks/101/`), and the
  track's control, `trackID=1?starttime=...&endtime=...`, carries the span, so that SETUP
  (which creates the session) knows what it plays whichever way the client joins the two.
- PLAY's `Range` seeks: `npt=<s>-[<s>]` from starttime (seconds or h:mm:ss), `clock=<UTC>-
  [<UTC>]` absolute (`yyyymmddThhmmss[.fff]Z`); the reply answers in the unit asked. Outside
  the span is 457, another unit (smpte) 501, a malformed value 400. Without `Range` a PLAY
  resumes where the session stopped (paused, or at its start).
- `Scale` (forward only): 1/2, 1, 2, 4, 8; a value in between is played at the nearest of
  them (RFC 2326 §12.34: the server approximates and answers with the `Scale` it uses); a
  negative, zero or out-of-span value is 457, a non-number 400. Above 2 only keyframes are sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vigil.media.frames import AccessUnit
from vigil.media.rtp import make_packetizer
from vigil.media.rtsp.messages import NotFound, RtspError
from vigil.media.rtsp.sdp import TRACK_CONTROL, build_sdp
from vigil.record.footage import parse_footage_times, parse_time, read_footage
from vigil.record.index import RecordingIndex

PLAYBACK_PERMISSION = "playBack"
SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)
KEYFRAMES_ONLY_ABOVE = 2.0  # faster than this, every frame would be more than a card gives

# Where the recordings are now: (root, index), or None while no card holds footage.
Recordings = Callable[[], tuple[Path, RecordingIndex] | None]

_ANY_PLAYBACK_PATH = re.compile(r"/(?:isapi/)?streaming/tracks(?:/.*)?", re.IGNORECASE)
_TRACK_PATH = re.compile(
    r"(/(?:isapi/)?streaming/tracks/(\d{1,6}))(?:/trackid=(\d{1,3}))?/*", re.IGNORECASE
)
_SECONDS = re.compile(r"\d{1,9}(?:\.\d{0,9})?")
_CLOCK_TIME = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d{0,9})?)")
_SCALE = re.compile(r"-?\d{1,3}(?:\.\d{1,9})?")


def is_playback_uri(uri: str) -> bool:
    """Whether a request names recordings (`/Streaming/tracks/...`) rather than a live stream."""
    try:
        path = unquote(urlsplit(uri).path)
    except ValueError:
        return False
    return _ANY_PLAYBACK_PATH.fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class PlaybackTarget:
    """What a playback URL names: a track, a span of it, and the track number for SETUP."""

    track_id: int
    start_us: int
    end_us: int
    track: int | None  # the `trackID=` of a SETUP URL; None for the whole presentation
    base: str  # `.../Streaming/tracks/101/`, without the query: the Content-Base
    span: str  # `starttime=...&endtime=...` as the client wrote them

    @property
    def control(self) -> str:
        """The track's control in the SDP, relative to `base`, with the span."""
        return f"{TRACK_CONTROL}?{self.span}"


def _query(query: str) -> dict[str, str]:
    """The query's parameters by lower-case name. Not `parse_qs`: it reads '+' as a space,
    and '+' begins a time's UTC offset. A repeated name is refused."""
    found: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        name = unquote(name).lower()
        if name in found:
            raise RtspError(400, f"{name} given twice")
        found[name] = value
    return found


def parse_playback_target(uri: str) -> PlaybackTarget:
    """`rtsp://host/Streaming/tracks/101[/trackID=1][/]?starttime=...[&endtime=...]`."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise NotFound("unparsable URL") from None
    match = _TRACK_PATH.fullmatch(unquote(parts.path))
    if match is None:
        raise NotFound("no such track")
    query = _query(parts.query)
    starttime, endtime = query.get("starttime"), query.get("endtime")
    if not starttime:
        raise RtspError(400, "playback needs a starttime")
    try:
        start_us, end_us = parse_footage_times(
            unquote(starttime), unquote(endtime) if endtime is not None else None
        )
    except ValueError as error:
        raise RtspError(400, str(error)) from None
    span = f"starttime={starttime}" + (f"&endtime={endtime}" if endtime is not None else "")
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme else ""
    track = int(match.group(3)) if match.group(3) is not None else None
    return PlaybackTarget(
        int(match.group(2)), start_us, end_us, track, f"{origin}{match.group(1)}/", span
    )


# -- PLAY: Range and Scale --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlayRange:
    """A PLAY's Range: where to begin (None: where the session is), where to stop (None: the
    end of the span), and whether to answer in `clock=` rather than `npt=`."""

    start_us: int | None
    stop_us: int | None
    clock: bool


def _npt(text: str, origin_us: int) -> int | None:
    """An npt-time (RFC 2326 §3.6) as UTC microseconds, npt 0 being `origin_us`."""
    text = text.strip()
    if text in ("", "now"):
        return None
    clock = _CLOCK_TIME.fullmatch(text)
    if clock:
        hours, minutes, seconds = clock.groups()
        if int(minutes) > 59 or float(seconds) >= 60:
            raise RtspError(400, f"bad npt time {text[:32]!r}")
        value = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    elif _SECONDS.fullmatch(text):
        value = float(text)
    else:
        raise RtspError(400, f"bad npt time {text[:32]!r}")
    return origin_us + round(value * 1_000_000)


def _utc(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise RtspError(400, f"bad clock time {text[:32]!r}") from None


def parse_range(header: str, start_us: int, end_us: int) -> PlayRange:
    """The Range of a PLAY within the span [start_us, end_us)."""
    spec = header.split(";", 1)[0].strip()  # a `;time=` (when to begin) is not offered
    unit, sep, value = spec.partition("=")
    unit = unit.strip().lower()
    first, dash, last = value.partition("-")
    if not sep or not dash:
        raise RtspError(400, f"bad Range {header[:64]!r}")
    if unit == "npt":
        begin, stop = _npt(first, start_us), _npt(last, start_us)
    elif unit == "clock":
        begin, stop = _utc(first), _utc(last)
    else:
        raise RtspError(501, f"Range unit {unit[:16]!r} not supported")
    if begin is not None and not start_us <= begin < end_us:
        raise RtspError(457, "the Range begins outside the footage's span")
    if stop is not None:
        if stop <= (begin if begin is not None else start_us):
            raise RtspError(457, "the Range ends before it begins")
        stop = min(stop, end_us)
    return PlayRange(begin, stop, unit == "clock")


def parse_scale(header: str) -> float:
    """The Scale to play at: the supported one nearest to what the client asked."""
    text = header.strip()
    if not _SCALE.fullmatch(text):
        raise RtspError(400, f"bad Scale {header[:32]!r}")
    value = float(text)
    if not SCALES[0] <= value <= SCALES[-1]:
        raise RtspError(457, f"Scale {text} not offered (forward, 1/2 to 8)")
    return min(SCALES, key=lambda scale: abs(math.log2(scale / value)))


def format_scale(scale: float) -> str:
    return f"{scale:g}"


def format_range(begin_us: int, stop_us: int, origin_us: int, *, clock: bool) -> str:
    """A Range header value for a reply, in the unit the client asked in."""
    if clock:
        return f"clock={_format_clock(begin_us)}-{_format_clock(stop_us)}"
    return f"npt={(begin_us - origin_us) / 1e6:.3f}-{(stop_us - origin_us) / 1e6:.3f}"


def _format_clock(at_us: int) -> str:
    seconds, micros = divmod(at_us, 1_000_000)
    when = datetime.fromtimestamp(seconds, UTC)
    return f"{when:%Y%m%dT%H%M%S}.{micros // 1000:03d}Z"


# -- DESCRIBE ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FootageInfo:
    """What a span of footage is, as far as describing and setting it up needs."""

    first: AccessUnit  # the keyframe playback begins with: codec, parameter sets, size
    end_us: int  # where its footage ends: the span's end, or the last recording's if earlier


def probe_footage(root: Path, index: RecordingIndex, target: PlaybackTarget) -> FootageInfo | None:
    """The span's first keyframe and where its footage ends; None if it has none. Blocking."""
    units = read_footage(root, index, target.track_id, target.start_us, target.end_us)
    try:
        first = next(units, None)
    finally:
        units.close()
    if first is None:
        return None
    count = index.count_overlapping(target.track_id, target.start_us, target.end_us)
    last = index.segments_overlapping(
        target.track_id, target.start_us, target.end_us, limit=1, offset=max(count - 1, 0)
    )
    end_us = min(target.end_us, last[0].end_us) if last else target.end_us
    if end_us <= target.start_us:
        return None
    return FootageInfo(first.au, end_us)


def playback_sdp(
    footage: FootageInfo, target: PlaybackTarget, *, session_id: int, server_address: str
) -> str:
    """The live description of the recorded codec, with the span's range and control."""
    packetizer = make_packetizer(footage.first.codec)
    packetizer.packetize(footage.first)  # learns the parameter sets for `fmtp`
    sdp = build_sdp(
        packetizer,
        stream_id=target.track_id,
        session_id=session_id,
        server_address=server_address,
        width=footage.first.width,
        height=footage.first.height,
    )
    duration = (footage.end_us - target.start_us) / 1e6
    sdp = sdp.replace("\r\nt=0 0\r\n", f"\r\nt=0 0\r\na=range:npt=0-{duration:.3f}\r\n", 1)
    return sdp.replace(f"a=control:{TRACK_CONTROL}\r\n", f"a=control:{target.control}\r\n", 1)
