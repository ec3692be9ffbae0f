"""The BH1750 and VEML7700 drivers: the datasheets' conversions, the SMBus transfers they make,
and the simulated bus that stands in for the kernel's i2c-stub (the host has no kernel modules;
the QEMU rig runs the same drivers over the real i2c-stub through smbus2)."""

from __future__ import annotations

from typing import Any

import pytest

from vigil.board.description import BoardDayNight, BoardError
from vigil.board.lightsensor import (
    Bh1750,
    SimI2CBus,
    SimLight,
    Veml7700,
    bh1750_lux,
    make_light_sensor,
    veml7700_resolution,
)


class RecordingBus(SimI2CBus):
    """The simulated bus, noting every transfer the driver makes."""

    def __init__(self, addresses: tuple[int, ...]) -> None:
        super().__init__(addresses)
        self.calls: list[tuple[Any, ...]] = []

    def write_byte(self, i2c_addr: int, value: int) -> None:
        self.calls.append(("write_byte", i2c_addr, value))
        super().write_byte(i2c_addr, value)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        self.calls.append(("read_i2c_block_data", i2c_addr, register, length))
        return super().read_i2c_block_data(i2c_addr, register, length)

    def read_word_data(self, i2c_addr: int, register: int) -> int:
        self.calls.append(("read_word_data", i2c_addr, register))
        return super().read_word_data(i2c_addr, register)

    def write_word_data(self, i2c_addr: int, register: int, value: int) -> None:
        self.calls.append(("write_word_data", i2c_addr, register, value))
        super().write_word_data(i2c_addr, register, value)


# -- BH1750 ------------------------------------------------------------------------------------
def test_bh1750_conversion_is_the_datasheets_example() -> None:
    # ROHM BH1750FVI datasheet: High Byte 1000_0011, Low Byte 1001_0000 -> 28067 lx.
    assert bh1750_lux(0b1000_0011, 0b1001_0000) == pytest.approx(28067, abs=0.5)
    assert bh1750_lux(0, 0) == 0
    assert bh1750_lux(0xFF, 0xFF) == pytest.approx(54612.5)


def test_bh1750_powers_on_and_reads_in_continuous_h_resolution_mode() -> None:
    bus = RecordingBus((0x23,))
    sensor = Bh1750(bus)
    sensor.start()
    assert bus.calls == [("write_byte", 0x23, 0x01), ("write_byte", 0x23, 0x07),
                         ("write_byte", 0x23, 0x10)]  # fmt: skip
    bus.words[0x23][0x10], bus.words[0x23][0x11] = 0x01, 0x2C  # 300 counts
    assert sensor.read_lux() == pytest.approx(250.0)
    assert bus.calls[-1] == ("read_i2c_block_data", 0x23, 0x10, 2)


@pytest.mark.parametrize("lux", [0.0, 0.8, 3.5, 17.0, 1000.0, 54000.0])
def test_bh1750_reads_the_simulated_light_to_its_resolution(lux: float) -> None:
    bus = SimI2CBus((0x5C,))
    sensor = Bh1750(bus, 0x5C)
    sensor.start()
    SimLight(bus, "bh1750", 0x5C, lux)
    assert sensor.read_lux() == pytest.approx(lux, abs=0.5 / 1.2)


def test_bh1750_saturates_at_its_largest_count() -> None:
    bus = SimI2CBus((0x23,))
    sensor = Bh1750(bus)
    sensor.start()
    SimLight(bus, "bh1750", 0x23, 100_000)
    assert sensor.read_lux() == pytest.approx(65535 / 1.2)


# -- VEML7700 ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("gain_bits", "time_bits", "lux_per_count"),
    [
        (0b01, 0b0011, 0.0036),  # gain x2, 800 ms: the datasheet's finest resolution
        (0b00, 0b0011, 0.0072),  # x1, 800 ms
        (0b11, 0b0011, 0.0288),  # x1/4, 800 ms
        (0b10, 0b0011, 0.0576),  # x1/8, 800 ms
        (0b00, 0b0000, 0.0576),  # x1, 100 ms: Vigil's setting
        (0b01, 0b0001, 0.0144),  # x2, 200 ms
        (0b10, 0b1100, 1.8432),  # x1/8, 25 ms: the coarsest
    ],
)
def test_veml7700_resolution_is_the_application_notes(
    gain_bits: int, time_bits: int, lux_per_count: float
) -> None:
    conf = (gain_bits << 11) | (time_bits << 6)
    assert veml7700_resolution(conf) == pytest.approx(lux_per_count)


def test_veml7700_refuses_a_reserved_integration_time() -> None:
    with pytest.raises(ValueError, match="reserved"):
        veml7700_resolution(0b0100 << 6)


def test_veml7700_configures_then_reads_the_als_register() -> None:
    bus = RecordingBus((0x10,))
    sensor = Veml7700(bus)
    sensor.start()
    assert bus.calls == [("write_word_data", 0x10, 0x00, 0x0000)]  # x1, 100 ms, powered on
    bus.words[0x10][0x04] = 1000
    assert sensor.read_lux() == pytest.approx(57.6)
    assert bus.calls[-1] == ("read_word_data", 0x10, 0x04)


def test_veml7700_reads_the_simulated_light_at_another_setting() -> None:
    bus = SimI2CBus((0x10,))
    sensor = Veml7700(bus, conf=(0b01 << 11) | (0b0011 << 6))  # x2, 800 ms
    sensor.start()
    SimLight(bus, "veml7700", 0x10, 3.5)
    assert sensor.read_lux() == pytest.approx(3.5, abs=0.0018)


# -- the bus and the board ---------------------------------------------------------------------
def test_the_simulated_bus_behaves_as_i2c_stub() -> None:
    bus = SimI2CBus((0x23,))
    bus.write_word_data(0x23, 0x10, 0xABCD)
    assert bus.read_word_data(0x23, 0x10) == 0xABCD
    assert bus.read_i2c_block_data(0x23, 0x10, 2) == [0xCD, 0]  # low bytes of 0x10, 0x11
    with pytest.raises(OSError, match="no device at I2C address 0x24"):
        bus.read_word_data(0x24, 0)
    bus.close()
    with pytest.raises(OSError, match="closed"):
        bus.read_word_data(0x23, 0)


def test_a_lux_outside_the_range_is_refused_and_changes_nothing() -> None:
    bus = SimI2CBus((0x23,))
    light = SimLight(bus, "bh1750", 0x23, 10.0)
    for lux in (-1.0, 100_001.0):
        with pytest.raises(ValueError, match="outside"):
            light.set_lux(lux)
    assert light.lux == 10.0


def test_the_board_makes_the_simulated_sensor_at_the_default_address() -> None:
    sensor, light = make_light_sensor(BoardDayNight(light_sensor="veml7700"))
    assert sensor is not None and light is not None
    assert light.address == 0x10
    light.set_lux(12.0)
    assert sensor.read_lux() == pytest.approx(12.0, abs=0.03)
    sensor.close()
    assert make_light_sensor(BoardDayNight()) == (None, None)


def test_a_missing_i2c_bus_stops_the_board_with_its_name() -> None:
    board = BoardDayNight(driver="gpio", light_sensor="bh1750", i2c_bus=250)
    with pytest.raises(BoardError, match=r"\[day_night\] i2c_bus: /dev/i2c-250"):
        make_light_sensor(board)
