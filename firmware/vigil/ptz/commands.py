"""The PTZ commands both Pelco protocols carry, independent of their byte layout (SPEC §6).

A command is a small frozen dataclass; `pelco_d` and `pelco_p` turn it into a frame and back.
Both protocols put the same command set into four payload bytes (Pelco-D `cmd1 cmd2 data1 data2`,
Pelco-P `data1 data2 data3 data4`): a *standard* command has bit 0 of the second byte clear and
carries direction bits plus the pan and tilt speeds; an *extended* command has the first byte 0,
an odd opcode in the second and its argument in the last two. Only the bit positions of focus
and iris and the turbo pan speed differ, so each protocol gives a `Layout` and this module does
the rest (`encode_payload`, `decode_payload`).

Units stay the protocol's: speeds 0..63 (`PAN_TURBO` = the protocol's turbo pan speed), preset
and aux numbers 1..255, absolute positions and position replies 0..65535 as carried on the wire
(hundredths of degrees for pan and tilt, a fraction of the zoom range for zoom; the dome simulator
says how it reads them). Anything else (camera on/off, auto-scan, the sense bit, other extended
opcodes, contradictory direction bits) is refused with `PelcoError`, which is also what every
malformed frame gives: nothing else escapes a decoder.

`speed_from_percent` maps an ISAPI speed -100..100 to a direction and a protocol speed:
0 stops, 1..99 scale linearly onto 1..63 (never 0, so a small speed still moves; 99 is the
full 0x3F of the published vectors), 100 is turbo where the axis has one (pan) and 63 where it
has not (tilt).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

MAX_SPEED = 0x3F
PAN_TURBO = 0x40
"""Protocol-neutral turbo pan speed (the wire value is 0xFF in Pelco-D, 0x40 in Pelco-P)."""
ZOOM_SPEEDS = range(4)
NUMBERS = range(1, 256)
"""Valid preset and aux numbers."""
ADDRESSES = range(1, 256)
WORD = range(0x10000)


class PelcoError(ValueError):
    """A frame or command that is malformed, unsupported or not for us."""


class FramingError(PelcoError):
    """The bytes are not a frame (length, sync/ETX byte, checksum): a stream resynchronises."""


class Axis(enum.Enum):
    PAN = 0
    TILT = 1
    ZOOM = 2


def _check(name: str, value: int, allowed: range) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise PelcoError(f"{name} {value!r} is not in {allowed.start}..{allowed.stop - 1}")


@dataclass(frozen=True)
class Move:
    """Continuous motion; all zero is stop. Directions are -1, 0 or 1.

    pan: 1 right, -1 left; tilt: 1 up, -1 down; zoom: 1 in (tele), -1 out (wide);
    focus: 1 far, -1 near; iris: 1 open, -1 close.
    """

    pan: int = 0
    tilt: int = 0
    zoom: int = 0
    focus: int = 0
    iris: int = 0
    pan_speed: int = 0
    tilt_speed: int = 0

    def __post_init__(self) -> None:
        for name in ("pan", "tilt", "zoom", "focus", "iris"):
            _check(name, getattr(self, name), range(-1, 2))
        _check("pan speed", self.pan_speed, range(PAN_TURBO + 1))
        _check("tilt speed", self.tilt_speed, range(MAX_SPEED + 1))


STOP = Move()


class PresetAction(enum.Enum):
    SET = 0x03
    CLEAR = 0x05
    GOTO = 0x07


@dataclass(frozen=True)
class Preset:
    action: PresetAction
    number: int

    def __post_init__(self) -> None:
        _check("preset", self.number, NUMBERS)


@dataclass(frozen=True)
class Aux:
    number: int
    on: bool

    def __post_init__(self) -> None:
        _check("aux", self.number, NUMBERS)


@dataclass(frozen=True)
class ZoomSpeed:
    speed: int

    def __post_init__(self) -> None:
        _check("zoom speed", self.speed, ZOOM_SPEEDS)


@dataclass(frozen=True)
class SetPosition:
    axis: Axis
    value: int

    def __post_init__(self) -> None:
        _check("position", self.value, WORD)


@dataclass(frozen=True)
class QueryPosition:
    axis: Axis


@dataclass(frozen=True)
class PositionReply:
    axis: Axis
    value: int

    def __post_init__(self) -> None:
        _check("position", self.value, WORD)


Command = Move | Preset | Aux | ZoomSpeed | SetPosition | QueryPosition | PositionReply


@dataclass(frozen=True)
class Frame:
    """A decoded frame: the dome address (1..255, as the user numbers it) and its command."""

    address: int
    command: Command


def speed_from_percent(value: int, *, turbo: bool) -> tuple[int, int]:
    """(direction, protocol speed) for an ISAPI speed -100..100; `turbo` if the axis has one."""
    _check("speed", value, range(-100, 101))
    magnitude = abs(value)
    if magnitude == 0:
        return 0, 0
    if magnitude == 100:
        return (1 if value > 0 else -1), (PAN_TURBO if turbo else MAX_SPEED)
    return (1 if value > 0 else -1), max(1, round(magnitude * MAX_SPEED / 99))


def move_from_percent(pan: int, tilt: int, zoom: int) -> Move:
    """The continuous move for ISAPI `PTZData` speeds (pan has turbo, zoom only a direction)."""
    pan_dir, pan_speed = speed_from_percent(pan, turbo=True)
    tilt_dir, tilt_speed = speed_from_percent(tilt, turbo=False)
    zoom_dir, _ = speed_from_percent(zoom, turbo=False)
    return Move(pan_dir, tilt_dir, zoom_dir, pan_speed=pan_speed, tilt_speed=tilt_speed)


# --- the shared payload --------------------------------------------------------------------

BitPlace = tuple[int, int]
"""(payload byte index 0 or 1, mask)."""


@dataclass(frozen=True)
class Layout:
    """Where a protocol puts each direction bit, and its turbo pan speed on the wire."""

    bits: dict[tuple[str, int], BitPlace]
    turbo: int


_EXT_PRESET = {action.value: action for action in PresetAction}
_EXT_AUX = {0x09: True, 0x0B: False}
_EXT_ZOOM_SPEED = 0x25
_EXT_SET = {0x4B: Axis.PAN, 0x4D: Axis.TILT, 0x4F: Axis.ZOOM}
_EXT_QUERY = {0x51: Axis.PAN, 0x53: Axis.TILT, 0x55: Axis.ZOOM}
_EXT_REPLY = {0x59: Axis.PAN, 0x5B: Axis.TILT, 0x5D: Axis.ZOOM}
_DIRECTIONS = ("pan", "tilt", "zoom", "focus", "iris")


def _opcode(table: dict[int, Axis], axis: Axis) -> int:
    return next(code for code, each in table.items() if each is axis)


def _extended(command: Command) -> tuple[int, int, int]:
    """(opcode, argument high byte, argument low byte) of an extended command."""
    match command:
        case Preset(action, number):
            return action.value, 0, number
        case Aux(number, on):
            return (0x09 if on else 0x0B), 0, number
        case ZoomSpeed(speed):
            return _EXT_ZOOM_SPEED, 0, speed
        case SetPosition(axis, value):
            return _opcode(_EXT_SET, axis), value >> 8, value & 0xFF
        case QueryPosition(axis):
            return _opcode(_EXT_QUERY, axis), 0, 0
        case PositionReply(axis, value):
            return _opcode(_EXT_REPLY, axis), value >> 8, value & 0xFF
    raise PelcoError(f"not a command: {command!r}")


def encode_payload(command: Command, layout: Layout) -> bytes:
    """The four payload bytes of a command."""
    if not isinstance(command, Move):
        opcode, high, low = _extended(command)
        return bytes((0, opcode, high, low))
    head = [0, 0]
    for name in _DIRECTIONS:
        direction = getattr(command, name)
        if direction:
            index, mask = layout.bits[(name, direction)]
            head[index] |= mask
    pan_speed = layout.turbo if command.pan_speed == PAN_TURBO else command.pan_speed
    return bytes((head[0], head[1], pan_speed, command.tilt_speed))


def _decode_extended(opcode: int, high: int, low: int) -> Command:
    word = high << 8 | low
    if opcode in _EXT_SET:
        return SetPosition(_EXT_SET[opcode], word)
    if opcode in _EXT_REPLY:
        return PositionReply(_EXT_REPLY[opcode], word)
    if word and opcode in _EXT_QUERY:
        raise PelcoError(f"position query {opcode:#04x} with data {word:#06x}")
    if opcode in _EXT_QUERY:
        return QueryPosition(_EXT_QUERY[opcode])
    if high:
        raise PelcoError(f"extended command {opcode:#04x} with a non-zero high byte")
    if opcode in _EXT_PRESET:
        return Preset(_EXT_PRESET[opcode], low)
    if opcode in _EXT_AUX:
        return Aux(low, _EXT_AUX[opcode])
    if opcode == _EXT_ZOOM_SPEED:
        return ZoomSpeed(low)
    raise PelcoError(f"unsupported extended command {opcode:#04x}")


def decode_payload(payload: bytes, layout: Layout) -> Command:
    """The command in four payload bytes; `PelcoError` if it is not one we support."""
    first, second, pan_speed, tilt_speed = payload
    if second & 1:
        if first:
            raise PelcoError(f"extended command with first byte {first:#04x}")
        return _decode_extended(second, pan_speed, tilt_speed)
    directions: dict[str, int] = {}
    used = [0, 0]
    for (name, direction), (index, mask) in layout.bits.items():
        used[index] |= mask
        if (first, second)[index] & mask:
            if name in directions:
                raise PelcoError(f"both {name} directions set")
            directions[name] = direction
    if first & ~used[0] or second & ~used[1]:
        raise PelcoError(f"unsupported command bits {first:#04x} {second:#04x}")
    if pan_speed == layout.turbo:
        pan_speed = PAN_TURBO
    elif pan_speed > MAX_SPEED:
        raise PelcoError(f"pan speed {pan_speed:#04x} out of range")
    if tilt_speed > MAX_SPEED:
        raise PelcoError(f"tilt speed {tilt_speed:#04x} out of range")
    return Move(**directions, pan_speed=pan_speed, tilt_speed=tilt_speed)


# --- frames on a line ------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """One protocol's framing: its sync byte, frame length, encoder and decoder."""

    name: str
    sync: int
    length: int
    encode: Callable[[int, Command], bytes]
    decode: Callable[..., Frame]
    """decode(frame, address=None): the Frame, or PelcoError (FramingError if not a frame)."""


