"""Tests for the device clock drivers and the ISAPI time-zone formatting.

What is not tested, on purpose: `LinuxClock.set` succeeding. CLOCK_REALTIME is not virtualised
by Linux time namespaces (`unshare --time` only offsets CLOCK_MONOTONIC and CLOCK_BOOTTIME), so
a successful set would change the host's real clock. Instead the refusal path is run for real in
a child process whose capability bounding set lacks CAP_SYS_TIME; the child checks that it
really lacks the capability before calling `set`, so it can never move the host clock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigil.board.clock import (
    ClockError,
    LinuxClock,
    SimClock,
    local_iso,
    make_clock,
    parse_local_iso,
    parse_time_zone,
)

CAP_SYS_TIME = 25


def close_to(a: datetime, b: datetime, tolerance_s: float = 1.0) -> bool:
    return abs((a - b).total_seconds()) < tolerance_s


# -- SimClock -----------------------------------------------------------------------------------
def test_sim_clock_starts_on_host_time(tmp_path: Path) -> None:
    clock = SimClock(tmp_path / "clock.json")
    assert clock.now().tzinfo is UTC
    assert close_to(clock.now(), datetime.now(UTC))
    assert clock.source == "system"


def test_sim_clock_set_moves_only_the_device_time(tmp_path: Path) -> None:
    clock = SimClock(tmp_path / "clock.json")
    when = datetime(2001, 1, 1, tzinfo=UTC)
    host_before = time.time()
    clock.set(when)
    assert close_to(clock.now(), when)
    assert clock.source == "manual"
    assert abs(time.time() - host_before) < 5  # the host clock went on as before
    clock.set(datetime(2030, 6, 1, 12, tzinfo=UTC), source="NTP")
    assert close_to(clock.now(), datetime(2030, 6, 1, 12, tzinfo=UTC))
    assert clock.source == "NTP"


def test_sim_clock_keeps_running(tmp_path: Path) -> None:
    clock = SimClock(tmp_path / "clock.json")
    clock.set(datetime(2001, 1, 1, tzinfo=UTC))
    first = clock.now()
    time.sleep(0.05)
    assert clock.now() > first


def test_sim_clock_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    when = datetime(2001, 1, 1, 8, 30, tzinfo=UTC)
    SimClock(path).set(when, source="NTP")
    reborn = SimClock(path)
    assert close_to(reborn.now(), when)
    assert reborn.source == "NTP"
    assert set(json.loads(path.read_text())) == {"offset_s", "source"}


def test_sim_clock_accepts_any_offset_and_converts_to_utc(tmp_path: Path) -> None:
    clock = SimClock(tmp_path / "clock.json")
    clock.set(parse_local_iso("2026-11-21T18:15:00+08:00"))
    assert close_to(clock.now(), datetime(2026, 11, 21, 10, 15, tzinfo=UTC))
    assert clock.now().tzinfo is UTC


def test_sim_clock_rejects_naive_time_and_unknown_source(tmp_path: Path) -> None:
    clock = SimClock(tmp_path / "clock.json")
    with pytest.raises(ValueError):
        clock.set(datetime(2001, 1, 1))
    with pytest.raises(ValueError):
        clock.set(datetime(2001, 1, 1, tzinfo=UTC), source="GPS")
    assert not (tmp_path / "clock.json").exists()


@pytest.mark.parametrize(
    "when", [datetime(1969, 12, 31, 23, 59, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)]
)
def test_clock_refuses_times_out_of_range(tmp_path: Path, when: datetime) -> None:
    clock = SimClock(tmp_path / "clock.json")
    with pytest.raises(ClockError, match="outside"):
        clock.set(when)
    assert close_to(clock.now(), datetime.now(UTC))


def test_sim_clock_survives_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    path.write_text("{not json")
    clock = SimClock(path)
    assert close_to(clock.now(), datetime.now(UTC))
    clock.set(datetime(2001, 1, 1, tzinfo=UTC))
    assert close_to(SimClock(path).now(), datetime(2001, 1, 1, tzinfo=UTC))


def test_make_clock(tmp_path: Path) -> None:
    assert isinstance(make_clock("sim", tmp_path), SimClock)
    assert isinstance(make_clock("linux", tmp_path), LinuxClock)
    with pytest.raises(ValueError):
        make_clock("gps", tmp_path)


# -- LinuxClock ---------------------------------------------------------------------------------
def test_linux_clock_reads_the_system_clock() -> None:
    clock = LinuxClock()
    now = clock.now()
    assert now.tzinfo is UTC
    assert abs(now.timestamp() - time.time()) < 1
    assert clock.source == "system"


def test_linux_clock_rejects_naive_time_before_touching_anything() -> None:
    with pytest.raises(ValueError):
        LinuxClock().set(datetime(2001, 1, 1))


# Run in a child without CAP_SYS_TIME. It refuses to call set() (exit 3) if it still has the
# capability, so this test can never change the host's clock.
_CHILD = f"""
import sys
from datetime import UTC, datetime
status = open("/proc/self/status").read()
effective = int(status.split("CapEff:")[1].split()[0], 16)
if effective >> {CAP_SYS_TIME} & 1:
    sys.exit(3)
