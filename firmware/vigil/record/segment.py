"""One recording file: access units in, fsynced fMP4 fragments out, without re-encoding.

The writer decides where fragments end: at most one second each (a fragment is the unit of
loss on a power cut), and at a keyframe when one comes after half a second, so fragments
usually start on keyframes. A fragment is written with one `write` once it is complete, then
fsynced; the first one is written together with the head (`ftyp`, info, `moov`) and is
followed by an fsync of the directory, so that the file's name is durable before the index
has a row for it. Each write returns a `FragmentWritten` for the index, which the caller must
only update after this returns: data, fsync, directory fsync, then the row.

The file is created (`O_EXCL`) with its first fragment, never empty: a crash before that leaves
no file at all. Not thread-safe: one recorder's writer thread owns a writer. MJPEG is not
recorded (the brief's recorder covers H.264 and H.265; MJPEG streams are for snapshots).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from vigil.config.atomic import fsync_dir
from vigil.media.frames import RTP_CLOCK, AccessUnit
from vigil.record.fmp4 import (
    RECORD_CODECS,
    FormatError,
    ParameterSets,
    SegmentInfo,
    fragment,
    init_segment,
    parameter_sets,
    to_sample,
)

FRAGMENT_MAX = RTP_CLOCK  # 1 s: the most a power cut may take from a fsynced recording
FRAGMENT_MIN_AT_KEYFRAME = RTP_CLOCK // 2  # a keyframe ends a fragment at least this long
DEFAULT_FRAME = RTP_CLOCK // 25  # the duration of a lone last sample whose rate is unknown


def ticks_to_us(ticks: int) -> int:
    """90 kHz ticks to microseconds, rounded to the nearest."""
    return (ticks * 1_000_000 + RTP_CLOCK // 2) // RTP_CLOCK


@dataclass(frozen=True, slots=True)
class FragmentWritten:
    """A fragment is on the card (fsynced, and its file name too): the index may say so."""

    path: Path
    info: SegmentInfo
    new_file: bool  # the first fragment: the index row is to be inserted, not updated
    end_pts: int  # stream pts just past the last sample
    size: int  # the file's size now
    fragments: int  # fragments in the file now

    @property
    def end_us(self) -> int:
        return self.info.start_us + ticks_to_us(self.end_pts - self.info.start_pts)


def make_dirs_durable(directory: Path) -> None:
    """Create `directory` and missing parents; each new name fsynced into its parent."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:  # another stream's writer made it first
            continue
        fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class SegmentWriter:
    def __init__(
        self,
        path: Path,
        first: AccessUnit,
        *,
        start_us: int,
        record_type: str,
        stream_id: int | None = None,
    ) -> None:
        """`first` must be a keyframe with its parameter sets; `start_us` is its wall time;
        `stream_id` is the track the file belongs to (by default the unit's stream)."""
        if first.codec not in RECORD_CODECS:
            raise FormatError(f"{first.codec} cannot be recorded")
        if not first.keyframe:
            raise FormatError("a segment starts on a keyframe")
        sets = parameter_sets(first.codec, first.data)
        if sets is None:
            raise FormatError("the first keyframe lacks its parameter sets")
        self.path = path
        self.sets: ParameterSets = sets
        self.info = SegmentInfo(
            stream_id=first.stream_id if stream_id is None else stream_id,
            codec=first.codec,
            width=first.width,
            height=first.height,
            start_pts=first.pts,
            start_us=start_us,
            record_type=record_type,
        )
        self._head = init_segment(self.info, sets)  # fails now, not a second later, if bad
        self._fd = -1
        self.size = 0
        self.fragments = 0
        self.end_pts = first.pts  # just past the last sample written to the file
        self.closed = False
        # The fragment being gathered.
        self._pts: list[int] = []
        self._samples: list[bytes] = []
        self._keys: list[bool] = []
        self._last_delta = 0
        self._min_delta = 0  # the stream's frame interval: the shortest step seen
        self._last_pts: int | None = None
        self.add(first)

    @property
    def pending(self) -> int:
        """Units taken and not yet written."""
        return len(self._pts)

    @property
    def last_pts(self) -> int:
        """The pts of the last unit taken (written or pending)."""
        assert self._last_pts is not None
        return self._last_pts

    def matches(self, au: AccessUnit) -> bool:
        """Whether `au` can go on in this file: same codec and, at a keyframe, same parameters."""
        if au.codec != self.info.codec or (au.width, au.height) != (
            self.info.width,
            self.info.height,
        ):
            return False
        if not au.keyframe:
            return True
        sets = parameter_sets(au.codec, au.data)
        return sets is None or sets == self.sets

    def add(self, au: AccessUnit) -> FragmentWritten | None:
        """Take the next unit (pts must increase); returns the fragment this completed, if any."""
        if self.closed:
            raise ValueError("the segment is closed")
        written = None
        if self._last_pts is not None:
            # After `flush` the written end is a guess that the next unit must not undercut.
            if au.pts <= self._last_pts or (not self._pts and au.pts < self.end_pts):
                raise ValueError(f"pts {au.pts} does not follow {self._last_pts}")
            delta = au.pts - self._last_pts
            if self._pts:
                span = au.pts - self._pts[0]
                cut_at_key = au.keyframe and span >= FRAGMENT_MIN_AT_KEYFRAME
                if cut_at_key or span + delta > FRAGMENT_MAX:
                    written = self._write(delta)
            self._last_delta = delta
            self._min_delta = min(self._min_delta or delta, delta)
        self._last_pts = au.pts
        self._pts.append(au.pts)
        self._samples.append(to_sample(au.codec, au.data))
        self._keys.append(au.keyframe)
        return written

    def flush(self) -> FragmentWritten | None:
        """Write what is pending now (the next unit is late); its last duration is a guess.

        The guess is one frame interval, the shortest step the next unit can take: the last
        step may have been a skipped frame, and a guess past the next unit would make it (and
        the rest of the GOP) unable to follow in this file."""
        if not self._pts:
            return None
        return self._write(self._min_delta or DEFAULT_FRAME)

    def close(self, next_pts: int | None = None) -> FragmentWritten | None:
        """Write what is pending and close. `next_pts`: the pts of the unit that follows, when
        the next segment starts there (the last sample then lasts exactly up to it)."""
        if self.closed:
            return None
        written = None
        if self._pts:
            last = self._pts[-1]
            duration = next_pts - last if next_pts is not None and next_pts > last else 0
            written = self._write(duration or self._last_delta or DEFAULT_FRAME)
        self.closed = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        return written

    def abandon(self) -> None:
        """Close after a write failed: what is pending is lost; what was fsynced stays.

        A write that failed part way (a full card) leaves bytes past the last fsynced
        fragment, or a file whose first fragment never completed and which has no index row:
        both are undone now, so the files keep matching the index until the next start (where
        reconciliation would do the same). If the card is gone, reconciliation does it later."""
        self.closed = True
        self._pts, self._samples, self._keys = [], [], []
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        with contextlib.suppress(OSError):
            if self.fragments == 0:
                self.path.unlink()
            else:
                os.ftruncate(fd, self.size)
                os.fsync(fd)
        os.close(fd)

    def _write(self, last_duration: int) -> FragmentWritten:
        pts, samples, keys = self._pts, self._samples, self._keys
        self._pts, self._samples, self._keys = [], [], []
        durations = [b - a for a, b in itertools.pairwise(pts)]
        # Never past one second: a late unit leaves a hole on the timeline rather than a
        # fragment (and an exposure to loss) longer than promised.
        room = pts[0] + FRAGMENT_MAX - pts[-1]
        durations.append(max(1, min(last_duration, room)))
        data = fragment(self.fragments + 1, pts[0] - self.info.start_pts, durations, samples, keys)
        new_file = self._fd < 0
        if new_file:
            make_dirs_durable(self.path.parent)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o644)
            data = self._head + data
        _write_all(self._fd, data)
        os.fsync(self._fd)
        if new_file:
            fsync_dir(self.path.parent)  # the name is durable before any row refers to it
        self.size += len(data)
        self.fragments += 1
        self.end_pts = pts[-1] + durations[-1]
        return FragmentWritten(
            path=self.path,
            info=self.info,
            new_file=new_file,
            end_pts=self.end_pts,
            size=self.size,
            fragments=self.fragments,
        )
