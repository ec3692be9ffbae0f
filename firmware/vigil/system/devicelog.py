"""The device log: a searchable record of the device's alarms, exceptions, operations and info.

This is the log a user searches through the API (Hikvision "log search"), not the daemon's
`logging` output. Records live in SQLite in WAL mode. `record()` is called from the asyncio event
loop, so it only validates and enqueues; one writer thread turns the queue into one transaction
per batch and applies retention by count. Searches run in worker threads on a separate read
connection and first wait until everything recorded before them is written.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

logger = logging.getLogger(__name__)

MAJOR_TYPES = ("Alarm", "Exception", "Operation", "Information")

_MINOR_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_MAX_USER = 32
_MAX_SOURCE = 64
_MAX_DETAILS = 1024
_BATCH_MAX = 500
# Far more than a burst of real events; past it the writer is stuck (dead card) and memory matters
# more than a log nobody can write.
_QUEUE_MAX = 50_000
_FLUSH_TIMEOUT_S = 10.0
_JOIN_TIMEOUT_S = 30.0
# Another process (a support tool) may hold the write lock for a while; waiting beats losing rows.
_BUSY_TIMEOUT_S = 30.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_CSV_HEADER = ("id", "time", "major", "minor", "user", "source", "channel", "details")
# Spreadsheets run a cell starting with these as a formula, and user names and details can come
# from whoever knocked on the door (illegalAccess).
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")

# Schema version N is _MIGRATIONS[:N] applied, counted in PRAGMA user_version. Only append.
# AUTOINCREMENT so an id names one record forever, even after retention empties the table.
_MIGRATIONS = (
    """
    CREATE TABLE log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_us INTEGER NOT NULL,
        major TEXT NOT NULL,
        minor TEXT NOT NULL,
        user_name TEXT NOT NULL,
        source TEXT NOT NULL,
        channel INTEGER NOT NULL,
        details TEXT NOT NULL
    );
    CREATE INDEX log_time ON log (time_us);
    CREATE INDEX log_type_time ON log (major, minor, time_us);
    """,
)

_INSERT = (
    "INSERT INTO log (time_us, major, minor, user_name, source, channel, details)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_RETAIN = "DELETE FROM log WHERE id <= (SELECT id FROM log ORDER BY id DESC LIMIT 1 OFFSET ?)"
_COLUMNS = "id, time_us, major, minor, user_name, source, channel, details"
_ORDER = " ORDER BY time_us, id"

_Row = tuple[int, str, str, str, str, int, str]


@dataclass(frozen=True)
class LogRecord:
    id: int
    time: datetime  # timezone-aware UTC
    major: str
    minor: str
    user: str  # "" when none
    source: str  # source IP address, "" when local
    channel: int  # 0 when not channel-specific
    details: str


@dataclass(frozen=True)
class _Flush:
    """Set `done` once everything queued before it is committed."""

    done: threading.Event
    retain: bool = False


class _Stop:
    """Tells the writer to finish: everything queued before it is still written."""


class _CorruptDatabaseError(Exception):
    pass


_Item = _Row | _Flush | _Stop


class _Writer(threading.Thread):
    """Owns the write connection and turns queued rows into one transaction per batch."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        inbox: queue.Queue[_Item],
        max_records: Callable[[], int],
    ) -> None:
        super().__init__(name="devicelog-writer", daemon=True)
        self._conn = conn
        self._inbox = inbox
        self._max_records = max_records

    def run(self) -> None:
        try:
            while self._serve_batch():
                pass
        finally:
            self._conn.close()

    def _take_batch(self) -> list[_Item]:
        batch = [self._inbox.get()]
        while len(batch) < _BATCH_MAX:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _serve_batch(self) -> bool:
        """Write one batch in queue order; False once told to stop."""
        rows: list[_Row] = []
        for item in self._take_batch():
            if isinstance(item, tuple):
                rows.append(item)
                continue
            self._write(rows)
            rows = []
            if isinstance(item, _Stop):
                return False
            if item.retain:
                self._retain()
            item.done.set()
        self._write(rows)
        return True

    def _write(self, rows: list[_Row]) -> None:
        if not rows:
            return
        try:
            with self._conn:
                self._conn.executemany(_INSERT, rows)
                self._conn.execute(_RETAIN, (self._max_records(),))
        except sqlite3.Error:
            # The writer must outlive a bad card: the rows are gone, the next batch may succeed.
            logger.exception("device log: could not write %d records", len(rows))

    def _retain(self) -> None:
        try:
            with self._conn:
                self._conn.execute(_RETAIN, (self._max_records(),))
        except sqlite3.Error:
            logger.exception("device log: could not apply retention")