def check_address(address: int) -> None:
    _check("address", address, ADDRESSES)


def frame_bytes(frame: object, length: int) -> bytes:
    """The frame as bytes of the protocol's length, or FramingError."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise FramingError(f"a frame is bytes, not {type(frame).__name__}")
    raw = bytes(frame)
    if len(raw) != length:
        raise FramingError(f"a frame is {length} bytes, got {len(raw)}")
    return raw


def check_recipient(frame: Frame, address: int | None) -> Frame:
    if address is not None and frame.address != address:
        raise PelcoError(f"frame for address {frame.address}, not {address}")
    return frame


@dataclass(frozen=True)
class Received:
    """One frame found in a byte stream: its bytes and its decoding (a Frame or the error)."""

    raw: bytes
    result: Frame | PelcoError


class StreamDecoder:
    """Frames from a byte stream with junk in it: resynchronises on the sync byte.

    Bytes before a sync byte, and a sync byte that does not start a well-formed frame (wrong
    ETX, bad checksum), are skipped one at a time and counted in `skipped`. A well-formed frame
    whose content is refused (unsupported command) is consumed and returned with its error.
    """

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.skipped = 0
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Received]:
        self._buffer += data
        found: list[Received] = []
        while self._sync() and len(self._buffer) >= self.codec.length:
            raw = bytes(self._buffer[: self.codec.length])
            try:
                result: Frame | PelcoError = self.codec.decode(raw)
            except FramingError:
                self.skipped += 1
                del self._buffer[:1]
                continue
            except PelcoError as exc:
                result = exc
            del self._buffer[: self.codec.length]
            found.append(Received(raw, result))
        return found

    def _sync(self) -> bool:
        """Drop the bytes before the next sync byte; False if there is none."""
        start = self._buffer.find(self.codec.sync)
        if start < 0:
            self.skipped += len(self._buffer)
            self._buffer.clear()
            return False
        self.skipped += start
        del self._buffer[:start]
        return True
