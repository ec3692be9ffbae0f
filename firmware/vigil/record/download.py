"""An MP4 of any span of a stream's footage, stitched across segments without re-encoding.

The file is produced as it is sent: `download` yields `ftyp`+`moov` once, then one
`moof`+`mdat` per GOP (at most a second), so a download of an hour holds one fragment in
memory and starts at once. The samples are the recorded ones, byte for byte; decode times run
on from 0 without a break, with new sequence numbers from 1.

Accuracy. A decoder has to begin on a keyframe, and the keyframe at or before the requested
start can be a GOP earlier. The frames from that keyframe up to the one showing at the start
(the lead-in) stay in the file, since what follows refers to them, but each lasts one tick of
the 90 kHz clock; the frame showing at the start lasts only from the start on, and the last
frame only up to the end. Every player decodes the lead-in and shows from the start, and the
file lasts the requested span plus one tick per lead-in frame: under 3 ms for a 10 s GOP at
25 fps, far less than a frame. The `moov` also has an edit list whose one edit begins after
those ticks, so players that honour edit lists skip them exactly. An edit list alone would
not do: FFmpeg (5.1 to 8.1) only shifts the timestamps of a fragmented file by it, and reports
and plays the whole lead-in. The edit's duration is 0, which in a fragmented file means to
the end of the fragments (ISO/IEC 14496-12), as the file's length is not known when its
`moov` is sent.

Gaps. Where the recording has a hole (nothing recorded, a file overwritten meanwhile) the
footage either side is joined: the file is one continuous timeline of the footage there is,
rather than a frozen picture for the length of the hole, and is shorter than the span. A short
pause inside a recording (frames the encoder dropped when the CPU was short, a fragment
written before its next frame came) is no hole: the frame before it lasts until the next one,
as it showed live, and the file keeps the span's length.

Changes. A track has one sample entry, so the file stops where the codec, the picture size or
the parameter sets change (a reconfigured encoder); Hikvision devices split their files there
too. The client gets a shorter file and can ask again from its end. (Several sample entries
in one track could carry a new SPS, but players switch entries poorly, and not at all to
another codec or size.)
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator
from pathlib import Path

from vigil.media.frames import RTP_CLOCK
from vigil.record.fmp4 import (
    FTYP,
    ParameterSets,
    SegmentInfo,
    fragment,
    movie,
    parameter_sets,
    to_sample,
)
from vigil.record.footage import RecordedUnit, read_footage
from vigil.record.index import RecordingIndex
from vigil.record.segment import ticks_to_us

FRAGMENT_TICKS = RTP_CLOCK  # a GOP, but at most a second, per fragment
HELD_PAUSE_US = 1_000_000  # a longer pause between two frames is a hole, joined up
FRAGMENT_BYTES = 4 << 20  # and at most this much (one chunk in memory)


class NoFootage(LookupError):
    """The span holds no recorded footage of the stream."""


def us_to_ticks(us: int) -> int:
    """Microseconds to 90 kHz ticks, rounded to the nearest."""
    return (us * RTP_CLOCK + 500_000) // 1_000_000


def download(
    root: Path, index: RecordingIndex, stream_id: int, start_us: int, end_us: int
) -> Generator[bytes, None, None]:
    """The MP4 of [start_us, end_us) as chunks (the head, then a fragment each). Blocking:
    advance it in a thread. Raises NoFootage at the first chunk if there is nothing to give."""
    units = _until_change(read_footage(root, index, stream_id, start_us, end_us))
    head: list[RecordedUnit] = []
    for unit in units:  # up to the first unit after the start: the lead-in is then known
        head.append(unit)
        if unit.at_us > start_us:
            break
    if not head:
        raise NoFootage(f"no footage of stream {stream_id} in the span")
    hidden = max(sum(unit.at_us <= start_us for unit in head) - 1, 0)
    first = head[0].au
    sets = parameter_sets(first.codec, first.data)
    assert sets is not None  # a run of footage begins on a keyframe with its parameter sets
    info = SegmentInfo(stream_id, first.codec, first.width, first.height, 0, start_us, "")
    yield FTYP + movie(info, sets, (hidden, 0) if hidden else None)
    timed = _timed(itertools.chain(head, units), start_us, end_us)
    yield from _fragments(first.codec, timed)


def _until_change(units: Iterator[RecordedUnit]) -> Iterator[RecordedUnit]:
    """The units up to a change of codec, picture size or (at a keyframe) parameter sets."""
    first: tuple[str, int, int, ParameterSets | None] | None = None
    for unit in units:
        au = unit.au
        shape = (au.codec, au.width, au.height)
        if first is None:
            first = (*shape, parameter_sets(au.codec, au.data))
        elif shape != first[:3] or (au.keyframe and parameter_sets(au.codec, au.data) != first[3]):
            return
        yield unit


def _timed(
    units: Iterator[RecordedUnit], start_us: int, end_us: int
) -> Iterator[tuple[RecordedUnit, int]]:
    """Each unit with its duration in the file: one tick for the lead-in up to the frame
    showing at the start (needs the next unit: one unit of look-ahead), the rest clipped to
    the span."""
    previous: RecordedUnit | None = None
    for unit in units:
        if previous is not None:
            hidden = unit.at_us <= start_us
            ticks = _until(previous, unit)
            yield previous, 1 if hidden else _clipped(previous, ticks, start_us, end_us)
        previous = unit
    if previous is not None:
        yield previous, _clipped(previous, previous.duration, start_us, end_us)


def _until(unit: RecordedUnit, following: RecordedUnit) -> int:
    """The unit's duration, held over a short pause up to the following unit."""
    pause_us = following.at_us - (unit.at_us + ticks_to_us(unit.duration))
    if 0 < pause_us <= HELD_PAUSE_US:
        return unit.duration + us_to_ticks(pause_us)
    return unit.duration


def _clipped(unit: RecordedUnit, ticks: int, start_us: int, end_us: int) -> int:
    """The part of the unit's `ticks` that falls in [start_us, end_us) (at least one)."""
    lasts = ticks
    if unit.at_us < start_us:
        ticks -= us_to_ticks(start_us - unit.at_us)
    over = unit.at_us + ticks_to_us(lasts) - end_us
    if over > 0:
        ticks -= us_to_ticks(over)
    return max(ticks, 1)


def _fragments(codec: str, timed: Iterator[tuple[RecordedUnit, int]]) -> Iterator[bytes]:
    """`moof`+`mdat`s: a new one at each keyframe, after a second, or past FRAGMENT_BYTES."""
    sequence, base_time = 1, 0
    durations: list[int] = []
    samples: list[bytes] = []
    keys: list[bool] = []
    ticks = size = 0
    for unit, duration in timed:
        full = ticks + duration > FRAGMENT_TICKS or size >= FRAGMENT_BYTES
        if samples and (unit.au.keyframe or full):
            yield fragment(sequence, base_time, durations, samples, keys)
            sequence, base_time = sequence + 1, base_time + ticks
            durations, samples, keys, ticks, size = [], [], [], 0, 0
        sample = to_sample(codec, unit.au.data)
        durations.append(duration)
        samples.append(sample)
        keys.append(unit.au.keyframe)
        ticks += duration
        size += len(sample)
    if samples:
        yield fragment(sequence, base_time, durations, samples, keys)
