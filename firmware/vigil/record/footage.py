"""Recorded footage read back as access units, and the playback URIs that name a span of it.

`read_footage` is the one reader behind RTSP playback and download. It walks the index rows
that overlap the span, oldest first, and each file's fragments as `fmp4.read_layout` finds
them, so a segment still being written is read up to its last complete fragment and a file
deleted meanwhile (overwritten) is skipped. It starts at the keyframe at or before the start,
so a decoder can begin there, and stops at the first unit at or after the end. Units come
back as the encoder made them: Annex B, with the parameter sets (which the file keeps in its
sample entry) in front of every keyframe, and pts on the stream's 90 kHz clock.

Which fragment to begin with is known from the `moof`s alone (their start time and whether
they start on a keyframe), so a span that starts late in a 60 s segment costs a walk over
box headers, not a read of the minute before it. Only the GOP that leads up to the start is
held in memory.

Across files the pts are the recorded ones: continuous while the recording was, but after a
gap (or a restart of the daemon, when the encoder's clock starts again) they jump, also
backwards; `at_us` and `duration` are what a caller lays a timeline on. Overlapping footage
(two files of one stream claiming the same instant after the wall clock was set back) is
read once: a unit not later than the last one given is dropped, up to the next keyframe.

Playback URIs are Hikvision's: `rtsp://host[:port]/Streaming/tracks/101/?starttime=...Z&
endtime=...Z`, times in UTC as `yyyymmddThhmmssZ`. Parsing accepts that form (with optional
fractional seconds) and ISO 8601 with `Z` or an offset; a time without a zone is refused,
since which zone it meant cannot be known.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from vigil.media.frames import AccessUnit
from vigil.record.fmp4 import (
    FormatError,
    FragmentSpan,
    SegmentInfo,
    read_layout,
    read_samples,
    sample_entry_sets,
    to_annex_b,
)
from vigil.record.index import PAGE_LIMIT, RecordingIndex, Segment
from vigil.record.segment import ticks_to_us

log = logging.getLogger(__name__)

RTSP_DEFAULT_PORT = 554
MAX_SPAN_US = 31 * 24 * 3600 * 1_000_000  # a month: longer is a client's mistake
EARLIEST_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
_COMPACT = re.compile(r"^(\d{8})T(\d{6})(\.\d{1,6})?Z$")
_TRACK_PATH = re.compile(r"^/Streaming/tracks/(\d{1,6})/?$")


@dataclass(frozen=True, slots=True)
class RecordedUnit:
    au: AccessUnit
    at_us: int  # UTC microseconds of this unit
    segment_id: int
    duration: int  # how long the unit lasts in the recording (90 kHz ticks)


# -- reading ------------------------------------------------------------------------------------
def read_footage(
    root: Path,
    index: RecordingIndex,
    stream_id: int,
    start_us: int,
    end_us: int,
    *,
    keyframes_only: bool = False,
) -> Iterator[RecordedUnit]:
    """The units of [start_us, end_us), from the keyframe at or before `start_us`.

    Blocking (file and SQLite reads): run it in a thread. Yields nothing if there is no
    footage in the span."""
    if end_us <= start_us:
        raise ValueError("the span ends before it starts")
    lead: list[RecordedUnit] = []  # the GOP up to the start, given once the start is passed
    units = _continuous(root, _rows(index, stream_id, start_us, end_us), start_us)
    for unit in units:
        if unit.at_us >= end_us:
            break
        if unit.at_us <= start_us:
            if unit.au.keyframe:
                lead = []
            lead.append(unit)
            continue
        if lead:
            yield from _only_keyframes(lead) if keyframes_only else lead
            lead = []
        if unit.au.keyframe or not keyframes_only:
            yield unit
    # No unit came after the start (the footage or the span ended first): the lead-in still
    # holds the picture showing at the start.
    yield from _only_keyframes(lead) if keyframes_only else lead


def _only_keyframes(units: list[RecordedUnit]) -> list[RecordedUnit]:
    return [unit for unit in units if unit.au.keyframe]


def _rows(index: RecordingIndex, stream_id: int, start_us: int, end_us: int) -> Iterator[Segment]:
    """The rows overlapping the span, oldest first, a page at a time. Pages follow from the
    last row seen rather than by offset, so rows deleted meanwhile do not shift the pages."""
    after: tuple[int, int] | None = None
    query_from = start_us
    while True:
        rows = index.segments_overlapping(stream_id, query_from, end_us, limit=PAGE_LIMIT)
        fresh = [r for r in rows if after is None or (r.start_us, r.id) > after]
        yield from fresh
        if len(rows) < PAGE_LIMIT or not fresh:
            return
        after = (fresh[-1].start_us, fresh[-1].id)
        query_from = max(query_from, fresh[-1].start_us)


def _continuous(root: Path, rows: Iterator[Segment], start_us: int) -> Iterator[RecordedUnit]:
    """Every unit of the rows' files in time order, each run beginning on a keyframe."""
    last_at: int | None = None
    need_keyframe = True
    for row in rows:
        for unit in _segment_units(root, row, start_us):
            if last_at is not None and unit.at_us <= last_at:
                need_keyframe = True  # footage overlapping what was given: not twice
                continue
            if need_keyframe and not unit.au.keyframe:
                continue
            need_keyframe = False
            last_at = unit.at_us
            yield unit


