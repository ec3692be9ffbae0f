"""The `IrcutFilter` part on its own (as the whole `ImageChannel` document embeds it): shown
and read back, the night period read as the day period's complement, `auto` refused without a
light sensor."""

from __future__ import annotations

import pytest

from vigil.api.errors import IsapiError
from vigil.api.isapi_daynight import ircut_doc, parse_ircut
from vigil.api.xml import parse, render
from vigil.config.image import DayNightSettings


def read(body: str, current: DayNightSettings, **kwargs: bool) -> DayNightSettings:
    return parse_ircut(parse(body.encode(), "IrcutFilter"), current, **kwargs)


def test_a_shown_document_reads_back_as_the_same_settings() -> None:
    settings = DayNightSettings(mode="schedule", sensitivity=6, delay_s=45,
                                day_start="06:00:00", night_start="20:15:00")  # fmt: skip
    body = render("IrcutFilter", ircut_doc(settings)).decode()
    assert read(body, DayNightSettings()) == settings


def test_elements_left_out_keep_their_values() -> None:
    current = DayNightSettings(sensitivity=2, delay_s=60)
    new = read("<IrcutFilter><IrcutFilterType>night</IrcutFilterType></IrcutFilter>", current)
    assert new == DayNightSettings(mode="night", sensitivity=2, delay_s=60)


def test_a_night_period_is_kept_as_the_day_period() -> None:
    body = (
        "<IrcutFilter><Schedule><scheduleType>night</scheduleType><TimeRange>"
        "<beginTime>21:00:00</beginTime><endTime>05:30:00</endTime></TimeRange></Schedule>"
        "</IrcutFilter>"
    )
    new = read(body, DayNightSettings())
    assert (new.day_start, new.night_start) == ("05:30:00", "21:00:00")


def test_auto_is_refused_without_a_light_sensor() -> None:
    body = "<IrcutFilter><IrcutFilterType>auto</IrcutFilterType></IrcutFilter>"
    with pytest.raises(IsapiError, match="no light sensor"):
        read(body, DayNightSettings(mode="day"), light_sensor=False)
    schedule = body.replace("auto", "schedule")
    assert read(schedule, DayNightSettings(), light_sensor=False).mode == "schedule"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("<Schedule><scheduleType>dusk</scheduleType></Schedule>", "day or night"),
        ("<Schedule><TimeRange><beginTime>07:00:00</beginTime></TimeRange></Schedule>", "both"),
        ("<nightToDayFilterLevel>-1</nightToDayFilterLevel>", "nightToDayFilterLevel"),
    ],
)
def test_bad_parts_are_refused(body: str, words: str) -> None:
    with pytest.raises(IsapiError, match=words):
        read(f"<IrcutFilter>{body}</IrcutFilter>", DayNightSettings())