from vigil.board.clock import ClockError, LinuxClock
clock = LinuxClock()
try:
    clock.set(datetime(2001, 1, 1, tzinfo=UTC))
except ClockError as exc:
    print("ClockError:", exc, "| source:", clock.source)
    sys.exit(0)
sys.exit(4)
"""


def test_linux_clock_set_without_cap_sys_time_raises_clock_error() -> None:
    argv = [sys.executable, "-c", _CHILD]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to drop CAP_SYS_TIME as root")
        argv = [setpriv, "--bounding-set", "-sys_time", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 3, "the child still had CAP_SYS_TIME; set() was not called"
    assert done.returncode == 0, done.stderr
    assert "CAP_SYS_TIME" in done.stdout
    assert "source: system" in done.stdout


# -- time zones ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tz", "hours", "minutes"),
    [
        ("CST-8:00:00", 8, 0),
        ("UTC+0:00:00", 0, 0),
        ("UTC0", 0, 0),
        ("EST+5:00:00", -5, 0),
        ("EST5", -5, 0),
        ("IST-5:30:00", 5, 30),
        ("NST+3:30:00", -3, -30),
        ("NPT-5:45", 5, 45),
        ("CET-1", 1, 0),
        ("TOT-13:00:00", 13, 0),
        ("BIT+12:00:00", -12, 0),
        ("LINT-14:00:00", 14, 0),
    ],
)
def test_parse_time_zone(tz: str, hours: int, minutes: int) -> None:
    zone = parse_time_zone(tz)
    assert zone.utcoffset(None) == timedelta(hours=hours, minutes=minutes)
    assert zone.tzname(None) == tz[: len(tz) - len(tz.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))]


@pytest.mark.parametrize(
    "tz",
    [
        "",
        "8:00:00",
        "CST",
        "C-8",
        "CSTTOOLONG-8",
        "CST-8:00:00DST",
        "CST-8:00:00DST-9,M4.1.0/02:00,M10.5.0/02:00",
        "CST-24:00:00",
        "CST-8:60:00",
        "CST-8:00:60",
        "CST-8:0:00",
        "CST--8",
        "CST-123",
        "CST-8:00:00:00",
        "CST-\u0668",  # an Arabic-Indic eight: a digit to Unicode, not to POSIX
    ],
)
def test_parse_time_zone_rejects(tz: str) -> None:
    with pytest.raises(ValueError):
        parse_time_zone(tz)


def test_parse_time_zone_ignores_surrounding_blanks() -> None:
    assert parse_time_zone(" CST-8:00:00\n").utcoffset(None) == timedelta(hours=8)


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("CST-8:00:00", "2026-11-21T18:15:00+08:00"),
        ("UTC+0:00:00", "2026-11-21T10:15:00+00:00"),
        ("EST+5:00:00", "2026-11-21T05:15:00-05:00"),
        ("IST-5:30:00", "2026-11-21T15:45:00+05:30"),
        ("LINT-14:00:00", "2026-11-22T00:15:00+14:00"),
        ("BIT+12:00:00", "2026-11-20T22:15:00-12:00"),
    ],
)
def test_local_iso(tz: str, expected: str) -> None:
    when = datetime(2026, 11, 21, 10, 15, 0, 123456, tzinfo=UTC)
    assert local_iso(when, tz) == expected
    assert parse_local_iso(expected) == when.replace(microsecond=0)


def test_local_iso_rejects_naive_time_and_bad_zone() -> None:
    with pytest.raises(ValueError):
        local_iso(datetime(2026, 11, 21, 10, 15), "CST-8:00:00")
    with pytest.raises(ValueError):
        local_iso(datetime(2026, 11, 21, 10, 15, tzinfo=UTC), "China")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T18:15:00+08:00", datetime(2026, 11, 21, 10, 15, tzinfo=UTC)),
        ("2026-11-21T10:15:00Z", datetime(2026, 11, 21, 10, 15, tzinfo=UTC)),
        ("2026-11-21T10:15:00.5Z", datetime(2026, 11, 21, 10, 15, 0, 500000, tzinfo=UTC)),
        ("2026-11-21T05:15:00-05:00", datetime(2026, 11, 21, 10, 15, tzinfo=UTC)),
        (" 2026-11-21T10:15:00+00:00\n", datetime(2026, 11, 21, 10, 15, tzinfo=UTC)),
    ],
)
def test_parse_local_iso(text: str, expected: datetime) -> None:
    parsed = parse_local_iso(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-11-21T18:15:00",
        "2026-11-21",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-11-21T25:00:00Z",
        "2026-11-21T18:15:00+25:00",
        "2026-11-21T18:15:00Z" + " " * 80 + "x",
    ],
)
def test_parse_local_iso_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_local_iso(text)
