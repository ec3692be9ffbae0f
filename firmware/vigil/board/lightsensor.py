"""The ambient-light sensor that day/night's auto mode reads: a BH1750 or a VEML7700 on I2C.

Both drivers use only SMBus transfers (`write_byte`, `read_i2c_block_data`, `read_word_data`,
`write_word_data` of smbus2), so they work on any I2C adapter, including the kernel's i2c-stub,
which emulates SMBus registers only. On a board (`[day_night] driver = "gpio"`) the bus is
smbus2's `SMBus(<i2c_bus>)`; the QEMU rig (a later issue) runs the same drivers over the real
i2c-stub module through smbus2. The host that runs the tests has no i2c-stub (no kernel
modules), so `SimI2CBus` models it here: a file of 256 16-bit registers per chip address, with
i2c-stub's semantics (a byte read or write uses a register's low byte, a block read takes the
low bytes of consecutive registers, `write_byte` sets the register pointer). `SimLight` sets
what a chip would present for a given lux; the simulator's control socket drives it.

BH1750 (ROHM datasheet): power on (0x01), then continuous H-resolution mode (0x10: 1 lx
resolution, 120 ms typical, 180 ms at most per measurement). A reading is the two result bytes,
high byte first, read with the mode command as the SMBus command byte (re-sent, which keeps the
mode); lux = raw / 1.2 at the default measurement time (MTreg 69). The one-time modes (0x20)
power the chip down after each measurement and need a bare two-byte read to fetch it, which
SMBus-only adapters cannot do, so the continuous mode is the one used.

VEML7700 (Vishay datasheet and application note "Designing the VEML7700 into an application"):
configuration register 0x00 (ALS_CONF_0: gain in bits 12:11, integration time in bits 9:6,
shutdown in bit 0), the ALS count in register 0x04, words little-endian as SMBus reads them.
Chosen: gain x1 and 100 ms, 0.0576 lx per count (saturating at 3775 lx, far above where day
and night are decided; the application note's non-linearity correction matters above 1000 lx
only and is not applied). Resolution for any setting: 0.0036 lx per count at gain x2 and
800 ms, scaled by 2/gain and 800/time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from smbus2 import SMBus

from vigil.board.description import BoardDayNight, BoardError

log = logging.getLogger(__name__)


class I2CBus(Protocol):
    """The smbus2 `SMBus` calls the drivers use."""

    def write_byte(self, i2c_addr: int, value: int) -> None: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def read_word_data(self, i2c_addr: int, register: int) -> int: ...

    def write_word_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def close(self) -> None: ...


class LightSensor(Protocol):
    kind: str

    def start(self) -> None: ...  # configure the chip; OSError if it does not answer

    def read_lux(self) -> float: ...  # OSError on a bus error

    def close(self) -> None: ...


# -- BH1750 ------------------------------------------------------------------------------------
BH1750_ADDRESS = 0x23  # ADDR pin low (0x5C with it high)
BH1750_POWER_ON = 0x01
BH1750_RESET = 0x07
BH1750_CONTINUOUS_H = 0x10
BH1750_LUX_PER_COUNT = 1 / 1.2


def bh1750_lux(high: int, low: int) -> float:
    """The two result bytes (high first) -> lux, at the default measurement time."""
    return ((high << 8) | low) * BH1750_LUX_PER_COUNT


class Bh1750:
    kind = "bh1750"

    def __init__(self, bus: I2CBus, address: int = BH1750_ADDRESS) -> None:
        self.bus, self.address = bus, address

    def start(self) -> None:
        self.bus.write_byte(self.address, BH1750_POWER_ON)
        self.bus.write_byte(self.address, BH1750_RESET)
        self.bus.write_byte(self.address, BH1750_CONTINUOUS_H)

    def read_lux(self) -> float:
        high, low = self.bus.read_i2c_block_data(self.address, BH1750_CONTINUOUS_H, 2)
        return bh1750_lux(high, low)

    def close(self) -> None:
        self.bus.close()


# -- VEML7700 ----------------------------------------------------------------------------------
VEML7700_ADDRESS = 0x10
VEML7700_CONF = 0x00
VEML7700_ALS = 0x04
# ALS_GAIN bits 12:11 -> gain; ALS_IT bits 9:6 -> integration time in ms.
VEML7700_GAINS = {0b00: 1.0, 0b01: 2.0, 0b10: 0.125, 0b11: 0.25}
VEML7700_TIMES = {0b1100: 25, 0b1000: 50, 0b0000: 100, 0b0001: 200, 0b0010: 400, 0b0011: 800}
VEML7700_SETTING = (0b00 << 11) | (0b0000 << 6)  # gain x1, 100 ms, persistence 1, powered on


def veml7700_resolution(conf: int) -> float:
    """Lux per count of configuration word `conf`; ValueError for a reserved time code."""
    gain = VEML7700_GAINS[(conf >> 11) & 0b11]
    time_code = (conf >> 6) & 0b1111
    if time_code not in VEML7700_TIMES:
        raise ValueError(f"reserved VEML7700 integration time code {time_code:#06b}")
    return 0.0036 * (2 / gain) * (800 / VEML7700_TIMES[time_code])


class Veml7700:
    kind = "veml7700"

    def __init__(
        self, bus: I2CBus, address: int = VEML7700_ADDRESS, conf: int = VEML7700_SETTING
    ) -> None:
        self.bus, self.address, self.conf = bus, address, conf
        self.resolution = veml7700_resolution(conf)

    def start(self) -> None:
        self.bus.write_word_data(self.address, VEML7700_CONF, self.conf)

    def read_lux(self) -> float:
        return self.bus.read_word_data(self.address, VEML7700_ALS) * self.resolution

    def close(self) -> None:
        self.bus.close()


# -- the simulated bus -------------------------------------------------------------------------
class SimI2CBus:
    """i2c-stub's register model: 256 16-bit registers per chip address, a register pointer."""

    def __init__(self, addresses: tuple[int, ...]) -> None:
        self.words: dict[int, list[int]] = {a: [0] * 256 for a in addresses}
        self.pointer: dict[int, int] = dict.fromkeys(addresses, 0)
        self.closed = False

    def _chip(self, i2c_addr: int) -> list[int]:
        if self.closed:
            raise OSError("the simulated I2C bus is closed")
        chip = self.words.get(i2c_addr)
        if chip is None:
            raise OSError(f"no device at I2C address {i2c_addr:#04x}")  # a NACK
        return chip

    def write_byte(self, i2c_addr: int, value: int) -> None:
        self._chip(i2c_addr)
        self.pointer[i2c_addr] = value & 0xFF

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        chip = self._chip(i2c_addr)
        return [chip[(register + i) & 0xFF] & 0xFF for i in range(length)]

    def read_word_data(self, i2c_addr: int, register: int) -> int:
        return self._chip(i2c_addr)[register & 0xFF]

    def write_word_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._chip(i2c_addr)[register & 0xFF] = value & 0xFFFF

    def close(self) -> None:
        self.closed = True


