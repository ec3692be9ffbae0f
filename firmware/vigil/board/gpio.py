"""The gpiozero pin factory that drives the board's alarm inputs and relay outputs, and the
IR-cut and illuminator lines of day/night (`[day_night]`, the same two keys).

`board.alarm_io.driver` "sim" gives gpiozero's own mock factory: real gpiozero devices on mock
pins, whose inputs the simulator's control socket drives. "gpio" gives the factory named by
`board.alarm_io.pin_factory`, looked up where gpiozero registers its factories (the
`gpiozero_pin_factories` entry points), so that the name means what GPIOZERO_PIN_FACTORY means.
gpiozero's own factories name pins by a Raspberry Pi's board table and refuse to start on any
other board (PinUnknownPi); "chip" is lgpio's factory without that table: "GPIOn" is line n of
`/dev/gpiochip<chip>`, on any board (the QEMU rig's gpio-sim, an SoC's controller).
A factory that cannot start (its library missing, no GPIO chip) stops the daemon with a
BoardError naming it, rather than leaving the alarm lines silently dead.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from gpiozero import Factory, GPIOZeroError
from gpiozero.pins import BoardInfo, HeaderInfo, PinInfo
from gpiozero.pins.mock import MockFactory

from vigil.board.description import BoardAlarmIO, BoardDayNight, BoardError

FACTORY_GROUP = "gpiozero_pin_factories"


def make_pin_factory(lines: BoardAlarmIO | BoardDayNight) -> Factory:
    """A new pin factory for the board's alarm (or day/night) lines; the caller closes it."""
    if lines.driver == "sim":
        return MockFactory()
    section = "alarm_io" if isinstance(lines, BoardAlarmIO) else "day_night"
    name = lines.pin_factory
    if name == "chip":
        return _started(section, f"chip {lines.chip}", lambda: chip_factory(lines.chip))
    entry = next((ep for ep in entry_points(group=FACTORY_GROUP) if ep.name == name), None)
    if entry is None:
        raise BoardError(f"[{section}] pin_factory: gpiozero has no pin factory {name!r}")
    return _started(section, name, lambda: entry.load()())


def _started(section: str, name: str, start: Any) -> Factory:
    try:
        factory = start()
    except (ImportError, OSError, GPIOZeroError) as exc:
        raise BoardError(f"[{section}] pin_factory: {name} cannot start: {exc}") from None
    assert isinstance(factory, Factory)
    return factory


def chip_factory(chip: int) -> Factory:
    """lgpio's pin factory on `/dev/gpiochip<chip>`, its pins named "GPIO<line>"."""
    # Imported here: lgpio is a C library binding that only boards with a GPIO chip install.
    import lgpio
    from gpiozero.pins.lgpio import LGPIOFactory

    class ChipFactory(LGPIOFactory):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(chip=chip)
            status, lines, name, label = lgpio.gpio_get_chip_info(self._handle)
            if status < 0:
                raise OSError(f"/dev/gpiochip{chip}: {lgpio.error_text(status)}")
            self._info = chip_board_info(lines, f"{name} ({label})")

        def _get_board_info(self) -> BoardInfo:
            return self._info

    return ChipFactory()


def _chip_pin(line: int) -> PinInfo:
    names = frozenset({f"GPIO{line}", line, str(line)})
    return PinInfo(line, f"GPIO{line}", names, "", line + 1, 1, frozenset({"gpio"}))


def chip_board_info(lines: int, model: str) -> BoardInfo:
    """A board of one header, the chip: line n is pin "GPIOn" (also n)."""
    pins = {line: _chip_pin(line) for line in range(lines)}
    header = HeaderInfo(name="chip", rows=max(lines, 1), columns=1, pins=pins)
    return BoardInfo(
        revision="chip", model=model, pcb_revision="", released="", soc="", manufacturer="",
        memory=None, storage="", usb=0, usb3=0, ethernet=0, eth_speed=0, wifi=False,
        bluetooth=False, csi=0, dsi=0, headers={"chip": header}, board="",
    )  # fmt: skip
