"""Where a dome points: its mechanics over time, the wire units, and the ISAPI units.

One model serves both ends: the dome simulator (`vigil ptz-sim`) moves by it, and the PTZ
controller feeds it the commands it sends to estimate the position of a dome that does not
answer position queries. What Pelco leaves open is chosen here, as a typical dome does it:

- pan 0..360 degrees, wrapping; tilt is the elevation -90..0 degrees (0 the horizon, -90 straight
  down, as a ceiling dome looks; "up" raises it) and stops at the ends; zoom 1x..30x.
- continuous speeds are linear: protocol speed 0x3F is 40 deg/s (so speed s is 40*s/63 deg/s),
  turbo pan 80 deg/s; zoom moves 29*(n+1)/16 x/s at zoom speed n (0-3, default 3: wide to tele
  in 4 s). Focus and iris only record their direction.
- presets: set stores the current position, go moves there at the preset speed (100 deg/s on pan,
  the short way round, and tilt; the fastest zoom), clear forgets; going to an unknown preset
  is refused and changes nothing. Absolute set (0x4B/0x4D/0x4F) moves one axis the same way and
  stops the continuous motion; a continuous move (stop included) cancels the moves to targets.
- wire units: pan in hundredths of a degree 0..35999, tilt in hundredths of a degree *below* the
  horizon 0..9000, zoom 0..65535 linear over 1x..30x; out of range is refused.
- ISAPI units (`PtzPosition`): azimuth and elevation in tenths of a degree (elevation positive
  down), zoom ratio x10, rounded to the nearest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vigil.config.ptz import PtzPosition
from vigil.ptz.commands import (
    PAN_TURBO,
    Aux,
    Axis,
    Command,
    Move,
    PelcoError,
    PositionReply,
    Preset,
    PresetAction,
    QueryPosition,
    SetPosition,
    ZoomSpeed,
)

MAX_DEG_PER_S = 40.0
TURBO_DEG_PER_S = 80.0
PRESET_DEG_PER_S = 100.0
TILT_RANGE = (-90.0, 0.0)
ZOOM_RANGE = (1.0, 30.0)
PAN_WIRE_MAX = 35999
TILT_WIRE_MAX = 9000
ZOOM_WIRE_MAX = 0xFFFF
ISAPI_UNIT = 0.1  # degrees, zoom ratio


@dataclass(frozen=True)
class Position:
    """A dome position: pan degrees, tilt degrees above the horizon (negative), zoom ratio."""

    pan: float
    tilt: float
    zoom: float

    def of(self, axis: Axis) -> float:
        return (self.pan, self.tilt, self.zoom)[axis.value]


def _zoom_rate(zoom_speed: int) -> float:
    return (ZOOM_RANGE[1] - ZOOM_RANGE[0]) * (zoom_speed + 1) / 16


def _deg_per_s(speed: int) -> float:
    return TURBO_DEG_PER_S if speed == PAN_TURBO else MAX_DEG_PER_S * speed / 0x3F


def to_wire(axis: Axis, value: float) -> int:
    """A position in the model's units as the protocol's 16-bit value."""
    if axis is Axis.PAN:
        return round(value * 100) % 36000
    if axis is Axis.TILT:
        return round(-value * 100)
    return round((value - ZOOM_RANGE[0]) / (ZOOM_RANGE[1] - ZOOM_RANGE[0]) * ZOOM_WIRE_MAX)


def from_wire(axis: Axis, value: int) -> float:
    """The protocol's 16-bit value in degrees or x; PelcoError if the dome cannot go there."""
    limit = {Axis.PAN: PAN_WIRE_MAX, Axis.TILT: TILT_WIRE_MAX, Axis.ZOOM: ZOOM_WIRE_MAX}[axis]
    if value > limit:
        raise PelcoError(f"{axis.name.lower()} position {value} is beyond {limit}")
    if axis is Axis.PAN:
        return value / 100
    if axis is Axis.TILT:
        return -value / 100
    return ZOOM_RANGE[0] + value / ZOOM_WIRE_MAX * (ZOOM_RANGE[1] - ZOOM_RANGE[0])


def to_isapi(position: Position) -> PtzPosition:
    """The model's position in ISAPI units, rounded and kept in range."""
    return PtzPosition(
        azimuth=round(position.pan * 10) % 3600,
        elevation=min(max(round(-position.tilt * 10), 0), 900),
        zoom=min(max(round(position.zoom * 10), 10), 300),
    )


def from_isapi(position: PtzPosition) -> Position:
    return Position(position.azimuth / 10, -position.elevation / 10, position.zoom / 10)


