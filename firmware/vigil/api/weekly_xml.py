"""Weekly schedules in ISAPI documents: the pieces the record schedule (`TrackSchedule`) and the
event arming schedules (`Schedule`/`TimeBlockList`) spell the same way.

Times of day are `hh:mm:ss` on the minute (`24:00:00` ends a day) and become the model's
"HH:MM"; a week is at most 8 periods a day, none overlapping (`config.weekly`). Every refusal
is a `badParameters` naming where in the document it was.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from vigil.api.errors import bad_parameters
from vigil.config.schema import ConfigError, from_dict
from vigil.config.weekly import WEEKDAYS, Period, check_week, minutes

TIME_OF_DAY = re.compile(r"(\d\d):(\d\d)(?::(\d\d))?")

P = TypeVar("P", bound=Period)


def time_of_day(text: str, where: str) -> str:
    """`07:30:00` (or `07:30`) sent in `where` -> "07:30"; seconds must be 00."""
    match = TIME_OF_DAY.fullmatch(text)
    if match is None:
        raise bad_parameters(f"{where} {text[:16]!r} is not hh:mm:ss")
    if match[3] not in (None, "00"):
        raise bad_parameters(f"{where} {text}: periods start and end on the minute")
    return f"{match[1]}:{match[2]}"


def isapi_time(time: str) -> str:
    """`07:30` -> `07:30:00`, as ISAPI documents spell times of day."""
    return f"{time}:00"


def period(cls: type[P], where: str, **fields: Any) -> P:
    """One period of the model built from what a document said (values checked)."""
    try:
        return from_dict(cls, fields)
    except ConfigError as exc:
        raise bad_parameters(f"{where}: {exc}") from None


def checked_week(periods: list[P], where: str) -> list[P]:
    """`periods` if they make a valid week (<= 8 a day, no overlap), else badParameters."""
    try:
        check_week(periods)
    except ValueError as exc:
        raise bad_parameters(f"{where}: {exc}") from None
    return periods


def in_week_order(periods: Sequence[P]) -> list[P]:
    return sorted(periods, key=lambda p: (WEEKDAYS.index(p.day), minutes(p.start)))
