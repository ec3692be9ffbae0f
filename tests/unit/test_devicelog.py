"""Tests for the device log: recording, search, paging, retention, export, corruption, threads."""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from vigil.system.devicelog import MAJOR_TYPES, DeviceLog, LogRecord

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "devicelog.db"


@pytest.fixture
def log(db_path: Path) -> Iterator[DeviceLog]:
    device_log = DeviceLog(db_path)
    device_log.open()
    yield device_log
    device_log.close()


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def minors_of(records: list[LogRecord]) -> list[str]:
    return [record.minor for record in records]


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "devicelog-writer"]


def fill_mixed(log: DeviceLog) -> None:
    log.record("Operation", "remoteLogin", user="admin", source="10.0.0.5", when=at(0))
    log.record("Alarm", "motionStart", channel=1, when=at(1))
    log.record("Exception", "illegalAccess", user="root", source="10.0.0.9", when=at(2))
    log.record("Operation", "remoteConfigWrite", user="admin", source="10.0.0.5", when=at(3))
    log.record("Information", "ntpSync", details="offset 0.2 s", when=at(4))
    log.record("Operation", "remoteLogout", user="admin", source="10.0.0.5", when=at(5))


def test_search_without_filters_returns_all_oldest_first(log: DeviceLog) -> None:
    fill_mixed(log)
    records, total = log.search()
    assert total == 6
    assert minors_of(records) == [
        "remoteLogin",
        "motionStart",
        "illegalAccess",
        "remoteConfigWrite",
        "ntpSync",
        "remoteLogout",
    ]
    first = records[0]
    assert first.time == at(0)
    assert first.time.tzinfo is not None and first.time.utcoffset() == timedelta(0)
    assert (first.major, first.user, first.source, first.channel) == (
        "Operation",
        "admin",
        "10.0.0.5",
        0,
    )


def test_search_by_major(log: DeviceLog) -> None:
    fill_mixed(log)
    records, total = log.search(majors=["Operation"])
    assert total == 3
    assert minors_of(records) == ["remoteLogin", "remoteConfigWrite", "remoteLogout"]
    records, total = log.search(majors=("Alarm", "Exception"))
    assert total == 2
    assert minors_of(records) == ["motionStart", "illegalAccess"]


def test_search_by_minor(log: DeviceLog) -> None:
    fill_mixed(log)
    records, total = log.search(minors=["remoteLogin", "remoteLogout"])
    assert total == 2
    assert minors_of(records) == ["remoteLogin", "remoteLogout"]
    records, total = log.search(majors=["Alarm"], minors=["remoteLogin"])
    assert (records, total) == ([], 0)


def test_search_by_time_span_is_inclusive(log: DeviceLog) -> None:
    fill_mixed(log)
    records, total = log.search(start=at(2), end=at(4))
    assert total == 3
    assert minors_of(records) == ["illegalAccess", "remoteConfigWrite", "ntpSync"]
    records, _ = log.search(start=at(4))
    assert minors_of(records) == ["ntpSync", "remoteLogout"]
    records, _ = log.search(end=at(0))
    assert minors_of(records) == ["remoteLogin"]


def test_search_combines_major_minor_and_time(log: DeviceLog) -> None:
    fill_mixed(log)
    records, total = log.search(
        majors=["Operation"], minors=["remoteLogin", "remoteLogout"], start=at(1), end=at(10)
    )
    assert total == 1
    assert minors_of(records) == ["remoteLogout"]


def test_search_orders_by_time_not_by_arrival(log: DeviceLog) -> None:
    log.record("Information", "late", when=at(10))
    log.record("Information", "early", when=at(1))
    records, _ = log.search()
    assert minors_of(records) == ["early", "late"]


def test_times_in_other_zones_are_stored_as_utc(log: DeviceLog) -> None:
    plus_two = timezone(timedelta(hours=2))
    log.record("Information", "ntpSync", when=datetime(2026, 3, 1, 14, 0, tzinfo=plus_two))
    records, _ = log.search(start=T0, end=T0)
    assert [record.time for record in records] == [T0]
    assert records[0].time.utcoffset() == timedelta(0)


def test_record_without_time_uses_now(log: DeviceLog) -> None:
    before = datetime.now(UTC)
    log.record("Operation", "startDVR")
    after = datetime.now(UTC)
    records, _ = log.search()
    assert before <= records[0].time <= after


