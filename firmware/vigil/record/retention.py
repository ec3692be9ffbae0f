"""Retention: which footage goes when (expiry, overwrite, the record quota), oldest first.

One `sweep` decides and deletes; the recording service runs it in a worker thread every few
seconds and at once when the card turns full. Policy (SPEC §4, `StorageSettings`):

- Low space (only with `overwrite` on): deletion starts when the file system's free space is
  below `max(1 % of capacity, min(1 h of recording, max(5 % of capacity, 15 s of recording)))`
  at the current recording rate, and frees, oldest first across all streams, up to that mark
  plus 1 % of capacity. The hour is capped at 5 % of the card, or an hour of 4 Mbps (1.8 GB)
  would be all of a 2 GB card and a 64 MB card would be emptied; but never below 15 s of
  recording, since sweeps come every 5 s and a small card written fast (8 Mbps on 64 MB) would
  otherwise fill up between two of them. With the 1 % margin free space ends at 2 % or more,
  where the storage manager clears `full` again. Hysteresis: once below the low mark, deletion
  goes on (in later sweeps too) until the high mark is reached, so it does not nibble one
  segment per sweep; what is needed is measured once per sweep and freed by the sizes of the
  rows deleted (space held by a file that is still open, e.g. played back, comes back only at
  its close).
- Quota (only with `overwrite` on): when the footage (the sum of the index's segment sizes) is
  over `record_quota_percent` of capacity, the oldest goes until it is 1 % of capacity under
  the quota. A 0 % quota keeps no unlocked footage at all.
- Expiry (`expiry_days` > 0, whatever `overwrite` says): segments that ended more than
  `expiry_days` ago are deleted. Room is made first (recording waits for it); expiry gets the
  batches left over.
- Never deleted: a locked segment, or one being written (only `complete` rows qualify; the
  index checks both again in the transaction that deletes the row). When space or quota is
  short and only such footage is left, that is logged once (until room comes back) and the
  sweep stops. With overwrite off nothing is deleted for space or quota (the report says
  `short`): a card that fills up stops recording and the storage manager raises `diskfull`.

Deletion goes through `delete_segments` (row -> garbage row, unlink, directory fsync, forget
the garbage row: a crash at any point is finished by reconciliation), in batches of `BATCH`
segments (one directory fsync per batch and day), at most `MAX_BATCHES` per sweep, so a sweep is
bounded even when expiry is first switched on over months of footage; the next sweep goes on.
Day directories left empty are removed once the day is over. One log line per sweep that
deletes: how many, how much, why, the oldest footage now kept, and the free space.

Candidates are found through the index's public queries: per stream, its oldest unlocked
complete segment and a page of the rows from there; pages of different streams are merged by
(start, id) only up to where every stream's page is whole, so the order is exactly "oldest
first" even when locked footage cuts a page short.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from vigil.config.atomic import fsync_dir
from vigil.config.model import StorageSettings
from vigil.record.index import RecordingIndex, Segment
from vigil.record.reconcile import delete_segments
from vigil.record.recorder import VIDEO_DIR
from vigil.record.storage import FULL_BELOW, FULL_CLEARS_AT

log = logging.getLogger(__name__)

HOUR_S = 3600  # SPEC §4: overwrite when less than an hour of recording is left ...
HOUR_SHARE = 0.05  # ... but that hour is at most this share of the card ...
HEADROOM_S = 15  # ... or this much recording, if more: sweeps run every 5 s
MARGIN_SHARE = FULL_CLEARS_AT - FULL_BELOW  # deletion goes this far past the mark
BATCH = 64  # segments per delete_segments call
MAX_BATCHES = 16  # per sweep
EXPIRY = "expiry"
LOW_SPACE = "low space"
QUOTA = "quota"
REASONS = (EXPIRY, LOW_SPACE, QUOTA)
_END_OF_TIME_US = 2**62
_DAY_US = 86_400 * 1_000_000
_MB = 1_000_000


def filesystem_space(path: Path) -> tuple[int, int]:
    """(capacity, free) in bytes of the file system holding `path`."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def low_space_marks(capacity: int, rate: float) -> tuple[int, int]:
    """(start deleting below, stop at or above) in free bytes; `rate` in bytes/s."""
    rate = max(rate, 0.0)
    hour = min(HOUR_S * rate, max(HOUR_SHARE * capacity, HEADROOM_S * rate))
    low = round(max(FULL_BELOW * capacity, hour))
    return low, low + round(MARGIN_SHARE * capacity)