def _segment_units(root: Path, row: Segment, seek_us: int) -> Iterator[RecordedUnit]:
    """The units of one file, from its last keyframe fragment at or before `seek_us`. A file
    that is gone or not readable as a recording is skipped (from where it stops making sense)."""
    try:
        f = (root / row.path).open("rb")
    except FileNotFoundError:
        log.info("%s is gone (overwritten meanwhile); skipped", row.path)
        return
    with f:
        try:
            yield from _file_units(f, row, seek_us)
        except FormatError as exc:
            log.warning("%s: unreadable footage skipped: %s", row.path, exc)


def _file_units(f: BinaryIO, row: Segment, seek_us: int) -> Iterator[RecordedUnit]:
    layout = read_layout(f)
    info = layout.info
    if info is None or not layout.fragments:
        raise FormatError(layout.problem or "no complete fragment")
    f.seek(0)
    sets = sample_entry_sets(f.read(layout.init_end))
    for span in layout.fragments[_first_fragment(info, layout.fragments, seek_us) :]:
        time = span.base_time
        for sample in read_samples(f, span):
            au = AccessUnit(
                stream_id=info.stream_id,
                codec=info.codec,
                data=to_annex_b(sample.data, sets if sample.keyframe else None),
                pts=info.start_pts + time,
                keyframe=sample.keyframe,
                captured_at=0.0,
                width=info.width,
                height=info.height,
            )
            yield RecordedUnit(au, info.start_us + ticks_to_us(time), row.id, sample.duration)
            time += sample.duration


def _first_fragment(info: SegmentInfo, fragments: list[FragmentSpan], seek_us: int) -> int:
    """The last fragment that starts on a keyframe at or before `seek_us` (else the first)."""
    chosen = 0
    for number, span in enumerate(fragments):
        if info.start_us + ticks_to_us(span.base_time) > seek_us:
            break
        if span.starts_with_keyframe:
            chosen = number
    return chosen


# -- playback URIs ------------------------------------------------------------------------------
def format_compact(at_us: int) -> str:
    """`20261121T103000Z`: whole seconds (rounded down), UTC."""
    when = datetime.fromtimestamp(at_us // 1_000_000, UTC)
    return f"{when:%Y%m%dT%H%M%S}Z"


def playback_uri(host: str, rtsp_port: int, track_id: int, start_us: int, end_us: int) -> str:
    """Hikvision's playback URI of a span. The end is rounded up to a whole second, so the URI
    covers the span whole (the reader starts at the keyframe before the start anyway)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    authority = host if rtsp_port == RTSP_DEFAULT_PORT else f"{host}:{rtsp_port}"
    end_whole = -(-end_us // 1_000_000) * 1_000_000
    return (
        f"rtsp://{authority}/Streaming/tracks/{track_id}/"
        f"?starttime={format_compact(start_us)}&endtime={format_compact(end_whole)}"
    )


def parse_time(text: str) -> int:
    """UTC microseconds of `yyyymmddThhmmss[.ffffff]Z` or an ISO 8601 time with a zone."""
    text = text.strip()
    compact = _COMPACT.match(text)
    try:
        if compact:
            day, clock, fraction = compact.groups()
            when = datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            when += timedelta(microseconds=round(float(fraction or 0) * 1_000_000))
        else:
            when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time (yyyymmddThhmmssZ or ISO 8601)") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (end it with Z or an offset)")
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_footage_times(starttime: str, endtime: str | None) -> tuple[int, int]:
    """(start_us, end_us) of a request for footage. Without an end the span is open: it runs
    as far as the longest span allowed, which in practice means to the end of the footage."""
    start_us = parse_time(starttime)
    end_us = start_us + MAX_SPAN_US if endtime is None else parse_time(endtime)
    if start_us < EARLIEST_US:
        raise ValueError(f"starttime {starttime} is before 2000")
    if end_us <= start_us:
        raise ValueError(f"endtime {endtime} is not after starttime {starttime}")
    if end_us - start_us > MAX_SPAN_US:
        raise ValueError("the span is longer than 31 days")
    return start_us, end_us


def parse_playback_uri(uri: str) -> tuple[int, int, int]:
    """(track_id, start_us, end_us) of a playback URI; other query parameters (name, size,
    as Hikvision clients add them) are ignored. ValueError says what is wrong."""
    parts = urlsplit(uri.strip())
    if parts.scheme.lower() != "rtsp":
        raise ValueError("a playback URI is rtsp://")
    track = _TRACK_PATH.match(parts.path)
    if track is None:
        raise ValueError("a playback URI's path is /Streaming/tracks/<track>/")
    # Not `parse_qs`: it reads '+' as a space, and '+' begins a time's UTC offset.
    query: dict[str, list[str]] = {}
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        query.setdefault(unquote(key).lower(), []).append(unquote(value))
    starts, ends = query.get("starttime", []), query.get("endtime", [])
    if len(starts) != 1 or len(ends) > 1:
        raise ValueError("a playback URI has one starttime and at most one endtime")
    start_us, end_us = parse_footage_times(starts[0], ends[0] if ends else None)
    return int(track.group(1)), start_us, end_us
