"""The recording index: SQLite (WAL) on the card beside the recordings it describes.

Tables: `segments` (one row per recording file: stream, relative path, start and end on the
stream's 90 kHz clock and in UTC microseconds, size, record type, locked, writing/complete),
`events` (spans of an event type on a stream), and `garbage` (files whose deletion has begun).
Pictures (JPEG captures, `record/pictures.py`) have their own `pictures` and `picture_garbage`
tables: their paths are relative to the picture root `<card>/picture`, not to the recording
root, so the recordings' reconciliation never sees them. The tables were added later with
CREATE TABLE IF NOT EXISTS: an older index gains them on open, and older firmware ignores them.

Durability. The journal is WAL with `synchronous=NORMAL`: a commit is appended to the WAL
without an fsync, and only checkpoints fsync. After a power cut the database is consistent and
holds a prefix of the commits (WAL frames are replayed in order up to the last whole commit),
so the newest rows or updates may be missing, never reordered or torn. That is enough because
nothing the index says about a recording is only in the index:

- a row is written only after its file (and the file's name) were fsynced, so a row never
  points at data that a power cut can take away; a lost insert or update leaves a file that
  says more than its row, and start-up reconciliation reads the file and repairs the row;
- a deletion commits "segment row -> garbage row" before it unlinks. If that commit is lost
  the row comes back, and either the file is still there (nothing was deleted) or it is gone
  (reconciliation drops the row); if the commit survives and the unlink does not, the garbage
  row makes reconciliation finish the deletion instead of re-indexing the file.

What would be lost with the tail of the WAL is then only the user's latest `locked` flags and
event rows, and those are written with `durable=True` (`synchronous=FULL` for that commit).

Pictures follow the same rules: a row is inserted after its file and name were fsynced (a lost
insert leaves a file without a row, which the picture taker indexes again when it attaches), and
`drop_pictures` commits durably before anything is unlinked, so a row never outlives its file.
At one commit per second per stream, FULL would cost a second fsync per fragment for nothing.

Thread-safe: one connection behind a lock. Every method blocks (SQLite I/O), so the event loop
calls them through `asyncio.to_thread`; recorders call them from their writer threads.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vigil.record.fmp4 import SegmentInfo
from vigil.record.segment import ticks_to_us

INDEX_NAME = "index.sqlite3"
SCHEMA_VERSION = 1
RECORD_TYPES = ("continuous", "motion", "alarm", "manual", "event")
STATES = ("writing", "complete")
# No segment spans more than this (the recorder closes one that would, even mid-GOP), so an
# overlap query only looks at rows that start in [t0 - MAX_SEGMENT_US, t1): an index range.
MAX_SEGMENT_US = 2 * 3600 * 1_000_000
PAGE_LIMIT = 1000

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL,
    path TEXT NOT NULL UNIQUE,
    codec TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    start_pts INTEGER NOT NULL,
    end_pts INTEGER NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    record_type TEXT NOT NULL CHECK (record_type IN {RECORD_TYPES!r}),
    locked INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN {STATES!r}),
    CHECK (end_us >= start_us AND end_us - start_us <= {MAX_SEGMENT_US})
);
CREATE INDEX IF NOT EXISTS segments_by_start ON segments (stream_id, start_us);
CREATE INDEX IF NOT EXISTS segments_unlocked ON segments (start_us)
    WHERE locked = 0 AND state = 'complete';
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER,
    CHECK (end_us IS NULL OR end_us >= start_us)
);
CREATE INDEX IF NOT EXISTS events_by_start ON events (stream_id, start_us);
CREATE TABLE IF NOT EXISTS garbage (
    path TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS pictures (
    id INTEGER PRIMARY KEY,
    channel INTEGER NOT NULL,
    path TEXT NOT NULL UNIQUE,
    taken_us INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pictures_by_time ON pictures (channel, taken_us);
CREATE INDEX IF NOT EXISTS pictures_by_age ON pictures (taken_us);
CREATE TABLE IF NOT EXISTS picture_garbage (
    path TEXT PRIMARY KEY
);
"""

