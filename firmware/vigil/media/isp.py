"""The sensor's image processing: the image settings (`config.image.IspSettings`) onto the
controls of the sensor that carry them.

Which control carries a setting is the board's (`[sensor.controls]`); what a control can do
(kind, range, menu) is the sensor's: a V4L2 device's through linuxpy (VIDIOC_QUERYCTRL), the
simulated sensor's own list. A setting is *offered* only when the board names a control for
it, the sensor has that control and it is of a kind the setting can use; the API refuses the
others and they are never applied.

The mapping, where the issue is silent:

- a level 0-100 goes linearly onto the control's range, half up, on the control's step (50 is
  the middle of the range): brightness, contrast, saturation, hue, sharpness, gain, WDR level.
  A level needs an integer control.
- a switch (mirror, flip, WDR, BLC, auto exposure, auto white balance) is 1/0 on a boolean
  control, maximum/minimum on an integer one; on a menu (V4L2's auto_exposure) on is the item
  named "Auto ..." (else "Aperture Priority ...") and off the item named "Manual ...".
- DNR off is the control's minimum; on, its level mapped as above on an integer control, 1 on
  a boolean one (which offers no level).
- the exposure time (microseconds) is written in V4L2's 100 us units (exposure_time_absolute);
  a time outside the control's range is refused. Exposure time and gain are written only in
  manual exposure (auto exposure owns them, and drivers refuse writes to inactive controls).
- the mains frequency is the menu item naming "50" or "60" (on an integer control, V4L2's
  enumeration: 1 is 50 Hz, 2 is 60 Hz).
- night mode (`Isp.set_monochrome`) sets the colour killer where the board names one the sensor
  has, else the saturation to its minimum; back to colour, the saturation setting again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from vigil.board.description import SensorControls
from vigil.config.image import IspSettings

log = logging.getLogger(__name__)

LEVELS = ("brightness", "contrast", "saturation", "hue", "sharpness", "gain", "wdr_level")
SWITCHES = ("mirror", "flip", "exposure_auto", "white_balance_auto", "wdr", "blc")
# The settings in the order their controls are written: exposure and white balance modes
# before the values they govern.
ORDER = (
    "exposure_auto",
    "exposure_time",
    "gain",
    "white_balance_auto",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "sharpness",
    "mirror",
    "flip",
    "wdr",
    "wdr_level",
    "blc",
    "dnr",
    "dnr_level",
    "power_line_frequency",
)
# A setting -> the board key of the control that carries it (the same name but for these).
CARRIER = {"dnr_level": "dnr"}
EXPOSURE_UNIT_US = 100  # V4L2's exposure_time_absolute counts 100 us
MANUAL_EXPOSURE_ONLY = ("exposure_time", "gain")
MAINS = {50: 1, 60: 2}  # V4L2_CID_POWER_LINE_FREQUENCY_50HZ / _60HZ


@dataclass(frozen=True)
class ControlInfo:
    """One control of the sensor, as VIDIOC_QUERYCTRL describes it."""

    name: str  # linuxpy's config name: "brightness", "horizontal_flip", ...
    kind: str  # "int", "bool" or "menu"
    minimum: int
    maximum: int
    step: int = 1
    menu: tuple[tuple[int, str], ...] = ()  # (index, label) of a menu's items

    def labelled(self, *words: str) -> int | None:
        """The index of the first menu item whose label holds one of `words` (in order)."""
        for word in words:
            for index, label in self.menu:
                if word in label.lower():
                    return index
        return None


class SensorControlsDriver(Protocol):
    """What a sensor offers the image processing: its controls, and writing one."""

    def controls(self) -> Mapping[str, ControlInfo]: ...

    def set_control(self, name: str, value: int) -> None: ...  # OSError/ValueError if refused


class Unsupported(ValueError):
    """A setting the sensor does not have."""

    def __init__(self, setting: str) -> None:
        super().__init__(f"the sensor has no {setting.replace('_', ' ')} control")
        self.setting = setting


# -- what the sensor offers -------------------------------------------------------------------
def _usable(setting: str, control: ControlInfo) -> bool:
    if setting in LEVELS or setting in ("exposure_time", "dnr_level"):
        return control.kind == "int"
    if setting == "power_line_frequency":
        if control.kind == "menu":
            return control.labelled("50") is not None and control.labelled("60") is not None
        return control.kind == "int" and control.minimum <= 1 and control.maximum >= 2
    if control.kind == "menu":  # a switch on a menu: it needs both an on and an off item
        return _menu_switch(control, True) is not None and _menu_switch(control, False) is not None
    return control.kind in ("bool", "int")


@dataclass(frozen=True)
class Capabilities:
    """The settings the sensor really has, each with the control that carries it."""

    controls: Mapping[str, ControlInfo]  # setting -> control
    color_killer: ControlInfo | None = None

    def offers(self, setting: str) -> bool:
        return setting in self.controls

    def exposure_range_us(self) -> tuple[int, int] | None:
        control = self.controls.get("exposure_time")
        if control is None:
            return None
        return control.minimum * EXPOSURE_UNIT_US, control.maximum * EXPOSURE_UNIT_US


def find_capabilities(names: SensorControls, sensor: Mapping[str, ControlInfo]) -> Capabilities:
    """What of `names` (the board's map) the sensor's `sensor` controls can carry."""
    offered: dict[str, ControlInfo] = {}
    for setting in ORDER:
        control = sensor.get(getattr(names, CARRIER.get(setting, setting)) or "\0")
        if control is not None and _usable(setting, control):
            offered[setting] = control
    killer = sensor.get(names.color_killer or "\0")
    if killer is not None and killer.kind not in ("bool", "int"):
        killer = None
    return Capabilities(offered, killer)


def check_settings(settings: IspSettings, capabilities: Capabilities, changed: set[str]) -> None:
    """Refuse a change the sensor cannot carry: `Unsupported` for a setting in `changed` it
    does not have, ValueError for an exposure time outside its control's range."""
    for setting in sorted(changed):
        if not capabilities.offers(setting):
            raise Unsupported(setting)
    limits = capabilities.exposure_range_us()
    if "exposure_time" in changed and limits is not None:
        low, high = limits
        if not low <= _exposure_units(settings.exposure_time) * EXPOSURE_UNIT_US <= high:
            raise ValueError(f"the exposure time is {low}-{high} us on this sensor")


# -- settings -> control values ---------------------------------------------------------------
def level_value(level: int, control: ControlInfo) -> int:
    """A level 0-100 linearly onto the control's range, half up, on its step."""
    span = control.maximum - control.minimum
    step = max(1, control.step)
    offset = (level * span + 50) // 100
    offset = (offset + step // 2) // step * step
    return min(control.maximum, control.minimum + offset)


def _menu_switch(control: ControlInfo, on: bool) -> int | None:
    return control.labelled("auto", "aperture") if on else control.labelled("manual")


def switch_value(on: bool, control: ControlInfo) -> int:
    if control.kind == "menu":
        index = _menu_switch(control, on)
        assert index is not None  # _usable checked it
        return index
    if control.kind == "bool":
        return int(on)
    return control.maximum if on else control.minimum


def _exposure_units(microseconds: int) -> int:
    return (microseconds + EXPOSURE_UNIT_US // 2) // EXPOSURE_UNIT_US


def _value(setting: str, settings: IspSettings, control: ControlInfo) -> int:
    value: Any = getattr(settings, setting)
    if setting in LEVELS:
        return level_value(value, control)
    if setting in SWITCHES:
        return switch_value(value, control)
    if setting == "exposure_time":
        units = _exposure_units(value)
        return min(control.maximum, max(control.minimum, units))
    if setting == "dnr":
        if not value:
            return control.minimum if control.kind == "int" else 0
        return level_value(settings.dnr_level, control) if control.kind == "int" else 1
    if setting == "power_line_frequency":
        if control.kind == "menu":
            index = control.labelled(str(value))
            assert index is not None  # _usable checked it
            return index
        return MAINS[value]
    raise KeyError(setting)


def control_values(
    settings: IspSettings, capabilities: Capabilities, monochrome: bool = False
) -> dict[str, int]:
    """Each control's value for `settings`, in the order they are written."""
    values: dict[str, int] = {}
    auto_exposure = settings.exposure_auto and capabilities.offers("exposure_auto")
    for setting, control in capabilities.controls.items():
        if setting == "dnr_level":  # carried by the DNR control
            continue
        if setting in MANUAL_EXPOSURE_ONLY and auto_exposure:
            continue
        values[control.name] = _value(setting, settings, control)
    killer = capabilities.color_killer
    if killer is not None:
        values[killer.name] = switch_value(monochrome, killer)
    elif monochrome and "saturation" in capabilities.controls:
        saturation = capabilities.controls["saturation"]
        values[saturation.name] = saturation.minimum
    return values


# -- the sensor's processing, live ------------------------------------------------------------
class Isp:
    """Keeps the sensor's controls on the current settings and the day/night colour mode.

    The sensor's controls are read at the first use (a V4L2 device is opened then); a sensor
    whose controls cannot be read offers nothing, with one log line.
    """

    def __init__(self, names: SensorControls, sensor: SensorControlsDriver) -> None:
        self._names, self._sensor = names, sensor
        self._capabilities: Capabilities | None = None
        self._settings = IspSettings()
        self._monochrome = False
        self._written: dict[str, int] = {}

    @property
    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            try:
                controls = self._sensor.controls()
            except OSError as exc:
                log.warning("the sensor's controls cannot be read (%s): no image settings", exc)
                controls = {}
            self._capabilities = find_capabilities(self._names, controls)
            log.info("image settings the sensor offers: %s", ", ".join(self._capabilities.controls))
        return self._capabilities

    @property
    def monochrome(self) -> bool:
        return self._monochrome

    def apply(self, settings: IspSettings) -> None:
        """Write the controls whose value `settings` changes (all of them the first time)."""
        changed = [
            f"{f.name}={getattr(settings, f.name)}"
            for f in dataclasses.fields(settings)
            if getattr(settings, f.name) != getattr(self._settings, f.name)
            and self.capabilities.offers(f.name)
        ]
        self._settings = settings
        if self._write() or changed:
            log.info("image settings: %s", ", ".join(changed) or "as configured")

    def set_monochrome(self, on: bool) -> None:
        """Night mode's black and white picture (on), or colour again (off)."""
        if on == self._monochrome:
            return
        self._monochrome = on
        self._write()
        log.info("image: %s", "black and white (night)" if on else "colour (day)")

    def _write(self) -> bool:
        """Write the controls that differ from what was written; whether any was."""
        values = control_values(self._settings, self.capabilities, self._monochrome)
        wrote = False
        for name, value in values.items():
            if self._written.get(name) == value:
                continue
            try:
                self._sensor.set_control(name, value)
            except (OSError, ValueError, AttributeError) as exc:  # linuxpy: AttributeError
                log.warning("the sensor refused %s=%d: %s", name, value, exc)
                continue
            self._written[name] = value
            wrote = True
        return wrote


# -- a V4L2 device's controls -----------------------------------------------------------------
KINDS = {
    "BOOLEAN": "bool",
    "INTEGER": "int",
    "INTEGER64": "int",
    "U8": "int",
    "U16": "int",
    "U32": "int",
    "MENU": "menu",
    "INTEGER_MENU": "menu",
}


class V4L2Controls:
    """A V4L2 device's controls through linuxpy, on a handle of their own (controls may be
    written on any open file of the device, whether it is streaming or not)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._device: Any = None

    def _opened(self) -> Any:
        if self._device is None:
            # Imported here: linuxpy is needed only by a board with a V4L2 sensor.
            from linuxpy.video.device import Device

            device = Device(self._path)
            device.open()
            self._device = device
        return self._device

    def controls(self) -> dict[str, ControlInfo]:
        found: dict[str, ControlInfo] = {}
        for control in self._opened().controls.values():
            kind = KINDS.get(control.type.name)
            if kind is None or not control.is_writeable:
                continue
            menu = tuple((int(i), str(label)) for i, label in getattr(control, "data", {}).items())
            found[control.config_name] = ControlInfo(
                control.config_name, kind, control.minimum, control.maximum, control.step, menu
            )
        return found

    def set_control(self, name: str, value: int) -> None:
        self._opened().controls[name].value = value

    def close(self) -> None:
        if self._device is not None:
            self._device.close()
            self._device = None