def test_paging_returns_page_and_total(log: DeviceLog) -> None:
    for i in range(25):
        log.record("Operation", "remoteConfigWrite", details=f"n{i}", when=at(i))
    page, total = log.search(offset=10, limit=10)
    assert total == 25
    assert [record.details for record in page] == [f"n{i}" for i in range(10, 20)]
    page, total = log.search(offset=20, limit=10)
    assert (total, [record.details for record in page]) == (25, [f"n{i}" for i in range(20, 25)])
    assert log.search(offset=30, limit=10) == ([], 25)
    assert log.search(limit=0) == ([], 25)
    page, total = log.search(minors=["remoteConfigWrite"], start=at(5), offset=2, limit=3)
    assert (total, [record.details for record in page]) == (20, ["n7", "n8", "n9"])


def test_paging_rejects_negative_values(log: DeviceLog) -> None:
    with pytest.raises(ValueError):
        log.search(offset=-1)
    with pytest.raises(ValueError):
        log.search(limit=-1)


def test_search_rejects_bad_filters(log: DeviceLog) -> None:
    with pytest.raises(ValueError):
        log.search(majors=["Alarms"])
    with pytest.raises(TypeError):
        log.search(majors="Alarm")
    with pytest.raises(ValueError):
        log.search(start=datetime(2026, 3, 1))


def test_retention_by_count_keeps_the_newest(db_path: Path) -> None:
    log = DeviceLog(db_path, max_records=10)
    log.open()
    try:
        for i in range(25):
            log.record("Information", "tick", details=f"n{i}", when=at(i))
        records, total = log.search(limit=100)
        assert total == 10
        assert log.count() == 10
        assert [record.details for record in records] == [f"n{i}" for i in range(15, 25)]
    finally:
        log.close()


def test_set_max_records_applies_at_once(log: DeviceLog) -> None:
    for i in range(20):
        log.record("Information", "tick", details=f"n{i}")
    assert log.count() == 20
    log.set_max_records(5)
    records, total = log.search()
    assert total == 5
    assert [record.details for record in records] == [f"n{i}" for i in range(15, 20)]
    log.record("Information", "tick", details="n20")
    assert [record.details for record in log.search()[0]] == [f"n{i}" for i in range(16, 21)]


def test_set_max_records_rejects_non_positive(log: DeviceLog) -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError):
            log.set_max_records(bad)
    with pytest.raises(ValueError):
        DeviceLog(Path("unused.db"), max_records=0)


def test_smaller_max_records_applies_when_reopened(db_path: Path) -> None:
    log = DeviceLog(db_path)
    log.open()
    for i in range(12):
        log.record("Information", "tick", details=f"n{i}")
    log.close()
    smaller = DeviceLog(db_path, max_records=4)
    smaller.open()
    try:
        assert [record.details for record in smaller.search()[0]] == ["n8", "n9", "n10", "n11"]
    finally:
        smaller.close()


def test_export_csv_parses_back(log: DeviceLog) -> None:
    fill_mixed(log)
    tricky = 'one, "two"\nthree'
    log.record("Alarm", "diskError", channel=2, details=tricky, when=at(6))
    rows = list(csv.reader(io.StringIO(log.export_csv())))
    assert rows[0] == ["id", "time", "major", "minor", "user", "source", "channel", "details"]
    assert len(rows) == 1 + 7
    records, _ = log.search()
    for row, record in zip(rows[1:], records, strict=True):
        assert int(row[0]) == record.id
        assert datetime.fromisoformat(row[1]) == record.time
        assert row[1].endswith("Z")
        assert row[2:6] == [record.major, record.minor, record.user, record.source]
        assert int(row[6]) == record.channel
        assert row[7] == record.details
    assert rows[-1][7] == tricky


def test_export_csv_applies_filters(log: DeviceLog) -> None:
    fill_mixed(log)
    rows = list(csv.DictReader(io.StringIO(log.export_csv(majors=["Operation"], end=at(3)))))
    assert [row["minor"] for row in rows] == ["remoteLogin", "remoteConfigWrite"]
    assert all(row["major"] == "Operation" for row in rows)
    empty = list(csv.reader(io.StringIO(log.export_csv(minors=["nothingHere"]))))
    assert len(empty) == 1