def quota_marks(capacity: int, percent: int) -> tuple[int, int]:
    """(start deleting above, stop at or below) in footage bytes."""
    quota = capacity * percent // 100
    return quota, max(0, quota - round(MARGIN_SHARE * capacity))


@dataclass
class Deleted:
    segments: int = 0
    bytes: int = 0


@dataclass
class SweepReport:
    deleted: dict[str, Deleted] = field(default_factory=lambda: {r: Deleted() for r in REASONS})
    free: int = 0  # bytes free on the file system after the sweep
    short: bool = False  # space or quota still short: only kept footage is left, or no overwrite
    oldest_kept_us: int | None = None  # start of the oldest footage left (None: none left)

    @property
    def segments(self) -> int:
        return sum(d.segments for d in self.deleted.values())

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.deleted.values())


class Retention:
    def __init__(
        self,
        root: Path,
        index: RecordingIndex,
        *,
        settings: Callable[[], StorageSettings],
        rate: Callable[[], float],
        space: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        """`root` holds the footage `index` describes; `rate` is what is being recorded now
        (bytes/s, all streams); `space` is (capacity, free) in bytes, by default statvfs."""
        self.root = root
        self.index = index
        self._settings = settings
        self._rate = rate
        self._space = space or (lambda: filesystem_space(root))
        self._freeing_space = False  # below the low mark, and the high one not reached yet
        self._freeing_quota = False
        self._stuck_logged = False
        self._batches_left = 0

    def sweep(self, now_us: int | None = None) -> SweepReport:
        """Delete what the policy says must go (blocking: call it in a worker thread)."""
        now_us = time.time_ns() // 1000 if now_us is None else now_us
        settings = self._settings()
        report = SweepReport()
        self._batches_left = MAX_BATCHES
        # Room first: it is what recording waits for; expiry gets the batches left over.
        self._make_room(settings, report, now_us)
        if settings.expiry_days > 0:
            self._expire(now_us - settings.expiry_days * _DAY_US, report, now_us)
        report.free = self._space()[1]
        if report.segments:
            report.oldest_kept_us = self._oldest_kept()
            self._log(report)
        return report

    # -- low space and quota --------------------------------------------------------------
    def _make_room(self, settings: StorageSettings, report: SweepReport, now_us: int) -> None:
        """Delete the oldest footage for space and quota, in bytes of their rows: measured once
        per sweep, so a file that stays open (its space freed only at close) costs no more."""
        space_need, quota_need = self._needs(settings)
        need = max(space_need, quota_need)
        if need <= 0:
            self._stuck_logged = False
            return
        report.short = True
        if not settings.overwrite:
            self._freeing_space = self._freeing_quota = False
            return
        reason = LOW_SPACE if space_need >= quota_need else QUOTA
        freed = 0
        while freed < need and self._batches_left > 0:
            candidates = self._oldest()
            if not candidates:
                self._log_stuck(reason, need - freed)
                return
            batch, total = [], 0
            for segment in candidates:
                if freed + total >= need:
                    break
                batch.append(segment)
                total += segment.bytes
            freed += self._delete(batch, reason, report, now_us)
        if freed >= need:
            self._freeing_space = self._freeing_quota = False
            self._stuck_logged = False
            report.short = False

    def _needs(self, settings: StorageSettings) -> tuple[int, int]:
        """Bytes to free for space and for the quota (0: none). Freeing starts past the first
        mark and, if a sweep falls short (a batch limit, locked footage), goes on in later
        sweeps until the second mark."""
        capacity, free = self._space()
        if capacity <= 0:
            return 0, 0
        low, high = low_space_marks(capacity, self._rate())
        self._freeing_space = free < (high if self._freeing_space else low)
        used = sum(t.bytes for t in self.index.totals_by_stream().values())
        over, under = quota_marks(capacity, settings.record_quota_percent)
        self._freeing_quota = used > (under if self._freeing_quota else over)
        space_need = max(0, high - free) if self._freeing_space else 0
        quota_need = max(0, used - under) if self._freeing_quota else 0
        return space_need, quota_need

    def _log_stuck(self, reason: str, short_by: int) -> None:
        if self._stuck_logged:
            return
        self._stuck_logged = True
        log.warning(
            "retention (%s): %.1f MB short, but only locked footage and segments being "
            "recorded are left; nothing more is deleted",
            reason, short_by / _MB,
        )  # fmt: skip

    # -- expiry ---------------------------------------------------------------------------
    def _expire(self, cutoff_us: int, report: SweepReport, now_us: int) -> None:
        for stream_id in self.index.totals_by_stream():
            while self._batches_left > 0:
                page, _ = self._stream_page(stream_id)
                expired = [s for s in page if s.end_us < cutoff_us]
                if not expired:
                    break
                self._delete(expired, EXPIRY, report, now_us)

    # -- candidates -----------------------------------------------------------------------
    def _stream_page(self, stream_id: int) -> tuple[list[Segment], tuple[int, int] | None]:
        """The stream's oldest complete unlocked segments (from a page of rows that begins at
        the first one) and, when the page was cut short, the (start, id) it is whole up to."""
        first = self.index.oldest_unlocked(stream_id)
        if first is None:
            return [], None
        # From just before its start, so that a row ending where it starts is included too.
        rows = self.index.segments_overlapping(
            stream_id, first.start_us - 1, _END_OF_TIME_US, limit=BATCH
        )
        start = (first.start_us, first.id)
        page = [
            s
            for s in rows
            if not s.locked and s.state == "complete" and (s.start_us, s.id) >= start
        ]
        whole_to = (rows[-1].start_us, rows[-1].id) if len(rows) == BATCH else None
        return page, whole_to

    def _oldest(self) -> list[Segment]:
        """Up to `BATCH` complete unlocked segments of all streams, oldest first."""
        merged: list[Segment] = []
        horizon: tuple[int, int] | None = None
        for stream_id in self.index.totals_by_stream():
            page, whole_to = self._stream_page(stream_id)
            merged += page
            if whole_to is not None:
                horizon = whole_to if horizon is None else min(horizon, whole_to)
        merged.sort(key=lambda s: (s.start_us, s.id))
        if horizon is not None:  # past it, a cut-short page may be missing older segments
            merged = [s for s in merged if (s.start_us, s.id) <= horizon]
        return merged[:BATCH]

    # -- deletion -------------------------------------------------------------------------
    def _delete(
        self, segments: list[Segment], reason: str, report: SweepReport, now_us: int
    ) -> int:
        """Delete a batch; the bytes it held (a segment locked meanwhile stays)."""
        self._batches_left -= 1
        deleted = set(delete_segments(self.root, self.index, [s.id for s in segments]))
        gone = [s for s in segments if s.path in deleted]
        tally = report.deleted[reason]
        tally.segments += len(gone)
        tally.bytes += sum(s.bytes for s in gone)
        self._remove_empty_days(gone, now_us)
        return sum(s.bytes for s in gone)

    def _remove_empty_days(self, segments: Iterable[Segment], now_us: int) -> None:
        """Remove day directories the deletion emptied, except those recorders may still write
        to (today's and yesterday's, in UTC as the paths are)."""
        yesterday = datetime.fromtimestamp(now_us / 1e6 - 86_400, UTC).strftime("%Y-%m-%d")
        for day in sorted({(self.root / s.path).parent for s in segments}):
            if day.name >= yesterday or day.parent.parent != self.root / VIDEO_DIR:
                continue
            try:
                day.rmdir()
            except OSError:  # not empty: still has footage
                continue
            fsync_dir(day.parent)

    def _oldest_kept(self) -> int | None:
        starts = [t.start_us for t in self.index.totals_by_stream().values()]
        return min(starts, default=None)

    def _log(self, report: SweepReport) -> None:
        why = ", ".join(
            f"{reason} {d.segments} ({d.bytes / _MB:.1f} MB)"
            for reason, d in report.deleted.items()
            if d.segments
        )
        if report.oldest_kept_us is None:
            kept = "no footage left"
        else:
            when = datetime.fromtimestamp(report.oldest_kept_us / 1e6, UTC)
            kept = f"footage kept from {when:%Y-%m-%d %H:%M:%S} UTC"
        log.info(
            "retention: deleted %d segment%s, %.1f MB (%s); %s; %.1f MB free",
            report.segments, "" if report.segments == 1 else "s", report.bytes / _MB, why, kept,
            report.free / _MB,
        )  # fmt: skip