_SEGMENT_COLUMNS = (
    "id, stream_id, path, codec, width, height, start_pts, end_pts, start_us, end_us, bytes, "
    "record_type, locked, state"
)
_PICTURE_COLUMNS = "id, channel, path, taken_us, event_type, bytes"
# "timing" for timed captures, else the event that triggered the picture ("motion", "alarm"...).
PICTURE_EVENT_TYPE = re.compile(r"[a-z][a-z0-9]{0,31}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    stream_id: int
    path: str  # relative to the recording root, '/' separated
    codec: str
    width: int
    height: int
    start_pts: int
    end_pts: int
    start_us: int
    end_us: int
    bytes: int
    record_type: str
    locked: bool
    state: str

    @property
    def duration_pts(self) -> int:
        return self.end_pts - self.start_pts


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    stream_id: int
    type: str
    start_us: int
    end_us: int | None  # None while the event lasts


@dataclass(frozen=True, slots=True)
class Picture:
    id: int
    channel: int
    path: str  # relative to the picture root `<card>/picture`, '/' separated
    taken_us: int  # UTC microseconds
    event_type: str  # "timing" or the triggering event's type
    bytes: int


@dataclass(frozen=True, slots=True)
class StreamTotals:
    stream_id: int
    segments: int
    bytes: int
    locked_bytes: int
    start_us: int
    end_us: int


def _segment(row: tuple) -> Segment:  # type: ignore[type-arg]
    values = list(row)
    values[12] = bool(values[12])
    return Segment(*values)


def _check_span(start_us: int, end_us: int) -> None:
    if end_us < start_us:
        raise ValueError("the span ends before it starts")


def _page(limit: int, offset: int) -> tuple[int, int]:
    if not 1 <= limit <= PAGE_LIMIT or offset < 0:
        raise ValueError(f"a page is 1..{PAGE_LIMIT} rows from a non-negative offset")
    return limit, offset


def _in_clause(column: str, values: Iterable[str] | None) -> tuple[str, list[str]]:
    """` AND column IN (...)` and its parameters; nothing for None, no rows for an empty set."""
    if values is None:
        return "", []
    chosen = sorted(set(values))
    if not chosen:
        return " AND 0", []
    return f" AND {column} IN ({','.join('?' * len(chosen))})", chosen


def _types_clause(record_types: Iterable[str] | None) -> tuple[str, list[str]]:
    if record_types is not None:
        record_types = set(record_types)
        unknown = record_types - set(RECORD_TYPES)
        if unknown:
            raise ValueError(f"unknown record types: {sorted(unknown)}")
    return _in_clause("record_type", record_types)


class RecordingIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # Autocommit mode: transactions are explicit (`_transaction`), one per update.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 5000")
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"the index cannot use WAL here (got {mode})")
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @classmethod
    def open(cls, root: Path) -> RecordingIndex:
        """The index of the recordings under `root` (created if there is none)."""
        return cls(root / INDEX_NAME)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if durable:
                self._db.execute("PRAGMA synchronous = FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous = NORMAL")

    def _query(self, sql: str, params: Iterable[object] = ()) -> list[tuple]:  # type: ignore[type-arg]
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # -- segments -----------------------------------------------------------------------------
    def add_segment(
        self, info: SegmentInfo, path: str, end_pts: int, size: int, state: str = "writing"
    ) -> int:
        """Insert the row of a recording whose first fragment (and name) is on the card."""
        end_us = info.start_us + ticks_to_us(end_pts - info.start_pts)
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO segments (stream_id, path, codec, width, height, start_pts, end_pts,"
                " start_us, end_us, bytes, record_type, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    info.stream_id, path, info.codec, info.width, info.height, info.start_pts,
                    end_pts, info.start_us, end_us, size, info.record_type, state,
                ),
            )  # fmt: skip
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def update_segment(
        self, segment_id: int, end_pts: int, size: int, state: str | None = None
    ) -> None:
        """The recording grew (a fragment was fsynced) or was completed."""
        with self._transaction() as db:
            # end_us as `ticks_to_us` computes it (rounded to the nearest microsecond).
            db.execute(
                "UPDATE segments SET end_pts = ?1,"
                " end_us = start_us + (( ?1 - start_pts) * 1000000 + 45000) / 90000,"
                " bytes = ?2, state = coalesce(?3, state) WHERE id = ?4",
                (end_pts, size, state, segment_id),
            )

    def set_locked(self, segment_ids: Iterable[int], locked: bool) -> int:
        """Lock (keep from overwrite) or unlock; durable at once, it is the user's word."""
        ids = list(segment_ids)
        with self._transaction(durable=True) as db:
            return db.executemany(
                "UPDATE segments SET locked = ? WHERE id = ?", [(int(locked), i) for i in ids]
            ).rowcount

    def segment(self, segment_id: int) -> Segment | None:
        rows = self._query(f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE id = ?", (segment_id,))
        return _segment(rows[0]) if rows else None

    def segment_by_path(self, path: str) -> Segment | None:
        rows = self._query(f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE path = ?", (path,))
        return _segment(rows[0]) if rows else None

    def all_segments(self) -> list[Segment]:
        rows = self._query(f"SELECT {_SEGMENT_COLUMNS} FROM segments ORDER BY id")
        return [_segment(row) for row in rows]

    def segments_overlapping(
        self,
        stream_id: int,
        start_us: int,
        end_us: int,
        record_types: Iterable[str] | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Segment]:
        """Segments of the stream with footage in [start_us, end_us), oldest first, one page."""
        _check_span(start_us, end_us)
        limit, offset = _page(limit, offset)
        types_sql, types = _types_clause(record_types)
        rows = self._query(
            f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE stream_id = ?"
            " AND start_us > ? AND start_us < ? AND end_us > ?"
            f"{types_sql} ORDER BY start_us, id LIMIT ? OFFSET ?",
            (stream_id, start_us - MAX_SEGMENT_US, end_us, start_us, *types, limit, offset),
        )
        return [_segment(row) for row in rows]

    def count_overlapping(
        self,
        stream_id: int,
        start_us: int,
        end_us: int,
        record_types: Iterable[str] | None = None,
    ) -> int:
        _check_span(start_us, end_us)
        types_sql, types = _types_clause(record_types)
        rows = self._query(
            "SELECT count(*) FROM segments WHERE stream_id = ?"
            f" AND start_us > ? AND start_us < ? AND end_us > ?{types_sql}",
            (stream_id, start_us - MAX_SEGMENT_US, end_us, start_us, *types),
        )
        return int(rows[0][0])

    def oldest_unlocked(self, stream_id: int | None = None) -> Segment | None:
        """The complete, unlocked segment to overwrite first (of one stream, or of all)."""
        where = "locked = 0 AND state = 'complete'"
        params: tuple[int, ...] = ()
        if stream_id is not None:
            where += " AND stream_id = ?"
            params = (stream_id,)
        rows = self._query(
            f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE {where} ORDER BY start_us, id LIMIT 1",
            params,
        )
        return _segment(rows[0]) if rows else None

    def totals_by_stream(self) -> dict[int, StreamTotals]:
        rows = self._query(
            "SELECT stream_id, count(*), sum(bytes), sum(CASE WHEN locked THEN bytes ELSE 0 END),"
            " min(start_us), max(end_us) FROM segments GROUP BY stream_id ORDER BY stream_id"
        )
        return {row[0]: StreamTotals(*row) for row in rows}

    def drop_segments(self, segment_ids: Iterable[int]) -> int:
        """Forget rows whose files are gone (reconciliation)."""
        with self._transaction() as db:
            return db.executemany(
                "DELETE FROM segments WHERE id = ?", [(i,) for i in segment_ids]
            ).rowcount

    # -- deletion: segment rows become garbage rows before their files are unlinked -----------
    def mark_garbage(self, segment_ids: Iterable[int], *, force: bool = False) -> list[str]:
        """Turn unlocked, complete segments into garbage rows; the paths to unlink now.

        `force`: whatever their state (reconciliation, for files with nothing playable)."""
        condition = "" if force else " AND locked = 0 AND state = 'complete'"
        paths: list[str] = []
        with self._transaction() as db:
            for segment_id in segment_ids:
                row = db.execute(
                    f"DELETE FROM segments WHERE id = ?{condition} RETURNING path", (segment_id,)
                ).fetchone()
                if row is not None:
                    db.execute("INSERT OR IGNORE INTO garbage (path) VALUES (?)", row)
                    paths.append(row[0])
        return paths

    def add_garbage(self, paths: Iterable[str]) -> None:
        """Files without rows that are to be deleted (e.g. a head without any fragment)."""
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO garbage (path) VALUES (?)", [(p,) for p in paths])

    def garbage(self) -> list[str]:
        return [row[0] for row in self._query("SELECT path FROM garbage ORDER BY path")]

    def forget_garbage(self, paths: Iterable[str]) -> None:
        """The files are unlinked and their directories fsynced: the rows have done their job."""
        with self._transaction() as db:
            db.executemany("DELETE FROM garbage WHERE path = ?", [(p,) for p in paths])

    # -- events -------------------------------------------------------------------------------
    def add_event(
        self, stream_id: int, event_type: str, start_us: int, end_us: int | None = None
    ) -> int:
        if end_us is not None:
            _check_span(start_us, end_us)
        with self._transaction(durable=True) as db:
            cursor = db.execute(
                "INSERT INTO events (stream_id, type, start_us, end_us) VALUES (?, ?, ?, ?)",
                (stream_id, event_type, start_us, end_us),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def end_event(self, event_id: int, end_us: int) -> None:
        with self._transaction(durable=True) as db:
            db.execute(
                "UPDATE events SET end_us = ? WHERE id = ? AND start_us <= ?",
                (end_us, event_id, end_us),
            )

    def events_overlapping(
        self,
        stream_id: int,
        start_us: int,
        end_us: int,
        event_types: Iterable[str] | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Event]:
        """Events of the stream active at some time in [start_us, end_us), oldest first."""
        _check_span(start_us, end_us)
        limit, offset = _page(limit, offset)
        types = sorted(set(event_types)) if event_types is not None else None
        types_sql = "" if types is None else f" AND type IN ({','.join('?' * len(types))})"
        rows = self._query(
            "SELECT id, stream_id, type, start_us, end_us FROM events WHERE stream_id = ?"
            f" AND start_us < ? AND (end_us IS NULL OR end_us > ?){types_sql}"
            " ORDER BY start_us, id LIMIT ? OFFSET ?",
            (stream_id, end_us, start_us, *(types or []), limit, offset),
        )
        return [Event(*row) for row in rows]

    # -- pictures -----------------------------------------------------------------------------
    def add_picture(
        self, channel: int, path: str, taken_us: int, event_type: str, size: int
    ) -> int:
        """Insert the row of a picture whose file (and name) is fsynced on the card."""
        if PICTURE_EVENT_TYPE.fullmatch(event_type) is None:
            raise ValueError(f"bad picture event type {event_type!r}")
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO pictures (channel, path, taken_us, event_type, bytes)"
                " VALUES (?, ?, ?, ?, ?)",
                (channel, path, taken_us, event_type, size),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def picture(self, picture_id: int) -> Picture | None:
        rows = self._query(f"SELECT {_PICTURE_COLUMNS} FROM pictures WHERE id = ?", (picture_id,))
        return Picture(*rows[0]) if rows else None

    def picture_by_path(self, path: str) -> Picture | None:
        rows = self._query(f"SELECT {_PICTURE_COLUMNS} FROM pictures WHERE path = ?", (path,))
        return Picture(*rows[0]) if rows else None

    def pictures_overlapping(
        self,
        channel: int,
        start_us: int,
        end_us: int,
        event_types: Iterable[str] | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Picture]:
        """Pictures of the channel taken in [start_us, end_us), oldest first, one page."""
        _check_span(start_us, end_us)
        limit, offset = _page(limit, offset)
        types_sql, types = _in_clause("event_type", event_types)
        rows = self._query(
            f"SELECT {_PICTURE_COLUMNS} FROM pictures WHERE channel = ?"
            f" AND taken_us >= ? AND taken_us < ?{types_sql}"
            " ORDER BY taken_us, id LIMIT ? OFFSET ?",
            (channel, start_us, end_us, *types, limit, offset),
        )
        return [Picture(*row) for row in rows]

    def count_pictures(
        self,
        channel: int,
        start_us: int,
        end_us: int,
        event_types: Iterable[str] | None = None,
    ) -> int:
        _check_span(start_us, end_us)
        types_sql, types = _in_clause("event_type", event_types)
        rows = self._query(
            "SELECT count(*) FROM pictures WHERE channel = ?"
            f" AND taken_us >= ? AND taken_us < ?{types_sql}",
            (channel, start_us, end_us, *types),
        )
        return int(rows[0][0])

    def oldest_pictures(self, limit: int) -> list[Picture]:
        """The pictures to delete first when the picture quota is exceeded (all channels)."""
        limit, _ = _page(limit, 0)
        rows = self._query(
            f"SELECT {_PICTURE_COLUMNS} FROM pictures ORDER BY taken_us, id LIMIT ?", (limit,)
        )
        return [Picture(*row) for row in rows]

    def picture_bytes(self) -> int:
        """What the indexed pictures take (their file sizes)."""
        return int(self._query("SELECT coalesce(sum(bytes), 0) FROM pictures")[0][0])

    def picture_paths(self, prefix: str) -> set[str]:
        """Paths of the pictures under a folder (`prefix` ends with '/'): an index range."""
        if not prefix.endswith("/"):
            raise ValueError("a picture folder prefix ends with '/'")
        end = prefix[:-1] + chr(ord("/") + 1)
        rows = self._query("SELECT path FROM pictures WHERE path >= ? AND path < ?", (prefix, end))
        return {row[0] for row in rows}

    def drop_pictures(self, picture_ids: Iterable[int]) -> list[str]:
        """Turn picture rows into garbage rows, durably; the paths to unlink now."""
        paths: list[str] = []
        with self._transaction(durable=True) as db:
            for picture_id in picture_ids:
                row = db.execute(
                    "DELETE FROM pictures WHERE id = ? RETURNING path", (picture_id,)
                ).fetchone()
                if row is not None:
                    db.execute("INSERT OR IGNORE INTO picture_garbage (path) VALUES (?)", row)
                    paths.append(row[0])
        return paths

    def picture_garbage(self) -> list[str]:
        return [row[0] for row in self._query("SELECT path FROM picture_garbage ORDER BY path")]

    def forget_picture_garbage(self, paths: Iterable[str]) -> None:
        """The picture files are unlinked and their directories fsynced."""
        with self._transaction() as db:
            db.executemany("DELETE FROM picture_garbage WHERE path = ?", [(p,) for p in paths])