def test_export_csv_defuses_spreadsheet_formulas(log: DeviceLog) -> None:
    log.record("Exception", "illegalAccess", user="=cmd|' /C calc'!A0", details="@SUM(1)")
    row = next(csv.DictReader(io.StringIO(log.export_csv())))
    assert row["user"] == "'=cmd|' /C calc'!A0"
    assert row["details"] == "'@SUM(1)"
    records, _ = log.search()
    assert records[0].user == "=cmd|' /C calc'!A0"


@pytest.mark.parametrize("garbage", [b"not a database at all", bytes(range(256)) * 32])
def test_corrupt_db_is_moved_aside(
    db_path: Path, caplog: pytest.LogCaptureFixture, garbage: bytes
) -> None:
    db_path.write_bytes(garbage)
    log = DeviceLog(db_path)
    with caplog.at_level(logging.ERROR, logger="vigil.system.devicelog"):
        log.open()
    try:
        moved = list(db_path.parent.glob("devicelog.db.corrupt-*"))
        assert len(moved) == 1
        assert moved[0].read_bytes() == garbage
        assert any(
            r.levelno == logging.ERROR and "corrupt" in r.getMessage() for r in caplog.records
        )
        log.record("Exception", "diskError", details="fresh")
        records, total = log.search()
        assert total == 1
        assert records[0].details == "fresh"
    finally:
        log.close()


