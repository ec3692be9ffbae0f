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

import re
from importlib.metadata import entry_points
from typing import Any

from gpiozero import Factory, GPIOZeroError, PinInvalidPin
from gpiozero.pins import PinInfo
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
    from gpiozero.pins.lgpio import LGPIOFactory

    class ChipFactory(LGPIOFactory):  # type: ignore[misc]
        def pin(self, name: Any) -> Any:
            line = _line_number(name)
            info = PinInfo(
                number=line + 1, name=f"GPIO{line}", names=frozenset({f"GPIO{line}", line}),
                pull="", row=line + 1, col=1, interfaces=frozenset({"gpio"}),
            )  # fmt: skip
            pin = self.pins.get(info)
            if pin is None:
                pin = self.pins[info] = self.pin_class(self, info)
            return pin

    return ChipFactory(chip=chip)


def _line_number(name: Any) -> int:
    """A line of the chip: 17, "17" or "GPIO17"."""
    match = re.fullmatch(r"(?:GPIO)?(\d{1,3})", str(name))
    if match is None:
        raise PinInvalidPin(f"{name} is not a GPIO line (GPIO<n>: line n of the chip)")
    return int(match.group(1))
