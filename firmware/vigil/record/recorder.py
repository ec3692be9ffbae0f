"""A stream's recorder: StreamHub access units into crash-safe segments and their index rows.

Two halves. On the event loop a pump takes units from a hub subscription with a deep queue
(`queue_seconds` of video, so a card that stalls for seconds costs nothing) and hands them to
a writer thread, which does all the blocking work: building fragments, write, fsync, directory
fsync, SQLite. The hand-over is by fragment, not by unit (waking a thread costs more than
what it then does with one unit): the pump follows the writer's fragment rule and hands over
its batch with the unit that ends a fragment (and at every keyframe, where a segment may
end), so the writer writes each fragment when it would have unit by unit; a batch held
`BATCH_HOLD_S` (a source that stalls) goes over as it is, and the writer's own deadline for a
late unit writes the fragment as before, its last sample lasting one frame interval (late
units go on in the same file; see `SegmentWriter.flush`). The pump waits when the writer is
more than `WRITER_BACKLOG` units behind, so the backlog stays in the hub's queue, where
overflowing it is noticed: the subscription skips to the next keyframe and counts a skip.
A skip, a subscription ended by a codec change, or a pts jump of more than a second is a gap
(logged): the segment is closed at its last unit and the next starts at the next keyframe, so
a segment's span never claims footage that is not in it.

Order per fragment: data, fsync, (directory fsync for a new file), then the index row; the
index is written only from the writer thread, after `SegmentWriter` returns.

Rotation: at the first keyframe at or after the segment's boundary. Boundaries lie on a grid
of `segment_seconds` shifted by a per-stream offset (by default from the golden ratio, which
spreads any number of streams evenly over the segment), so 32 streams do not all open a file
and fsync a directory in the same second. A first segment runs to the first boundary at
least half a segment away.

Mode. A recorder either records (with a record type: continuous, motion, manual...) or
waits with its stream's latest GOPs in a RAM ring (`prerecord.GopRing`); `set_mode` switches.
A change travels through the writer's queue in order with the units, so every unit is written
under the type in force when the hub delivered it: from waiting to recording the ring's units
go first (pre-record), from recording to waiting the segment is closed, and a new type starts
a new segment at the next keyframe. The service decides the mode (schedule, events, post-record).

Time. A segment's start (UTC) is its first unit's `captured_at` (monotonic, from the sensor)
plus the offset `time.time() - time.monotonic()` taken once when the recorder starts: one
clock for the whole run, so segments neither overlap nor leave false gaps when NTP slews or
steps the wall clock meanwhile (to follow a step, such as the first NTP sync, restart the
recorder: `start` takes the offset again). While the stream is continuous, the next segment starts
exactly where the previous one ended (`end = start + pts span`); only after a gap is the
start taken from the capture time again.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from vigil.media.frames import RTP_CLOCK, AccessUnit
from vigil.media.hub import StreamHub, Subscription
from vigil.record.fmp4 import RECORD_CODECS, FormatError, parameter_sets
from vigil.record.index import MAX_SEGMENT_US, RECORD_TYPES, RecordingIndex
from vigil.record.prerecord import GopRing
from vigil.record.segment import (
    FRAGMENT_MAX,
    FRAGMENT_MIN_AT_KEYFRAME,
    FragmentWritten,
    SegmentWriter,
    ticks_to_us,
)

log = logging.getLogger(__name__)

SEGMENT_SECONDS_RANGE = (10, 3600)
VIDEO_DIR = "video"
GOLDEN = (math.sqrt(5) - 1) / 2
ASSUMED_FPS = 30  # for sizing the queue before the hub has measured the rate
WRITER_BACKLOG = 50  # units handed to the writer thread and not yet taken
MAX_FRAME_GAP = RTP_CLOCK  # a longer pts step is a gap: the segment ends
# A fragment whose next unit is this late past its one second is written without it.
STALL_GRACE_S = 0.5
# A batch not ended by a fragment's end within this is handed over anyway (a stalled source):
# longer than a fragment, so that it never happens while units come on time, and shorter than
# the writer's deadline for a late unit, which runs from the fragment's first unit.
BATCH_HOLD_S = FRAGMENT_MAX / RTP_CLOCK + 0.1
# Keep a margin below the index's bound: the recorder cuts (even mid-GOP) before reaching it.
SEGMENT_HARD_LIMIT = (MAX_SEGMENT_US - 60_000_000) * RTP_CLOCK // 1_000_000
ERROR_BACKOFF_S = (1.0, 30.0)

_STOP: Final = "stop"
_GAP: Final = "gap"


@dataclass(frozen=True, slots=True)
class _Mode:
    record_type: str | None  # None: stop recording (the segment is closed)


@dataclass
class RecorderStats:
    received: int = 0  # access units the pump took for the writer (handed over or batched)
    units: int = 0  # access units taken by the writer
    segments: int = 0  # segment files opened
    fragments: int = 0
    bytes: int = 0
    gaps: int = 0  # discontinuities that closed a segment
    skips: int = 0  # hub queue overflows
    write_errors: int = 0
    out_of_space: int = 0  # writes that failed for want of space (ENOSPC)
    waiting_for_keyframe: bool = True


def segment_path(stream_id: int, start_us: int) -> str:
    """`video/<stream>/<UTC day>/<stream>-<UTC start to the microsecond>Z.mp4`."""
    seconds, micros = divmod(start_us, 1_000_000)
    when = datetime.fromtimestamp(seconds, UTC)
    return (
        f"{VIDEO_DIR}/{stream_id}/{when:%Y-%m-%d}/"
        f"{stream_id}-{when:%Y%m%dT%H%M%S}.{micros:06d}Z.mp4"
    )


def default_rotate_offset(stream_id: int, segment_seconds: int) -> float:
    """The stream's ordinal (101, 102, 103, 201, ... -> 0, 1, 2, 3, ...) times the golden
    ratio, modulo 1: any run of ordinals lands evenly spread over the segment (the three-gap
    theorem), whereas the ids themselves step by 100 and would bunch up."""
    channel, number = divmod(stream_id, 100)
    ordinal = max(channel - 1, 0) * 3 + max(number - 1, 0)
    return (ordinal * GOLDEN) % 1.0 * segment_seconds


def next_boundary_us(start_us: int, segment_seconds: int, offset_s: float) -> int:
    """The first grid instant at least half a segment after `start_us`."""
    period = segment_seconds * 1_000_000
    shift = round(offset_s * 1_000_000) % period
    earliest = start_us + period // 2
    return earliest + (shift - earliest) % period


class Recorder:
    def __init__(
        self,
        stream_id: int,
        hub: StreamHub,
        root: Path,
        index: RecordingIndex,
        *,
        segment_seconds: int = 60,
        record_type: str | None = "continuous",
        pre_record_s: float = 0.0,
        queue_seconds: float = 30.0,
        queue_units: int | None = None,
        rotate_offset: float | None = None,
        not_before: float = 0.0,
    ) -> None:
        """`record_type` None starts waiting (pre-recording `pre_record_s`) instead of
        recording. `queue_seconds` of video at the hub's measured rate sizes the subscription
        queue, unless `queue_units` does; `rotate_offset` (seconds) shifts the rotations.
        Units captured at or before `not_before` (monotonic) are not taken: a recorder that
        replaces another on the stream would get the hub's current GOP again, already written."""
        low, high = SEGMENT_SECONDS_RANGE
        if not low <= segment_seconds <= high:
            raise ValueError(f"segments are {low}..{high} s")
        _check_type(record_type)
        self.stream_id = stream_id
        self.hub = hub
        self.root = root
        self.index = index
        self.segment_seconds = segment_seconds
        self._mode = record_type  # event-loop side; the writer's copy is `_writer_type`
        self._ring = GopRing(pre_record_s)
        self.not_before = not_before
        self.last_captured = not_before  # capture time of the last unit handed to the writer
        self.queue_seconds = queue_seconds
        self.queue_units = queue_units
        self.rotate_offset = (
            default_rotate_offset(stream_id, segment_seconds)
            if rotate_offset is None
            else rotate_offset
        )
        self.stats = RecorderStats()
        self._units: queue.SimpleQueue[list[AccessUnit] | str | _Mode] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pump: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sent = 0  # units handed to the writer (pump side)
        self._taken = 0  # units taken by the writer (writer side)
        self._room = asyncio.Event()
        self._pump_waiting = False
        self._batch: list[AccessUnit] = []  # units for the writer, handed over by fragment
        self._batch_timer: asyncio.TimerHandle | None = None
        self._cut_pts: int | None = None  # where the writer's pending fragment starts
        self._last_pts: int | None = None
        self._clock_offset = 0.0
        # Writer thread state.
        self._writer_type = record_type
        self._writer: SegmentWriter | None = None
        self._segment_id: int | None = None
        self._boundary_us = 0
        self._fragment_began = 0.0  # monotonic arrival of the pending fragment's first unit
        self._continue_from: tuple[int, int] | None = None  # (pts, us) where the last one ended
        self._retry_at = 0.0
        self._backoff = ERROR_BACKOFF_S[0]
        self._unrecordable_logged = False
        self._relative = ""
        self._size_accounted = 0

    # -- control (event loop) -----------------------------------------------------------------
    async def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._clock_offset = time.time() - time.monotonic()
        self._units = queue.SimpleQueue()
        self._writer_type = self._mode
        self._ring.clear()
        self._batch = []
        self._cut_pts = self._last_pts = None
        self._thread = threading.Thread(
            target=self._write_loop, name=f"vigil-record-{self.stream_id}", daemon=True
        )
        self._thread.start()
        self._pump = asyncio.create_task(self._pump_units(), name=f"record-{self.stream_id}")
        log.info(
            "stream %d: recording to %s (%d s segments, rotation offset %.1f s)",
            self.stream_id, self.root, self.segment_seconds, self.rotate_offset,
        )  # fmt: skip

    async def stop(self) -> None:
        """Write what is pending, complete the segment and its row, and end the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        if self._subscription is not None:
            self._subscription.close()
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
        self._send_batch()
        self._units.put(_STOP)
        await asyncio.to_thread(thread.join)
        log.info(
            "stream %d: recording stopped (%d segments, %d fragments, %d gaps)",
            self.stream_id, self.stats.segments, self.stats.fragments, self.stats.gaps,
        )  # fmt: skip

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def record_type(self) -> str | None:
        """What the recorder records as now; None while it waits (pre-recording)."""
        return self._mode

    @property
    def pre_record_s(self) -> float:
        return self._ring.seconds

    @pre_record_s.setter
    def pre_record_s(self, seconds: float) -> None:
        self._ring.seconds = seconds

    def set_mode(self, record_type: str | None) -> None:
        """Record as `record_type` from the next unit on, or wait (None)."""
        _check_type(record_type)
        if record_type == self._mode:
            return
        self._mode = record_type
        if record_type is None:
            self._ring.clear()  # it refills from the next keyframe
        if self._thread is not None:
            self._send_batch()
            self._units.put(_Mode(record_type))

    def _queue_units(self) -> int:
        if self.queue_units is not None:
            return self.queue_units
        fps = self.hub.frame_rate or ASSUMED_FPS
        return max(WRITER_BACKLOG, math.ceil(self.queue_seconds * fps))

    async def _pump_units(self) -> None:
        while not self._stopping:
            subscription = self.hub.subscribe(
                queue_units=self._queue_units(), packets=False, patient=True
            )
            self._subscription = subscription
            skips = subscription.skips
            while True:
                batch = await subscription.next()
                if batch is None:
                    break
                if subscription.skips != skips:
                    self.stats.skips += subscription.skips - skips
                    skips = subscription.skips
                    self._ring.clear()
                    self._send_gap()
                if batch.au.captured_at <= self.not_before:
                    continue
                if self._mode is None:
                    self._ring.add(batch.au)
                    continue
                for au in self._ring.drain():  # pre-record: what came before the start
                    await self._hand_over(au)
                await self._hand_over(batch.au)
            if not self._stopping:
                # The hub ended the subscription (a new codec): what follows is another stream.
                log.info("stream %d: the stream changed; recording goes on", self.stream_id)
                self._send_gap()

    async def _hand_over(self, au: AccessUnit) -> None:
        await self._wait_for_room()
        self.stats.received += 1
        self.last_captured = au.captured_at
        batch = self._batch
        batch.append(au)
        if self._ends_fragment(au):
            self._send_batch()
        elif len(batch) == 1:
            assert self._loop is not None
            self._batch_timer = self._loop.call_later(BATCH_HOLD_S, self._send_batch)

    def _ends_fragment(self, au: AccessUnit) -> bool:
        """Whether the writer may write a fragment (or close a segment) on taking `au`: the
        writer's rule (`SegmentWriter.add`), followed on this side; any keyframe too."""
        start, last = self._cut_pts, self._last_pts
        self._last_pts = au.pts
        if start is None or last is None or not 0 < au.pts - last <= MAX_FRAME_GAP:
            self._cut_pts = au.pts if au.keyframe else None  # a gap, or a segment to open
            return True
        span = au.pts - start
        if (
            au.keyframe and span >= FRAGMENT_MIN_AT_KEYFRAME
        ) or span + au.pts - last > FRAGMENT_MAX:
            self._cut_pts = au.pts
            return True
        return au.keyframe

    def _send_batch(self, then: str | None = None) -> None:
        """Hand the batch to the writer (and `then`, an order that follows it)."""
        if self._batch_timer is not None:
            self._batch_timer.cancel()
            self._batch_timer = None
        batch, self._batch = self._batch, []
        if batch:
            self._sent += len(batch)
            self._units.put(batch)
        if then is not None:
            self._units.put(then)

    def _send_gap(self) -> None:
        self._send_batch(_GAP)
        self._cut_pts = self._last_pts = None

    async def _wait_for_room(self) -> None:
        while self._sent - self._taken >= WRITER_BACKLOG:
            self._room.clear()
            self._pump_waiting = True
            if self._sent - self._taken < WRITER_BACKLOG:  # taken meanwhile: no wake-up comes
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), 1.0)
        self._pump_waiting = False

    # -- writer thread ------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            timeout = None
            if self._writer is not None and self._writer.pending:
                deadline = self._fragment_began + FRAGMENT_MAX / RTP_CLOCK + STALL_GRACE_S
                timeout = max(0.0, deadline - time.monotonic())
            try:
                item = self._units.get(timeout=timeout)
            except queue.Empty:
                self._guarded(self._flush_late)
                continue
            if isinstance(item, _Mode):
                self._writer_type = item.record_type
                if item.record_type is None:
                    self._guarded(self._close_segment)
                continue
            if isinstance(item, str):
                if item == _GAP:
                    self.stats.gaps += self._writer is not None
                self._guarded(self._close_segment)
                if item == _STOP:
                    return
                continue
            for au in item:
                self._taken += 1
                self.stats.units += 1
                self._guarded(self._take, au)
            if self._pump_waiting and self._loop is not None:
                self._pump_waiting = False
                # A closed loop means the daemon is going down: only the stop item matters now.
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._room.set)

    def _guarded(self, step: Callable[..., None], *args: object) -> None:
        """Run a writer step; a failure (a card gone or full) ends the segment, never the thread."""
        try:
            step(*args)
        except Exception as exc:
            self.stats.write_errors += 1
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                self.stats.out_of_space += 1
            writer, self._writer = self._writer, None
            self._continue_from = None
            self._retry_at = time.monotonic() + self._backoff
            log.warning(
                "stream %d: recording failed (%s); retrying in %.0f s at a keyframe",
                self.stream_id, exc, self._backoff, exc_info=not isinstance(exc, OSError),
            )  # fmt: skip
            self._backoff = min(self._backoff * 2, ERROR_BACKOFF_S[1])
            if writer is not None:
                writer.abandon()
                try:
                    self._complete_row(writer)
                except Exception as row_exc:  # the card is gone: reconciliation will do it
                    log.warning("stream %d: index not updated: %s", self.stream_id, row_exc)
            self._segment_id = None

    def _take(self, au: AccessUnit) -> None:
        writer = self._writer
        if writer is None:
            self._open(au)
            return
        step = au.pts - writer.last_pts
        # The end of a fragment written early (`_flush_late`) is a guess; a unit inside it
        # cannot follow in this file.
        if step <= 0 or step > MAX_FRAME_GAP or au.pts < writer.end_pts:
            self.stats.gaps += 1
            log.info(
                "stream %d: a gap in the stream (%+.2f s between frames); the recording goes "
                "on in a new segment from the next keyframe", self.stream_id, step / RTP_CLOCK,
            )  # fmt: skip
            self._close_segment()
            self._open(au)
            return
        span = au.pts - writer.info.start_pts
        if au.keyframe:
            wall_us = writer.info.start_us + ticks_to_us(span)
            switched = writer.info.record_type != self._writer_type
            if wall_us >= self._boundary_us or switched or not writer.matches(au):
                self._close_segment(next_pts=au.pts)
                self._open(au)
                return
        elif span >= SEGMENT_HARD_LIMIT:
            log.warning("stream %d: no keyframe for too long; segment cut", self.stream_id)
            self._close_segment()
            return
        self._account(writer.add(au))
        if writer.pending == 1:  # this unit began a fragment
            self._fragment_began = time.monotonic()

    def _open(self, au: AccessUnit) -> None:
        """Start a segment with `au` if it can start one (a keyframe, after any back-off)."""
        self.stats.waiting_for_keyframe = True
        record_type = self._writer_type
        if record_type is None:
            return  # units queued before a stop
        if au.codec not in RECORD_CODECS:
            if not self._unrecordable_logged:
                log.warning("stream %d: %s is not recorded", self.stream_id, au.codec)
                self._unrecordable_logged = True
            return
        if not au.keyframe or time.monotonic() < self._retry_at:
            return
        if parameter_sets(au.codec, au.data) is None:
            return
        if self._continue_from is not None and self._continue_from[0] == au.pts:
            start_us = self._continue_from[1]  # abut the previous segment exactly
        else:
            start_us = round((au.captured_at + self._clock_offset) * 1_000_000)
        relative = segment_path(self.stream_id, start_us)
        path = self.root / relative
        suffix = 0
        base = relative.removesuffix(".mp4")
        while path.exists():  # the wall clock went back over existing footage
            suffix += 1
            relative = f"{base}~{suffix}.mp4"
            path = self.root / relative
        try:
            self._writer = SegmentWriter(
                path, au, start_us=start_us, record_type=record_type, stream_id=self.stream_id
            )
        except FormatError as exc:
            log.warning("stream %d: cannot start a segment: %s", self.stream_id, exc)
            return
        self._relative = relative
        self._size_accounted = 0
        self._segment_id = None
        self._continue_from = None
        self._fragment_began = time.monotonic()
        self._boundary_us = next_boundary_us(start_us, self.segment_seconds, self.rotate_offset)
        self.stats.waiting_for_keyframe = False

    def _flush_late(self) -> None:
        if self._writer is not None:
            self._account(self._writer.flush())

    def _close_segment(self, next_pts: int | None = None) -> None:
        writer = self._writer
        if writer is None:
            return
        written = writer.close(next_pts)  # if this fails, `_guarded` abandons the writer
        self._writer = None
        if written is not None:
            self._account(written, complete=True)
        else:
            self._complete_row(writer)
        self._segment_id = None
        if next_pts is not None and writer.fragments and writer.end_pts == next_pts:
            end_us = writer.info.start_us + ticks_to_us(writer.end_pts - writer.info.start_pts)
            self._continue_from = (next_pts, end_us)
        else:
            self._continue_from = None

    def _complete_row(self, writer: SegmentWriter) -> None:
        """Mark the row complete as it stands: nothing more will be written to its file."""
        if self._segment_id is not None:
            self.index.update_segment(self._segment_id, writer.end_pts, writer.size, "complete")

    def _account(self, written: FragmentWritten | None, complete: bool = False) -> None:
        """The index after the data: the row is inserted or advanced only once fsynced."""
        if written is None:
            return
        state = "complete" if complete else None
        if written.new_file:
            self._segment_id = self.index.add_segment(
                written.info, self._relative, written.end_pts, written.size, state or "writing"
            )
            self.stats.segments += 1
        elif self._segment_id is not None:
            self.index.update_segment(self._segment_id, written.end_pts, written.size, state)
        self.stats.fragments += 1
        self.stats.bytes += written.size - self._size_accounted
        self._size_accounted = written.size
        self._backoff = ERROR_BACKOFF_S[0]


def _check_type(record_type: str | None) -> None:
    if record_type is not None and record_type not in RECORD_TYPES:
        raise ValueError(f"unknown record type {record_type!r}")
