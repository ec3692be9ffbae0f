"""Weekly schedules (SPEC §4, §5): periods of a day of the week, at most 8 a day.

Used by record schedules and, with the same rules, by event arming schedules. Times are the
device's local time of day as "HH:MM" ("24:00" ends a day). A period never crosses midnight:
a night shift is two periods, one on each day, as on Hikvision and Dahua devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from itertools import pairwise
from typing import Any, Protocol, TypeVar

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_PERIODS_PER_DAY = 8
TIME_OF_DAY = r"([01]\d|2[0-3]):[0-5]\d|24:00"
MINUTES_PER_DAY = 24 * 60


class Period(Protocol):
    """A period as the record and arming schedules spell it (frozen dataclasses)."""

    @property
    def day(self) -> str: ...

    @property
    def start(self) -> str: ...

    @property
    def end(self) -> str: ...


def minutes(time_of_day: str) -> int:
    """ "07:30" -> 450."""
    hours, mins = time_of_day.split(":")
    return int(hours) * 60 + int(mins)


def check_period(period: Period) -> None:
    if minutes(period.start) >= minutes(period.end):
        span = f"{period.day} {period.start}-{period.end}"
        raise ValueError(f"{span}: the start is not before the end")


def check_week(periods: Sequence[Period]) -> None:
    """At most 8 periods a day, none overlapping another of the same day."""
    for day in WEEKDAYS:
        spans = sorted((minutes(p.start), minutes(p.end)) for p in periods if p.day == day)
        if len(spans) > MAX_PERIODS_PER_DAY:
            raise ValueError(f"{day}: at most {MAX_PERIODS_PER_DAY} periods a day")
        for (_, end), (start, _) in pairwise(spans):
            if start < end:
                raise ValueError(f"{day}: periods overlap")


P = TypeVar("P", bound=Any)


def period_at(periods: Sequence[P], when: datetime) -> P | None:
    """The period that covers the local time `when`, if one does."""
    day = WEEKDAYS[when.weekday()]
    now = when.hour * 60 + when.minute
    return next(
        (p for p in periods if p.day == day and minutes(p.start) <= now < minutes(p.end)), None
    )


def copy_day(periods: Sequence[P], source: str, targets: Sequence[str]) -> list[P]:
    """The week with `source`'s periods copied onto each of `targets` (replacing theirs)."""
    kept = [p for p in periods if p.day not in targets or p.day == source]
    copies = [replace(p, day=t) for t in targets if t != source for p in periods if p.day == source]
    return kept + copies