class SimLight:
    """The light the simulated sensor sees: sets the registers the chip would present."""

    def __init__(self, bus: SimI2CBus, kind: str, address: int, lux: float = 300.0) -> None:
        self.bus, self.kind, self.address = bus, kind, address
        self.set_lux(lux)

    def set_lux(self, lux: float) -> None:
        if not 0 <= lux <= 100_000:
            raise ValueError(f"lux {lux} is outside 0-100000")
        words = self.bus.words[self.address]
        if self.kind == "bh1750":
            raw = min(round(lux / BH1750_LUX_PER_COUNT), 0xFFFF)
            words[BH1750_CONTINUOUS_H], words[BH1750_CONTINUOUS_H + 1] = raw >> 8, raw & 0xFF
        else:
            resolution = veml7700_resolution(words[VEML7700_CONF])
            words[VEML7700_ALS] = min(round(lux / resolution), 0xFFFF)
        self.lux = lux


# -- from the board ----------------------------------------------------------------------------
DEFAULT_ADDRESSES = {"bh1750": BH1750_ADDRESS, "veml7700": VEML7700_ADDRESS}
DRIVERS: dict[str, Callable[[I2CBus, int], LightSensor]] = {"bh1750": Bh1750, "veml7700": Veml7700}


def make_light_sensor(board: BoardDayNight) -> tuple[LightSensor | None, SimLight | None]:
    """The board's sensor, started, and (driver "sim") the light that sets what it reads;
    (None, None) without one. A sensor that does not answer is a BoardError."""
    if board.light_sensor == "none":
        return None, None
    address = board.i2c_address or DEFAULT_ADDRESSES[board.light_sensor]
    bus: I2CBus
    if board.driver == "sim":
        bus = SimI2CBus((address,))
    else:
        try:
            bus = SMBus(board.i2c_bus)
        except OSError as exc:
            raise BoardError(f"[day_night] i2c_bus: /dev/i2c-{board.i2c_bus}: {exc}") from None
    sensor = DRIVERS[board.light_sensor](bus, address)
    try:
        sensor.start()
    except OSError as exc:
        bus.close()
        raise BoardError(
            f"[day_night] {board.light_sensor} at {address:#04x} on bus {board.i2c_bus}: {exc}"
        ) from None
    light = SimLight(bus, board.light_sensor, address) if isinstance(bus, SimI2CBus) else None
    return sensor, light
