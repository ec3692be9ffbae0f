"""Weekly schedules and the record policy: which period is in force, what a period's mode
records under with which events live, and the rules a schedule must keep."""

from __future__ import annotations

from datetime import datetime

import pytest

from vigil.config.model import RecordPeriod, RecordTrack, all_week
from vigil.config.schema import ConfigError, from_dict
from vigil.config.weekly import copy_day, period_at
from vigil.record.service import record_type_for


def test_period_at_follows_day_and_time() -> None:
    week = [
        RecordPeriod(day="monday", start="08:00", end="12:00", mode="motion"),
        RecordPeriod(day="monday", start="12:00", end="24:00", mode="continuous"),
        RecordPeriod(day="sunday", start="00:00", end="06:30", mode="alarm"),
    ]
    monday = datetime(2026, 11, 16, 7, 59)  # a Monday
    assert period_at(week, monday) is None
    assert period_at(week, monday.replace(hour=8, minute=0)).mode == "motion"  # type: ignore[union-attr]
    assert period_at(week, monday.replace(hour=12)).mode == "continuous"  # type: ignore[union-attr]
    assert period_at(week, monday.replace(hour=23, minute=59)).mode == "continuous"  # type: ignore[union-attr]
    sunday = datetime(2026, 11, 22, 6, 29)
    assert period_at(week, sunday).mode == "alarm"  # type: ignore[union-attr]
    assert period_at(week, sunday.replace(minute=30)) is None


@pytest.mark.parametrize(
    ("mode", "live", "expected"),
    [
        ("continuous", set(), "continuous"),
        ("motion", set(), None),
        ("motion", {"alarm"}, None),
        ("motion", {"motion"}, "motion"),
        ("alarm", {"alarm", "tamper"}, "alarm"),
        ("motion|alarm", {"alarm"}, "alarm"),
        ("motion|alarm", {"motion", "alarm"}, "motion"),
        ("motion|alarm", {"tamper"}, None),
        ("motion&alarm", {"motion"}, None),
        ("motion&alarm", {"motion", "alarm"}, "event"),
        ("event", set(), None),
        ("event", {"tamper"}, "event"),
        ("event", {"alarm"}, "alarm"),
    ],
)
def test_record_type_for_modes(mode: str, live: set[str], expected: str | None) -> None:
    assert record_type_for(mode, live) == expected


def track_dict(schedule: list[dict[str, str]]) -> dict[str, object]:
    return {"id": 101, "schedule": schedule}


@pytest.mark.parametrize(
    ("schedule", "complaint"),
    [
        ([{"day": "monday", "start": "10:00", "end": "09:00"}], "not before the end"),
        ([{"day": "monday", "start": "10:00", "end": "10:00"}], "not before the end"),
        ([{"day": "monday", "start": "24:00", "end": "24:00"}], "not before the end"),
        ([{"day": "monday", "start": "25:00", "end": "26:00"}], "start"),
        ([{"day": "funday", "start": "00:00", "end": "01:00"}], "day"),
        ([{"day": "monday", "mode": "sometimes"}], "mode"),
        (
            [
                {"day": "monday", "start": "08:00", "end": "10:00"},
                {"day": "monday", "start": "09:00", "end": "11:00"},
            ],
            "overlap",
        ),
        (
            [{"day": "monday", "start": f"{h:02d}:00", "end": f"{h:02d}:30"} for h in range(9)],
            "at most 8",
        ),
    ],
)
def test_bad_schedules_are_refused(schedule: list[dict[str, str]], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        from_dict(RecordTrack, track_dict(schedule))


def test_eight_periods_a_day_and_a_copied_week_are_fine() -> None:
    day = [{"day": "monday", "start": f"{h:02d}:00", "end": f"{h:02d}:30"} for h in range(8)]
    track = from_dict(RecordTrack, track_dict(day))
    week = copy_day(track.schedule, "monday", ["tuesday", "sunday"])
    assert len(week) == 24 and {p.day for p in week} == {"monday", "tuesday", "sunday"}
    assert from_dict(RecordTrack, track_dict([p.__dict__ for p in week])).schedule == week
    assert len(all_week()) == 7


def test_track_records_a_stream_of_its_channel() -> None:
    with pytest.raises(ConfigError, match="channel"):
        from_dict(RecordTrack, {"id": 101, "stream": 201})