def set_position_commands(position: PtzPosition) -> list[SetPosition]:
    """The absolute moves (pan, tilt, zoom) that take a dome to an ISAPI position."""
    there = from_isapi(position)
    return [SetPosition(axis, to_wire(axis, there.of(axis))) for axis in Axis]


@dataclass
class Dome:
    """The dome's mechanics; every call passes the time `now` (monotonic seconds)."""

    now: float
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 1.0
    zoom_speed: int = 3
    motion: Move = field(default_factory=Move)
    targets: dict[Axis, float] = field(default_factory=dict)
    presets: dict[int, Position] = field(default_factory=dict)
    aux: dict[int, bool] = field(default_factory=dict)

    def position(self, now: float) -> Position:
        self.advance(now)
        return self._here()

    def _here(self) -> Position:
        return Position(self.pan, self.tilt, self.zoom)

    def place(self, position: Position, now: float) -> None:
        """The dome is at `position` now (as it answered); its motion goes on from there, and
        a target it reached to within an ISAPI unit (0.1 degree, 0.1x) is done: a preset's
        position is known to that precision."""
        self.advance(now)
        self.pan, self.tilt, self.zoom = position.pan, position.tilt, position.zoom
        for axis, target in list(self.targets.items()):
            distance = target - position.of(axis)
            if axis is Axis.PAN:
                distance = (distance + 180) % 360 - 180
            if abs(distance) <= ISAPI_UNIT:
                del self.targets[axis]

    def settle_time(self) -> float:
        """Seconds until the moves to targets (presets, absolute positions) end."""
        here, seconds = self._here(), 0.0
        for axis, target in self.targets.items():
            distance = target - here.of(axis)
            if axis is Axis.PAN:
                distance = (distance + 180) % 360 - 180
            rate = _zoom_rate(3) if axis is Axis.ZOOM else PRESET_DEG_PER_S
            seconds = max(seconds, abs(distance) / rate)
        return seconds

    def advance(self, now: float) -> None:
        dt, self.now = max(0.0, now - self.now), now
        rates = (
            self.motion.pan * _deg_per_s(self.motion.pan_speed),
            self.motion.tilt * _deg_per_s(self.motion.tilt_speed),
            self.motion.zoom * _zoom_rate(self.zoom_speed),
        )
        self.pan = (self.pan + rates[0] * dt) % 360
        self.tilt = min(max(self.tilt + rates[1] * dt, TILT_RANGE[0]), TILT_RANGE[1])
        self.zoom = min(max(self.zoom + rates[2] * dt, ZOOM_RANGE[0]), ZOOM_RANGE[1])
        for axis, target in list(self.targets.items()):
            self._approach(axis, target, dt)

    def _approach(self, axis: Axis, target: float, dt: float) -> None:
        step = (_zoom_rate(3) if axis is Axis.ZOOM else PRESET_DEG_PER_S) * dt
        current = self._here().of(axis)
        distance = target - current
        if axis is Axis.PAN:
            distance = (distance + 180) % 360 - 180
        if abs(distance) <= step:
            value = target
            del self.targets[axis]
        else:
            value = current + math.copysign(step, distance)
        if axis is Axis.PAN:
            self.pan = value % 360
        elif axis is Axis.TILT:
            self.tilt = value
        else:
            self.zoom = value

    def apply(self, command: Command, now: float) -> Command | None:
        """Carry a command out; the reply to send, if any. PelcoError changes nothing."""
        self.advance(now)
        match command:
            case Move():
                self.motion = command
                self.targets.clear()
            case Preset(PresetAction.SET, number):
                self.presets[number] = self._here()
            case Preset(PresetAction.CLEAR, number):
                self.presets.pop(number, None)
            case Preset(PresetAction.GOTO, number):
                self._go_to_preset(number)
            case SetPosition(axis, value):
                self.targets[axis] = from_wire(axis, value)
                self.motion = Move()
            case QueryPosition(axis):
                return PositionReply(axis, to_wire(axis, self._here().of(axis)))
            case ZoomSpeed(speed):
                self.zoom_speed = speed
            case Aux(number, on):
                self.aux[number] = on
            case PositionReply():
                raise PelcoError("a position reply is for the controller, not for a dome")
        return None

    def _go_to_preset(self, number: int) -> None:
        if number not in self.presets:
            raise PelcoError(f"preset {number} is not set")
        stored = self.presets[number]
        self.motion = Move()
        self.targets = {axis: stored.of(axis) for axis in Axis}
