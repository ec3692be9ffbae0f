"""The gpiozero pin factory that drives the board's alarm inputs and relay outputs, and the
IR-cut and illuminator lines of day/night (`[day_night]`, the same two keys).

`board.alarm_io.driver` "sim" gives gpiozero's own mock factory: real gpiozero devices on mock
pins, whose inputs the simulator's control socket drives. "gpio" gives the factory named by
`board.alarm_io.pin_factory`, looked up where gpiozero registers its factories (the
`gpiozero_pin_factories` entry points), so that the name means what GPIOZERO_PIN_FACTORY means.
A factory that cannot start (its library missing, no GPIO chip) stops the daemon with a
BoardError naming it, rather than leaving the alarm lines silently dead.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from gpiozero import Factory, GPIOZeroError
from gpiozero.pins.mock import MockFactory

from vigil.board.description import BoardAlarmIO, BoardDayNight, BoardError

FACTORY_GROUP = "gpiozero_pin_factories"


def make_pin_factory(lines: BoardAlarmIO | BoardDayNight) -> Factory:
    """A new pin factory for the board's alarm (or day/night) lines; the caller closes it."""
    if lines.driver == "sim":
        return MockFactory()
    section = "alarm_io" if isinstance(lines, BoardAlarmIO) else "day_night"
    name = lines.pin_factory
    entry = next((ep for ep in entry_points(group=FACTORY_GROUP) if ep.name == name), None)
    if entry is None:
        raise BoardError(f"[{section}] pin_factory: gpiozero has no pin factory {name!r}")
    try:
        factory = entry.load()()
    except (ImportError, OSError, GPIOZeroError) as exc:
        raise BoardError(f"[{section}] pin_factory: {name} cannot start: {exc}") from None
    assert isinstance(factory, Factory)
    return factory
