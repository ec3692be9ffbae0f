"""The device clock: read and set wall-clock time, and format it for ISAPI's time zones.

A real board sets the kernel clock (and the RTC, so the time survives a power cut); the
simulated board keeps its own offset from the host clock, so `--board sim` can be set to any
time without touching the host.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

from vigil.config.atomic import write_atomic

log = logging.getLogger(__name__)

SOURCES = ("manual", "NTP", "system")
# What a device can be set to: the kernel refuses times before the epoch, and a time past 2099
# is certainly a client's mistake (and beyond many RTC chips).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)
HWCLOCK_TIMEOUT_S = 10.0
# The standard-time part of a POSIX TZ string as Hikvision sends it: name, then the offset
# *west* of Greenwich ("CST-8:00:00" is UTC+08:00). DST rules are not supported (SysCap says so).
_TIME_ZONE = re.compile(r"([A-Za-z]{3,6})([+-]?)(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?", re.ASCII)
_MAX_ISO_LEN = 64


class ClockError(Exception):
    """The board cannot set its clock; the message says why."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The device's current time, timezone-aware, in UTC."""
        ...

    def set(self, when: datetime, *, source: str = "manual") -> None:
        """Set the device's time to `when` (timezone-aware); raises ClockError."""
        ...

    @property
    def source(self) -> str:
        """Who set the clock last: "manual", "NTP", or "system" (nobody since boot)."""
        ...


def _check_set(when: datetime, source: str) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("the clock is set from a timezone-aware datetime")
    if source not in SOURCES:
        raise ValueError(f"clock source {source!r} is not one of {SOURCES}")
    if not EARLIEST <= when <= LATEST:
        raise ClockError(f"{when.isoformat()} is outside the settable range 1970-2099")


class SimClock:
    """The simulated board's clock: host time plus an offset kept in a JSON file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0.0
        self._source = "system"
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            self._offset = float(saved["offset_s"])
            if saved.get("source") in SOURCES:
                self._source = saved["source"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A damaged file must not stop the device booting; it just starts on host time.
            log.warning("ignoring unreadable clock state %s: %s", path, exc)

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self._offset, UTC)

    def set(self, when: datetime, *, source: str = "manual") -> None:
        _check_set(when, source)
        offset = when.timestamp() - time.time()
        state = {"offset_s": offset, "source": source}
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self._path, json.dumps(state).encode())
        except OSError as exc:
            raise ClockError(f"cannot save the simulated clock: {exc}") from exc
        self._offset, self._source = offset, source
        log.info(
            "simulated clock set to %s by %s", self.now().isoformat(timespec="seconds"), source
        )

    @property
    def source(self) -> str:
        return self._source


class LinuxClock:
    """The real board's clock: the kernel's CLOCK_REALTIME, copied to the RTC when there is one."""

    def __init__(self) -> None:
        self._source = "system"

    def now(self) -> datetime:
        return datetime.now(UTC)

    def set(self, when: datetime, *, source: str = "manual") -> None:
        _check_set(when, source)
        try:
            time.clock_settime(time.CLOCK_REALTIME, when.timestamp())
        except PermissionError as exc:
            raise ClockError("not permitted to set the system clock (needs CAP_SYS_TIME)") from exc
        except OSError as exc:
            raise ClockError(f"cannot set the system clock: {exc}") from exc
        self._source = source
        log.info("system clock set to %s by %s", when.isoformat(timespec="seconds"), source)
        self._write_rtc()

    def _write_rtc(self) -> None:
        # The kernel clock is already right; a missing or failing RTC only costs the time after
        # the next power cut (until NTP runs again), so it is logged and not raised.
        hwclock = shutil.which("hwclock")
        if hwclock is None:
            return
        try:
            done = subprocess.run(
                [hwclock, "--systohc"],
                capture_output=True,
                text=True,
                timeout=HWCLOCK_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("could not write the RTC: %s", exc)
            return
        if done.returncode != 0:
            log.warning("hwclock --systohc failed: %s", done.stderr.strip() or done.returncode)

    @property
    def source(self) -> str:
        return self._source


def make_clock(driver: str, data_dir: Path) -> Clock:
    """The clock for `board.clock.driver`: "sim" or "linux"."""
    if driver == "sim":
        return SimClock(data_dir / "clock.json")
    if driver == "linux":
        return LinuxClock()
    raise ValueError(f"unknown clock driver {driver!r}")


# -- ISAPI time zones and local times ---------------------------------------------------------
def parse_time_zone(tz: str) -> timezone:
    """Hikvision's `timeZone` ("CST-8:00:00") -> a fixed-offset timezone (UTC+08:00)."""
    match = _TIME_ZONE.fullmatch(tz.strip())
    if match is None:
        raise ValueError(f"{tz!r} is not a time zone like CST-8:00:00")
    name, sign, hours, minutes, seconds = match.groups()
    h, m, s = int(hours), int(minutes or 0), int(seconds or 0)
    if m > 59 or s > 59:
        raise ValueError(f"{tz!r}: minutes and seconds go up to 59")
    west = timedelta(hours=h, minutes=m, seconds=s)
    if west >= timedelta(hours=24):
        raise ValueError(f"{tz!r}: the offset must be less than 24 hours")
    # POSIX counts the offset westwards, so "-8" is east of Greenwich: UTC+8.
    return timezone(west if sign == "-" else -west, name.upper())


def local_iso(when: datetime, tz: str) -> str:
    """`when` as device-local ISO 8601 with its offset, e.g. 2026-11-21T18:15:00+08:00."""
    if when.tzinfo is None:
        raise ValueError("local_iso needs a timezone-aware datetime")
    return when.astimezone(parse_time_zone(tz)).isoformat(timespec="seconds")


def parse_local_iso(text: str) -> datetime:
    """ISO 8601 with an offset or `Z` -> an aware datetime in UTC; ValueError otherwise."""
    text = text.strip()
    if not text or len(text) > _MAX_ISO_LEN:
        raise ValueError("expected an ISO 8601 date and time")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (add Z or +hh:mm)")
    return parsed.astimezone(UTC)
