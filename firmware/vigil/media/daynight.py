"""Day/night: the IR-cut filter, the IR illuminator and black-and-white at night (SPEC §3).

Modes (`config.image.DayNightSettings`, channel 1's, the board's only sensor): `day` and `night`
switch at once; `schedule` is night outside `day_start`..`night_start` in the device's local
time (a day period may run over midnight), looked at every second; `auto` reads the board's
light sensor every second.

Auto, what was chosen where the issue is silent:

- Hysteresis: two thresholds. Day turns to night when the light is below `night_below`, night
  turns to day when it is above `day_above` = 3 x `night_below` (the IR LEDs and the picture's
  own gain make the first minutes of night brighter than dusk was; a factor of 3 keeps a camera
  from flapping at dusk). A reading between the two keeps the current state.
- Sensitivity 0-7 (Hikvision's `nightToDayFilterLevel`, 4 by default): the higher, the sooner
  the camera goes to night (and the later it comes back):

      sensitivity   0    1    2    3    4    5    6    7
      night below   0.5  1    2    3    5    8    12   20   lx
      day above     1.5  3    6    9    15   24   36   60   lx

- Delay (`delay_s`, 5-120 s, 20 by default as the SPEC says): the switch happens only once every
  reading for the whole delay was past the threshold; a reading back on the current side, or
  in the band between the thresholds, starts the count again. A flicker shorter than the delay
  switches nothing.
- At start the first reading decides at once (a camera started at night does not wait in day
  mode); without a reading (no sensor, or it does not answer) the state stays as it is, day at
  start, and the failure and the recovery are logged once each.

A switch drives the IR-cut (a `pulse_ms` pulse on the day or night line of a bistable filter,
the other line low first so the H-bridge never sees both; or the level of a single line),
lights the illuminator at night if `illuminator` allows (a change of that setting applies at
once), calls `monochrome(night)` (the ISP's black-and-white, where the sensor has one), logs
one line, adds a device log record (`dayToNight` / `nightToDay`, through `record`) and pulses a
`dayNight` event on the bus for channel 1 with details `state`, `mode` and `lux`. The event
reaches the alert stream only through a `dayNight` trigger with `center` linkage, like any
event type; none is made by default. Settings apply live (`apply`, subscribed to "image").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gpiozero import DigitalOutputDevice, Factory
from gpiozero.pins.local import LocalPiFactory

from vigil.board.description import BoardDayNight
from vigil.board.gpio import make_pin_factory
from vigil.board.lightsensor import LightSensor, SimLight, make_light_sensor
from vigil.config.image import DayNightSettings, ImageSettings
from vigil.events.bus import EventBus

log = logging.getLogger(__name__)

EVENT_TYPE = "dayNight"
PERIOD_S = 1.0
NIGHT_BELOW = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0)  # lx, by sensitivity 0-7
DAY_FACTOR = 3.0


def thresholds(sensitivity: int) -> tuple[float, float]:
    """(night below, day above) in lux for a sensitivity 0-7."""
    night_below = NIGHT_BELOW[sensitivity]
    return night_below, night_below * DAY_FACTOR


def scheduled_night(settings: DayNightSettings, local: datetime) -> bool:
    """Whether `local` (the device's local time) is outside the schedule's day period."""
    now = local.strftime("%H:%M:%S")
    day, night = settings.day_start, settings.night_start
    if day < night:
        return not day <= now < night
    return night <= now < day  # the day period runs over midnight


class AutoSwitch:
    """The auto mode's decision: hysteresis and the delay, on a monotonic clock in seconds."""

    def __init__(self) -> None:
        self._past_since: float | None = None  # when the light went past the threshold

    def reset(self) -> None:
        self._past_since = None

    def decide(self, night: bool, lux: float, settings: DayNightSettings, now: float) -> bool:
        """The state to be in (night or not) after reading `lux` at `now`."""
        night_below, day_above = thresholds(settings.sensitivity)
        past = lux > day_above if night else lux < night_below
        if not past:
            self._past_since = None
            return night
        if self._past_since is None:
            self._past_since = now
        if now - self._past_since < settings.delay_s:
            return night
        self._past_since = None
        return not night


class IrCutLines:
    """The IR-cut filter's and the illuminator's GPIO lines (`[day_night]` of the board)."""

    def __init__(self, board: BoardDayNight, factory: Factory) -> None:
        self.board = board
        self._factory = factory  # owned: closed with the lines (unless a LocalPiFactory)

        def line(name: str) -> DigitalOutputDevice | None:
            if not name:
                return None
            return DigitalOutputDevice(name, initial_value=False, pin_factory=factory)

        self.day = line(board.day_line) if board.ircut == "pair" else None
        self.night = line(board.night_line) if board.ircut != "none" else None
        self.illuminator = line(board.illuminator)

    def set_filter(self, night: bool) -> None:
        """Filter out (night) or in (day)."""
        if self.night is None:
            return
        if self.day is None:  # one line, its level
            self.night.value = night
            return
        pulse, other = (self.night, self.day) if night else (self.day, self.night)
        other.off()  # stops a pulse still running on the other line
        pulse.blink(on_time=self.board.pulse_ms / 1000, off_time=0, n=1, background=True)

    def set_illuminator(self, on: bool) -> bool:
        """Light (or not) the IR LEDs; whether that changed anything."""
        if self.illuminator is None or bool(self.illuminator.value) == on:
            return False
        self.illuminator.value = on
        return True

    def status_illuminator(self) -> bool:
        return self.illuminator is not None and bool(self.illuminator.value)

    def close(self) -> None:
        for device in (self.day, self.night, self.illuminator):
            if device is not None:
                device.off()
                device.close()
        if not isinstance(self._factory, LocalPiFactory):
            self._factory.close()  # a local factory's pins are shared: the alarm lines' too


@dataclass(frozen=True)
class DayNightStatus:
    channel: int
    mode: str
    night: bool
    lux: float | None  # the last reading; None: no sensor, or it did not answer
    illuminator: bool


class DayNight:
    def __init__(
        self,
        lines: IrCutLines,
        sensor: LightSensor | None,
        settings: Callable[[], DayNightSettings],
        bus: EventBus,
        local_now: Callable[[], datetime],
        monochrome: Callable[[bool], None] | None = None,
        record: Callable[[str, str], None] | None = None,
        light: SimLight | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        channel: int = 1,
    ) -> None:
        self.lines, self.sensor, self.light = lines, sensor, light
        self._settings, self._bus, self._local_now = settings, bus, local_now
        self._monochrome, self._record, self._monotonic = monochrome, record, monotonic
        self.channel = channel
        self.night: bool | None = None  # None until the first evaluation
        self.lux: float | None = None
        self._auto = AutoSwitch()
        self._sensor_failed = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_board(
        cls,
        board: BoardDayNight,
        settings: Callable[[], DayNightSettings],
        bus: EventBus,
        local_now: Callable[[], datetime],
        monochrome: Callable[[bool], None] | None = None,
        record: Callable[[str, str], None] | None = None,
    ) -> DayNight:
        """The board's lines and sensor (BoardError if they cannot be opened)."""
        sensor, light = make_light_sensor(board)
        lines = IrCutLines(board, make_pin_factory(board))
        return cls(lines, sensor, settings, bus, local_now, monochrome, record, light)

    # -- life -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.evaluate(await self._read())
        self._task = asyncio.create_task(self._run(), name="day-night")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.lines.close()
        if self.sensor is not None:
            self.sensor.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PERIOD_S)
            self.evaluate(await self._read())

    async def _read(self) -> float | None:
        if self.sensor is None:
            return None
        try:
            lux = await asyncio.to_thread(self.sensor.read_lux)
        except OSError as exc:
            if not self._sensor_failed:
                log.warning("day/night: the %s light sensor does not answer: %s",
                            self.sensor.kind, exc)  # fmt: skip
            self._sensor_failed = True
            return None
        if self._sensor_failed:
            log.info("day/night: the %s light sensor answers again", self.sensor.kind)
            self._sensor_failed = False
        return lux

    # -- deciding ---------------------------------------------------------------------------
    def evaluate(self, lux: float | None) -> None:
        """One look: the reading `lux` (None: none) and the settings -> the state to be in."""
        settings = self._settings()
        self.lux = lux
        night = self._wanted(settings, lux)
        if night != self.night:
            self._switch(night, settings)
            return
        lit = night and settings.illuminator
        if self.lines.set_illuminator(lit):
            log.info("day/night: IR illuminator %s", "on" if lit else "off")

    def _wanted(self, settings: DayNightSettings, lux: float | None) -> bool:
        if settings.mode != "auto":
            self._auto.reset()
        if settings.mode in ("day", "night"):
            return settings.mode == "night"
        if settings.mode == "schedule":
            return scheduled_night(settings, self._local_now())
        if lux is None:
            return bool(self.night)
        if self.night is None:
            return lux < thresholds(settings.sensitivity)[0]
        return self._auto.decide(self.night, lux, settings, self._monotonic())

    def _switch(self, night: bool, settings: DayNightSettings) -> None:
        first = self.night is None
        self.night = night
        self.lines.set_filter(night)
        self.lines.set_illuminator(night and settings.illuminator)
        if self._monochrome is not None:
            self._monochrome(night)
        state = "night" if night else "day"
        lux = "no reading" if self.lux is None else f"{self.lux:.1f} lx"
        lit = self.lines.status_illuminator()
        log.info("day/night: %s%s (%s, %s)%s", state, " at start" if first else "",
                 settings.mode, lux, ", IR illuminator on" if lit else "")  # fmt: skip
        if first:
            return
        if self._record is not None:
            self._record("dayToNight" if night else "nightToDay", f"{settings.mode}, {lux}")
        details: Mapping[str, str] = {"state": state, "mode": settings.mode}
        if self.lux is not None:
            details = {**details, "lux": f"{self.lux:.1f}"}
        self._bus.pulse(EVENT_TYPE, self.channel, details)

    # -- configuration and reading ----------------------------------------------------------
    def apply(self, old: ImageSettings, new: ImageSettings) -> None:
        """Settings changed: a new mode or illuminator setting applies now."""
        if old.channel(self.channel).day_night != new.channel(self.channel).day_night:
            self.evaluate(self.lux)

    def status(self) -> DayNightStatus:
        return DayNightStatus(
            channel=self.channel,
            mode=self._settings().mode,
            night=bool(self.night),
            lux=self.lux,
            illuminator=self.lines.status_illuminator(),
        )

    def sim_light(self, request: Any) -> None:
        """SimControl part "light": `{"lux": 3.5}` is what the simulated sensor reads next;
        ValueError for anything else."""
        if self.light is None:
            raise ValueError("the board has no simulated light sensor")
        if not isinstance(request, dict) or set(request) != {"lux"}:
            raise ValueError('a light request is {"lux": <0-100000>}')
        lux = request["lux"]
        if isinstance(lux, bool) or not isinstance(lux, int | float):
            raise ValueError("lux is a number")
        self.light.set_lux(float(lux))