def test_truncated_db_is_moved_aside(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = DeviceLog(db_path)
    log.open()
    for i in range(2000):
        log.record("Information", "tick", details=f"record {i} " + "x" * 200)
    log.close()
    with db_path.open("r+b") as handle:
        handle.truncate(db_path.stat().st_size // 2)
    reopened = DeviceLog(db_path)
    with caplog.at_level(logging.ERROR, logger="vigil.system.devicelog"):
        reopened.open()
    try:
        assert len(list(db_path.parent.glob("devicelog.db.corrupt-*"))) == 1
        assert reopened.count() == 0
    finally:
        reopened.close()


def test_db_with_scrambled_records_is_moved_aside(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Damage inside pages that opening and the schema read never touch: only the integrity
    # check at open finds it.
    log = DeviceLog(db_path)
    log.open()
    for i in range(2000):
        log.record("Information", "tick", details=f"record {i} " + "x" * 200)
    log.close()
    data = bytearray(db_path.read_bytes())
    page_size = 4096
    for page in range(1, len(data) // page_size):
        data[page * page_size + 4000] ^= 0x5A
    db_path.write_bytes(bytes(data))
    reopened = DeviceLog(db_path)
    with caplog.at_level(logging.ERROR, logger="vigil.system.devicelog"):
        reopened.open()
    try:
        assert len(list(db_path.parent.glob("devicelog.db.corrupt-*"))) == 1
        assert any("corrupt" in r.getMessage() for r in caplog.records)
        assert reopened.count() == 0
    finally:
        reopened.close()


def test_unopenable_path_is_not_moved_aside(tmp_path: Path) -> None:
    # A directory where the file should be is not corruption: leave it and fail loudly.
    (tmp_path / "devicelog.db").mkdir()
    log = DeviceLog(tmp_path / "devicelog.db")
    with pytest.raises(sqlite3.OperationalError):
        log.open()
    assert (tmp_path / "devicelog.db").is_dir()
    assert not list(tmp_path.glob("*.corrupt-*"))
    assert not writer_threads()


def test_concurrent_records_from_many_threads_lose_nothing(log: DeviceLog) -> None:
    threads_n, per_thread = 8, 500
    barrier = threading.Barrier(threads_n)

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            log.record("Operation", "remoteConfigWrite", user=f"t{n}", details=f"{n}:{i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.count() == threads_n * per_thread
    records, total = log.search(limit=threads_n * per_thread)
    assert total == threads_n * per_thread
    assert {r.details for r in records} == {
        f"{n}:{i}" for n in range(threads_n) for i in range(per_thread)
    }
    for n in range(threads_n):
        details = [r.details for r in records if r.user == f"t{n}"]
        # One thread's records keep their order (same timestamps are broken by id).
        assert details == [f"{n}:{i}" for i in range(per_thread)]


def test_record_does_not_wait_for_a_locked_database(log: DeviceLog, db_path: Path) -> None:
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        for i in range(100):
            log.record("Information", "tick", details=str(i))
        assert time.monotonic() - started < 0.5
        time.sleep(0.3)
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert log.count() == 100


@pytest.mark.parametrize("major", ["alarm", "Warning", "", None])
def test_invalid_major_raises(log: DeviceLog, major: object) -> None:
    with pytest.raises(ValueError):
        log.record(major, "remoteLogin")  # type: ignore[arg-type]
    assert log.count() == 0


@pytest.mark.parametrize(
    "minor", ["", "1abc", "remote-login", "remote login", "remoteLogin\n", "a" * 65, "é", None]
)
def test_invalid_minor_raises(log: DeviceLog, minor: object) -> None:
    with pytest.raises(ValueError):
        log.record("Operation", minor)  # type: ignore[arg-type]
    assert log.count() == 0


def test_valid_minor_edges_are_accepted(log: DeviceLog) -> None:
    log.record("Operation", "a")
    log.record("Operation", "A" + "9" * 63)
    assert log.count() == 2


def test_other_invalid_arguments_raise(log: DeviceLog) -> None:
    with pytest.raises(ValueError):
        log.record("Operation", "remoteLogin", when=datetime(2026, 3, 1, 12, 0))
    with pytest.raises(ValueError):
        log.record("Alarm", "motionStart", channel=-1)
    with pytest.raises(TypeError):
        log.record("Operation", "remoteLogin", user=42)  # type: ignore[arg-type]
    assert log.count() == 0


def test_long_fields_are_truncated(log: DeviceLog) -> None:
    log.record("Operation", "remoteLogin", user="u" * 100, source="s" * 100, details="d" * 5000)
    record = log.search()[0][0]
    assert record.user == "u" * 32
    assert record.source == "s" * 64
    assert record.details == "d" * 1024


def test_data_survives_close_and_reopen(db_path: Path) -> None:
    log = DeviceLog(db_path)
    log.open()
    fill_mixed(log)
    log.close()
    reopened = DeviceLog(db_path)
    reopened.open()
    try:
        records, total = reopened.search()
        assert total == 6
        assert minors_of(records)[0] == "remoteLogin"
        reopened.record("Operation", "remoteReboot", when=at(9))
        newest = reopened.search(minors=["remoteReboot"])[0][0]
        assert newest.id > max(record.id for record in records)
    finally:
        reopened.close()


def test_close_writes_what_is_queued(db_path: Path) -> None:
    log = DeviceLog(db_path)
    log.open()
    for i in range(1000):
        log.record("Information", "tick", details=str(i))
    log.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM log").fetchone()[0] == 1000


def test_close_leaves_no_thread_alive(db_path: Path) -> None:
    before = set(threading.enumerate())
    log = DeviceLog(db_path)
    log.open()
    started = set(threading.enumerate()) - before
    assert started and all(thread.is_alive() for thread in started)
    log.record("Operation", "stopDVR")
    log.close()
    assert not any(thread.is_alive() for thread in started)
    assert set(threading.enumerate()) - before == set()
    log.close()  # a second close is harmless


def test_use_after_close_raises(db_path: Path) -> None:
    log = DeviceLog(db_path)
    log.open()
    log.close()
    with pytest.raises(RuntimeError):
        log.record("Operation", "remoteLogin")
    with pytest.raises(RuntimeError):
        log.search()
    with pytest.raises(RuntimeError):
        log.count()


def test_open_twice_keeps_one_writer(log: DeviceLog) -> None:
    log.open()
    assert len(writer_threads()) == 1


def test_schema_is_wal_with_search_indexes(log: DeviceLog, db_path: Path) -> None:
    log.record("Information", "ntpSync")
    assert log.count() == 1
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        indexed = {
            tuple(col[2] for col in conn.execute(f"PRAGMA index_info({name})"))
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'log'"
            )
        }
        plan = " ".join(
            str(row[3])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM log WHERE major = 'Alarm' AND minor = 'x'"
                " AND time_us >= 0 ORDER BY time_us"
            )
        )
    assert ("time_us",) in indexed
    assert ("major", "minor", "time_us") in indexed
    assert "log_type_time" in plan


def test_major_types_are_the_hikvision_ones() -> None:
    assert MAJOR_TYPES == ("Alarm", "Exception", "Operation", "Information")
