"""ISAPI day/night: `Image/channels/{ch}/IrcutFilter`, its status and `supplementLight`.

Resources, per video channel `{ch}` (the channels the image resources have; 404 `notSupport`
for another); `ircutFilter`, as some clients spell it, is the same resource:

- `IrcutFilter` (Hikvision's shape): `IrcutFilterType` `day`, `night`, `auto` or `schedule`;
  `nightToDayFilterLevel`, the sensitivity 0-7 (the thresholds it means are in
  `vigil.media.daynight`); `nightToDayFilterTime`, the delay 5-120 s; `Schedule`
  {`scheduleType` `day`, `TimeRange` {`beginTime`, `endTime`} `HH:MM:SS`}, the day period of
  the schedule mode, device local time. A PUT may send the night period instead
  (`scheduleType` `night`); it is kept as the day period's complement and shown as that.
  `auto` is refused on a board without a light sensor. Elements left out keep their values.
- `IrcutFilter/status` (Vigil's own, read only; Hikvision has no such document):
  `IrcutFilterStatus` {`IrcutFilterType` (the mode), `currentState` `day` or `night`,
  `lightLevel` (the last reading in lux, one decimal; absent without one) and
  `supplementLightOn`}. Only the channel with the board's IR-cut has one.
- `supplementLight` (`SupplementLight` {`supplementLightMode` `irLight` or `close`}): whether
  the IR illuminator lights at night. 404 `notSupport` on a board without one.

`ircut_doc(settings)` and `parse_ircut(doc, current)` are the `IrcutFilter` part for the whole
`ImageChannel` document too. An unknown element is `badXmlContent`, a value out of range
`badParameters` naming the element; either way nothing is saved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from aiohttp import web

from vigil.api.context import context
from vigil.api.errors import bad_parameters, not_found
from vigil.api.io import checked, config_change, ok, read_xml, xml_response
from vigil.api.isapi_image import _channel, with_image
from vigil.api.xml import XmlIn, render
from vigil.config.image import DAY_NIGHT_MODES, ChannelImage, DayNightSettings

routes = web.RouteTableDef()

IMAGE = "/ISAPI/Image/channels/{ch}"
ELEMENTS = {
    "mode": "IrcutFilterType",
    "sensitivity": "nightToDayFilterLevel",
    "delay_s": "nightToDayFilterTime",
    "day_start": "Schedule/TimeRange/beginTime",
    "night_start": "Schedule/TimeRange/endTime",
}
LIGHT_MODES = {"irLight": True, "close": False}


# -- the IrcutFilter part ----------------------------------------------------------------------
def ircut_doc(settings: DayNightSettings) -> dict[str, Any]:
    return {
        "IrcutFilterType": settings.mode,
        "nightToDayFilterLevel": settings.sensitivity,
        "nightToDayFilterTime": settings.delay_s,
        "Schedule": {
            "scheduleType": "day",
            "TimeRange": {"beginTime": settings.day_start, "endTime": settings.night_start},
        },
    }


def _parse_schedule(doc: XmlIn) -> dict[str, Any]:
    kind = doc.text("scheduleType", "day", max_len=16)
    if kind not in ("day", "night"):
        raise bad_parameters(f"<Schedule/scheduleType> {kind!r}: day or night")
    period = doc.child("TimeRange")
    doc.finish()
    if period is None:
        return {}
    begin, end = period.text("beginTime", max_len=16), period.text("endTime", max_len=16)
    period.finish()
    if (begin is None) != (end is None):
        raise bad_parameters("<Schedule/TimeRange>: both <beginTime> and <endTime>")
    if begin is None:
        return {}
    day_start, night_start = (begin, end) if kind == "day" else (end, begin)
    return {"day_start": day_start, "night_start": night_start}


def parse_ircut(
    doc: XmlIn, current: DayNightSettings, *, light_sensor: bool = True
) -> DayNightSettings:
    """An `IrcutFilter` element -> the settings; `light_sensor`: whether `auto` can be had."""
    changes: dict[str, Any] = {}
    mode = doc.text("IrcutFilterType", max_len=16)
    if mode is not None:
        if mode not in DAY_NIGHT_MODES:
            raise bad_parameters(f"<IrcutFilterType> {mode!r}: one of {', '.join(DAY_NIGHT_MODES)}")
        if mode == "auto" and not light_sensor:
            raise bad_parameters("<IrcutFilterType> auto: the board has no light sensor")
        changes["mode"] = mode
    for field in ("sensitivity", "delay_s"):
        value = doc.int(ELEMENTS[field])
        if value is not None:
            changes[field] = value
    schedule = doc.child("Schedule")
    doc.finish()
    if schedule is not None:
        changes |= _parse_schedule(schedule)
    return checked(current, ELEMENTS, "IrcutFilter", **changes)


# -- resources ---------------------------------------------------------------------------------
def _put_image(
    root: str, read: Callable[[web.Request, XmlIn, ChannelImage], DayNightSettings]
) -> Callable[[web.Request], Any]:
    async def put(request: web.Request) -> web.Response:
        image = _channel(request)
        new = read(request, await read_xml(request, root), image)
        changed = dataclasses.replace(image, day_night=new)
        await config_change(request, lambda config: with_image(config, changed))
        return ok(request)

    return put


async def get_ircut(request: web.Request) -> web.Response:
    return xml_response(render("IrcutFilter", ircut_doc(_channel(request).day_night)))


def _read_ircut(request: web.Request, doc: XmlIn, image: ChannelImage) -> DayNightSettings:
    sensor = context(request).board.day_night.light_sensor != "none"
    return parse_ircut(doc, image.day_night, light_sensor=sensor)


async def get_status(request: web.Request) -> web.Response:
    image = _channel(request)
    service = context(request).day_night
    if service is None or service.channel != image.channel:
        raise not_found(f"channel {image.channel} has no IR-cut filter")
    status = service.status()
    doc = {
        "IrcutFilterType": status.mode,
        "currentState": "night" if status.night else "day",
        "lightLevel": None if status.lux is None else round(status.lux, 1),
        "supplementLightOn": status.illuminator,
    }
    return xml_response(render("IrcutFilterStatus", doc))


def _illuminated(request: web.Request) -> ChannelImage:
    if not context(request).board.day_night.illuminator:
        raise not_found("the board has no IR illuminator")
    return _channel(request)


async def get_light(request: web.Request) -> web.Response:
    on = _illuminated(request).day_night.illuminator
    return xml_response(render("SupplementLight", {"supplementLightMode": _light_mode(on)}))


def _light_mode(on: bool) -> str:
    return next(mode for mode, lit in LIGHT_MODES.items() if lit == on)


def _read_light(request: web.Request, doc: XmlIn, image: ChannelImage) -> DayNightSettings:
    _illuminated(request)
    mode = doc.text("supplementLightMode", max_len=32)
    doc.finish()
    if mode is None:
        return image.day_night
    if mode not in LIGHT_MODES:
        raise bad_parameters(f"<supplementLightMode> {mode!r}: irLight or close")
    return dataclasses.replace(image.day_night, illuminator=LIGHT_MODES[mode])


for _path in (f"{IMAGE}/IrcutFilter", f"{IMAGE}/ircutFilter"):
    routes.get(_path)(get_ircut)
    routes.put(_path)(_put_image("IrcutFilter", _read_ircut))
    routes.get(f"{_path}/status")(get_status)
routes.get(f"{IMAGE}/supplementLight")(get_light)
routes.put(f"{IMAGE}/supplementLight")(_put_image("SupplementLight", _read_light))