class DeviceLog:
    """The device log at `path`, keeping at most `max_records` records (the newest)."""

    def __init__(self, path: Path, max_records: int = 100_000) -> None:
        _check_max_records(max_records)
        self._path = Path(path)
        self._max_records = max_records
        # _state_lock guards the inbox and writer; _read_lock guards the read connection.
        self._state_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._inbox: queue.Queue[_Item] | None = None
        self._writer: _Writer | None = None
        self._reader: sqlite3.Connection | None = None
        self._dropped = 0

    def open(self) -> None:
        """Create or migrate the database and start the writer; a no-op when already open."""
        with self._state_lock:
            if self._writer is not None:
                return
            write_conn = self._open_database()
            try:
                reader = _connect(self._path)
                reader.execute("PRAGMA query_only = ON")
            except BaseException:
                write_conn.close()
                raise
            inbox: queue.Queue[_Item] = queue.Queue()
            writer = _Writer(write_conn, inbox, lambda: self._max_records)
            # max_records may have shrunk since the last run.
            inbox.put_nowait(_Flush(threading.Event(), retain=True))
            writer.start()
            self._reader, self._inbox, self._writer = reader, inbox, writer

    def close(self) -> None:
        """Write what is queued, stop the writer thread and close the database."""
        with self._state_lock:
            if self._writer is None or self._inbox is None:
                return
            writer, inbox = self._writer, self._inbox
            self._writer = self._inbox = None
            inbox.put_nowait(_Stop())
        writer.join(_JOIN_TIMEOUT_S)
        if writer.is_alive():
            logger.error("device log writer did not stop within %.0f s", _JOIN_TIMEOUT_S)
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def record(
        self,
        major: str,
        minor: str,
        *,
        user: str = "",
        source: str = "",
        channel: int = 0,
        details: str = "",
        when: datetime | None = None,
    ) -> None:
        """Queue one record; returns at once (safe to call from the event loop)."""
        row = _make_row(major, minor, user, source, channel, details, when)
        with self._state_lock:
            inbox = self._require_inbox()
            if inbox.qsize() >= _QUEUE_MAX:
                self._note_dropped()
                return
            inbox.put_nowait(row)

    def search(
        self,
        *,
        majors: Sequence[str] = (),
        minors: Sequence[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[LogRecord], int]:
        """One page of matching records, oldest first, and the number of all matches.

        `start` and `end` are inclusive. Blocks; call it through `asyncio.to_thread`.
        """
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        where, params = _where(majors, minors, start, end)
        self._flush()
        with self._read_lock:
            conn = self._require_reader()
            # One read transaction, so the page and the total describe the same moment.
            conn.execute("BEGIN")
            try:
                total = conn.execute(f"SELECT COUNT(*) FROM log{where}", params).fetchone()[0]
                page = conn.execute(
                    f"SELECT {_COLUMNS} FROM log{where}{_ORDER} LIMIT ? OFFSET ?",
                    [*params, limit, offset],
                ).fetchall()
            finally:
                conn.execute("COMMIT")
        return [_to_record(row) for row in page], total

    def export_csv(
        self,
        *,
        majors: Sequence[str] = (),
        minors: Sequence[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> str:
        """All matching records as CSV, oldest first, with a header line and ISO-8601 UTC times."""
        where, params = _where(majors, minors, start, end)
        self._flush()
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(_CSV_HEADER)
        with self._read_lock:
            conn = self._require_reader()
            for row in conn.execute(f"SELECT {_COLUMNS} FROM log{where}{_ORDER}", params):
                writer.writerow(_csv_fields(_to_record(row)))
        return out.getvalue()

    def set_max_records(self, n: int) -> None:
        """Keep at most `n` records from now on, deleting the oldest beyond it at once."""
        _check_max_records(n)
        self._max_records = n
        with self._state_lock:
            if self._inbox is None:
                return  # applied by open()
        self._flush(retain=True)

    def count(self) -> int:
        """How many records the log holds."""
        self._flush()
        with self._read_lock:
            return int(self._require_reader().execute("SELECT COUNT(*) FROM log").fetchone()[0])

    def _open_database(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return _prepare(self._path)
        except _CorruptDatabaseError as exc:
            moved = _move_aside(self._path)
            logger.error(
                "device log %s is corrupt (%s); moved it to %s and started a new log",
                self._path,
                exc,
                moved,
            )
            return _prepare(self._path)

    def _flush(self, *, retain: bool = False) -> None:
        """Wait until everything recorded so far is committed."""
        done = threading.Event()
        with self._state_lock:
            self._require_inbox().put_nowait(_Flush(done, retain))
        if not done.wait(_FLUSH_TIMEOUT_S):
            # A stuck card should not also make the log unreadable: show what is stored.
            logger.warning(
                "device log writer did not catch up within %.0f s; reading what is stored",
                _FLUSH_TIMEOUT_S,
            )

    def _require_inbox(self) -> queue.Queue[_Item]:
        if self._inbox is None:
            raise RuntimeError("device log is not open")
        return self._inbox

    def _require_reader(self) -> sqlite3.Connection:
        if self._reader is None:
            raise RuntimeError("device log is not open")
        return self._reader

    def _note_dropped(self) -> None:
        self._dropped += 1
        if self._dropped == 1 or self._dropped % 1000 == 0:
            logger.warning("device log writer is behind; %d records dropped so far", self._dropped)


def _check_max_records(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"max_records must be a positive integer, not {n!r}")


def _make_row(
    major: str,
    minor: str,
    user: str,
    source: str,
    channel: int,
    details: str,
    when: datetime | None,
) -> _Row:
    if major not in MAJOR_TYPES:
        raise ValueError(f"major type must be one of {MAJOR_TYPES}, not {major!r}")
    if not isinstance(minor, str) or not _MINOR_PATTERN.fullmatch(minor):
        raise ValueError(f"invalid minor type {minor!r}")
    if isinstance(channel, bool) or not isinstance(channel, int) or channel < 0:
        raise ValueError(f"channel must be a non-negative integer, not {channel!r}")
    time_us = _to_micros(datetime.now(UTC) if when is None else when)
    return (
        time_us,
        major,
        minor,
        _clip(user, _MAX_USER, "user"),
        _clip(source, _MAX_SOURCE, "source"),
        channel,
        _clip(details, _MAX_DETAILS, "details"),
    )


def _clip(value: str, limit: int, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value[:limit]


def _to_micros(when: datetime) -> int:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return (when - _EPOCH) // _ONE_MICROSECOND


def _from_micros(time_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=time_us)


def _where(
    majors: Sequence[str],
    minors: Sequence[str],
    start: datetime | None,
    end: datetime | None,
) -> tuple[str, list[object]]:
    """The WHERE clause (placeholders only) and its parameters for a search."""
    if isinstance(majors, str) or isinstance(minors, str):
        raise TypeError("majors and minors are sequences of str, not a str")
    unknown = set(majors) - set(MAJOR_TYPES)
    if unknown:
        raise ValueError(f"unknown major types {sorted(unknown)}")
    clauses: list[str] = []
    params: list[object] = []
    for column, values in (("major", majors), ("minor", minors)):
        distinct = list(dict.fromkeys(values))
        if distinct:
            clauses.append(f"{column} IN ({', '.join('?' * len(distinct))})")
            params.extend(distinct)
    if start is not None:
        clauses.append("time_us >= ?")
        params.append(_to_micros(start))
    if end is not None:
        clauses.append("time_us <= ?")
        params.append(_to_micros(end))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _to_record(row: tuple[int, int, str, str, str, str, int, str]) -> LogRecord:
    record_id, time_us, major, minor, user, source, channel, details = row
    return LogRecord(record_id, _from_micros(time_us), major, minor, user, source, channel, details)


def _csv_fields(record: LogRecord) -> tuple[object, ...]:
    return (
        record.id,
        record.time.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        record.major,
        record.minor,
        _defuse_formula(record.user),
        _defuse_formula(record.source),
        record.channel,
        _defuse_formula(record.details),
    )


def _defuse_formula(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_LEADS) else text


def _connect(path: Path) -> sqlite3.Connection:
    # The writer thread uses the connection open() made; reads come from any worker thread,
    # serialized by a lock, hence check_same_thread=False on both.
    return sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, check_same_thread=False)


def _prepare(path: Path) -> sqlite3.Connection:
    """A write connection to a checked, migrated database; _CorruptDatabaseError if corrupt."""
    conn = _connect(path)
    try:
        _check_integrity(conn)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if _is_corruption(exc):
            raise _CorruptDatabaseError(str(exc)) from exc
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def _check_integrity(conn: sqlite3.Connection) -> None:
    # quick_check reads every page once: a boot-time cost, but a torn card otherwise surfaces
    # later as failed writes and searches instead of a fresh log now.
    problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise _CorruptDatabaseError("; ".join(problems[:3]))


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    # Only these codes mean the file itself is bad; a missing directory or a locked file is not
    # a reason to move the user's log aside.
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(_MIGRATIONS):
        logger.warning(
            "device log schema %d is newer than this firmware's %d; using it as is",
            version,
            len(_MIGRATIONS),
        )
    for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")


def _move_aside(path: Path) -> Path:
    """Rename the database and its WAL/SHM files to *.corrupt-<UTC time>; the new name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    # The WAL belongs to the old file; left behind, it could be replayed into the new one.
    for suffix in ("", "-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.replace(companion, target.with_name(target.name + suffix))
    return target
