"""Day/night: the auto mode's hysteresis and delay on a fake clock, the modes and the schedule,
and the IR-cut and illuminator lines on gpiozero's mock pins, with a real EventBus and the
simulated I2C light sensor."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.local import LocalPiFactory
from gpiozero.pins.mock import MockFactory, MockPin

from vigil.board.description import BoardDayNight
from vigil.board.lightsensor import make_light_sensor
from vigil.config.image import ChannelImage, DayNightSettings, ImageSettings
from vigil.events.bus import EventBus
from vigil.media.daynight import (
    AutoSwitch,
    DayNight,
    IrCutLines,
    scheduled_night,
    thresholds,
)

PAIR = BoardDayNight(
    ircut="pair", day_line="GPIO5", night_line="GPIO6", pulse_ms=50, illuminator="GPIO13",
    light_sensor="bh1750",
)  # fmt: skip
AUTO = DayNightSettings(delay_s=20)  # sensitivity 4: night below 5 lx, day above 15 lx


def at(hms: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-21T{hms}")


def states(pin: MockPin) -> list[bool]:
    return [bool(s.state) for s in pin.states]


def wait_pulse_over(lines: IrCutLines) -> None:
    deadline = time.monotonic() + 2
    for device in (lines.day, lines.night):
        assert device is not None
        while device.value and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not device.value, "the pulse did not end"


# -- thresholds, delay and schedule ------------------------------------------------------------
def test_sensitivity_maps_to_two_thresholds_three_times_apart() -> None:
    assert thresholds(0) == (0.5, 1.5)
    assert thresholds(4) == (5.0, 15.0)
    assert thresholds(7) == (20.0, 60.0)
    nights = [thresholds(s)[0] for s in range(8)]
    assert nights == sorted(nights)  # more sensitive: night sooner


def test_night_comes_only_after_the_whole_delay_below_the_threshold() -> None:
    auto = AutoSwitch()
    for second in range(20):  # 0..19 s below 5 lx
        assert auto.decide(False, 3.0, AUTO, float(second)) is False
    assert auto.decide(False, 3.0, AUTO, 20.0) is True


def test_a_flicker_shorter_than_the_delay_does_not_switch() -> None:
    auto = AutoSwitch()
    for second in range(15):
        assert auto.decide(False, 1.0, AUTO, float(second)) is False
    assert auto.decide(False, 6.0, AUTO, 15.0) is False  # back above: the count restarts
    for second in range(16, 36):
        assert auto.decide(False, 1.0, AUTO, float(second)) is False
    assert auto.decide(False, 1.0, AUTO, 36.0) is True


def test_readings_between_the_thresholds_keep_the_state_either_way() -> None:
    auto = AutoSwitch()
    for second in range(0, 300, 10):
        assert auto.decide(True, 10.0, AUTO, float(second)) is True  # night stays night
        assert auto.decide(False, 10.0, AUTO, float(second)) is False  # day stays day
    for second in range(300, 320):
        assert auto.decide(True, 16.0, AUTO, float(second)) is True
    assert auto.decide(True, 16.0, AUTO, 320.0) is False


def test_the_delay_is_the_settings() -> None:
    auto = AutoSwitch()
    short = dataclasses.replace(AUTO, delay_s=5)
    assert auto.decide(False, 0.0, short, 100.0) is False
    assert auto.decide(False, 0.0, short, 104.9) is False
    assert auto.decide(False, 0.0, short, 105.0) is True


def test_schedule_is_night_outside_the_day_period() -> None:
    settings = DayNightSettings(mode="schedule", day_start="07:00:00", night_start="19:30:00")
    assert scheduled_night(settings, at("06:59:59"))
    assert not scheduled_night(settings, at("07:00:00"))
    assert not scheduled_night(settings, at("19:29:59"))
    assert scheduled_night(settings, at("19:30:00"))
    over_midnight = dataclasses.replace(settings, day_start="22:00:00", night_start="06:00:00")
    assert not scheduled_night(over_midnight, at("23:00:00"))
    assert not scheduled_night(over_midnight, at("05:59:59"))
    assert scheduled_night(over_midnight, at("12:00:00"))


# -- the lines ---------------------------------------------------------------------------------
def test_a_pair_pulses_the_night_line_then_the_day_line() -> None:
    lines = IrCutLines(PAIR, MockFactory())
    assert lines.day is not None and lines.night is not None
    day_pin, night_pin = lines.day.pin, lines.night.pin
    assert isinstance(day_pin, MockPin) and isinstance(night_pin, MockPin)
    lines.set_filter(True)
    wait_pulse_over(lines)
    assert states(night_pin) == [False, True, False]
    assert states(day_pin) == [False]
    assert night_pin.states[2].timestamp == pytest.approx(0.05, abs=0.04)  # the pulse's length
    lines.set_filter(False)
    wait_pulse_over(lines)
    assert states(day_pin) == [False, True, False]
    assert states(night_pin) == [False, True, False]
    lines.close()


def test_a_pair_never_drives_both_lines_at_once() -> None:
    lines = IrCutLines(dataclasses.replace(PAIR, pulse_ms=1000), MockFactory())
    assert lines.day is not None and lines.night is not None
    lines.set_filter(True)
    assert lines.night.value == 1
    lines.set_filter(False)  # mid-pulse: the night line drops before the day line rises
    assert lines.night.value == 0 and lines.day.value == 1
    lines.close()


def test_a_level_line_is_high_at_night_and_the_illuminator_follows() -> None:
    board = BoardDayNight(ircut="level", night_line="GPIO6", illuminator="GPIO13")
    lines = IrCutLines(board, MockFactory())
    assert lines.day is None and lines.night is not None and lines.illuminator is not None
    lines.set_filter(True)
    assert lines.night.value == 1
    assert lines.set_illuminator(True) and lines.illuminator.value == 1
    assert not lines.set_illuminator(True)  # no change
    lines.set_filter(False)
    assert lines.night.value == 0
    lines.close()


# -- the service -------------------------------------------------------------------------------
@dataclass
class Rig:
    service: DayNight
    lines: IrCutLines
    bus: EventBus
    clock: list[float]
    settings: list[DayNightSettings]
    local: list[datetime]
    monochrome: list[bool] = field(default_factory=list)
    records: list[tuple[str, str]] = field(default_factory=list)

    def set(self, **changes: object) -> None:
        old = self.settings[0]
        self.settings[0] = dataclasses.replace(old, **changes)  # type: ignore[arg-type]
        self.service.apply(image(old), image(self.settings[0]))

    def read(self, lux: float, seconds: int = 1) -> None:
        """`seconds` readings of `lux`, one a second, through the simulated sensor."""
        assert self.service.light is not None and self.service.sensor is not None
        self.service.light.set_lux(lux)
        for _ in range(seconds):
            self.clock[0] += 1
            self.service.evaluate(self.service.sensor.read_lux())

    def events(self) -> list[tuple[str, int, bool, dict[str, str]]]:
        return [(e.type, e.source, e.active, dict(e.details)) for e in self.bus.history()]

    def pulses(self) -> tuple[int, int]:
        """How many pulses the day and the night line have had."""
        wait_pulse_over(self.lines)
        assert self.lines.day is not None and self.lines.night is not None
        day_pin, night_pin = self.lines.day.pin, self.lines.night.pin
        assert isinstance(day_pin, MockPin) and isinstance(night_pin, MockPin)
        return states(day_pin).count(True), states(night_pin).count(True)


def image(settings: DayNightSettings) -> ImageSettings:
    return ImageSettings(channels=[ChannelImage(day_night=settings)])


@asynccontextmanager
async def rig(settings: DayNightSettings = AUTO, lux: float = 300.0) -> AsyncIterator[Rig]:
    bus = EventBus(lambda: datetime.now(UTC))
    sensor, light = make_light_sensor(PAIR)
    assert light is not None
    light.set_lux(lux)
    lines = IrCutLines(PAIR, MockFactory())
    clock, box, local = [1000.0], [settings], [at("12:00:00")]
    monochrome: list[bool] = []
    records: list[tuple[str, str]] = []
    service = DayNight(
        lines, sensor, lambda: box[0], bus, lambda: local[0], monochrome.append,
        lambda minor, details: records.append((minor, details)), light,
        monotonic=lambda: clock[0],
    )  # fmt: skip
    service.evaluate(sensor.read_lux() if sensor else None)
    try:
        yield Rig(service, lines, bus, clock, box, local, monochrome, records)
    finally:
        bus.clear()
        lines.close()


async def test_auto_goes_to_night_after_the_delay_and_back_past_the_upper_threshold() -> None:
    async with rig() as r:
        assert r.service.night is False and r.monochrome == [False] and r.events() == []
        assert r.pulses() == (1, 0)  # the filter put in at start
        r.read(3.0, 20)  # the first reading below starts the delay: 19 s so far
        assert r.service.night is False
        r.read(3.0)
        assert r.service.night is True
        assert r.pulses() == (1, 1) and r.monochrome == [False, True]
        assert r.lines.illuminator is not None and r.lines.illuminator.value == 1
        assert r.events() == [("dayNight", 1, True, {"state": "night", "mode": "auto",
                                                      "lux": "3.3"})]  # fmt: skip
        assert r.records == [("dayToNight", "auto, 3.3 lx")]
        r.read(10.0, 60)  # the band: stays night
        assert r.service.night is True
        r.read(20.0, 20)
        assert r.service.night is True
        r.read(20.0)
        assert r.service.night is False and r.monochrome == [False, True, False]
        assert r.pulses() == (2, 1) and r.lines.illuminator.value == 0
        assert r.records[-1] == ("nightToDay", "auto, 20.0 lx")


async def test_a_dark_start_is_night_at_once_without_an_event() -> None:
    async with rig(lux=0.5) as r:
        assert r.service.night is True and r.monochrome == [True]
        assert r.events() == [] and r.records == []


async def test_forced_modes_switch_at_once_and_auto_resumes_with_its_delay() -> None:
    async with rig() as r:
        r.set(mode="night")
        assert r.service.night is True and r.records == [("dayToNight", "night, 300.0 lx")]
        r.read(300.0, 5)
        assert r.service.night is True  # forced: the light does not matter
        r.set(mode="day")
        assert r.service.night is False
        r.set(mode="auto")
        r.read(1.0, 20)
        assert r.service.night is False
        r.read(1.0)
        assert r.service.night is True


async def test_schedule_follows_the_device_clock() -> None:
    async with rig() as r:
        r.local[0] = at("20:00:00")
        r.set(mode="schedule", day_start="06:30:00", night_start="18:00:00")
        assert r.service.night is True
        r.local[0] = at("06:30:00")
        r.read(0.0)  # dark, but the schedule says day
        assert r.service.night is False


async def test_the_illuminator_setting_applies_live_at_night() -> None:
    async with rig(lux=0.0) as r:
        assert r.lines.illuminator is not None and r.lines.illuminator.value == 1
        r.set(illuminator=False)
        assert r.lines.illuminator.value == 0 and r.service.night is True
        assert not r.service.status().illuminator
        r.set(illuminator=True)
        assert r.lines.illuminator.value == 1


async def test_status_says_the_state_and_the_last_reading() -> None:
    async with rig(lux=42.0) as r:
        status = r.service.status()
        assert (status.channel, status.mode, status.night) == (1, "auto", False)
        assert status.lux == pytest.approx(42.0, abs=0.5)


async def test_a_sensor_that_stops_answering_keeps_the_state() -> None:
    async with rig(lux=0.0) as r:
        assert r.service.sensor is not None
        r.service.sensor.close()  # the bus now fails every transfer
        assert await r.service._read() is None
        r.service.evaluate(None)
        assert r.service.night is True and r.service.status().lux is None


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"lux": "dark"}, "lux is a number"),
        ({"lux": True}, "lux is a number"),
        ({"lux": 1, "x": 2}, "a light request"),
        (3.5, "a light request"),
        ({"lux": -2}, "outside"),
    ],
)
async def test_the_simulators_light_refuses_bad_requests(request_: object, message: str) -> None:
    async with rig(lux=80.0) as r:
        with pytest.raises(ValueError, match=message):
            r.service.sim_light(request_)
        assert r.service.light is not None and r.service.light.lux == 80.0
        r.service.sim_light({"lux": 3})
        assert r.service.light.lux == 3.0


Apply = Callable[[ImageSettings, ImageSettings], None]


async def test_settings_of_another_channel_change_nothing() -> None:
    async with rig() as r:
        apply: Apply = r.service.apply
        other = ImageSettings(channels=[ChannelImage(channel=2, day_night=DayNightSettings(
            mode="night"))])  # fmt: skip
        apply(image(AUTO), ImageSettings(channels=[ChannelImage(), *other.channels]))
        assert r.service.night is False


class SharedPinsFactory(MockFactory, LocalPiFactory):
    """Mock pins kept where lgpio, rpigpio and native keep theirs: shared by every factory."""


def test_closing_the_lines_leaves_a_shared_factorys_other_pins_open() -> None:
    alarm_factory, lines_factory = SharedPinsFactory(), SharedPinsFactory()
    try:
        relay = DigitalOutputDevice("GPIO22", pin_factory=alarm_factory)
        lines = IrCutLines(PAIR, lines_factory)
        lines.close()
        relay.on()  # the alarm I/O's relay still works until its own service stops it
        assert relay.value == 1
        relay.close()
    finally:
        alarm_factory.close()
    own = MockFactory()
    IrCutLines(PAIR, own).close()
    assert own.pins == {}
