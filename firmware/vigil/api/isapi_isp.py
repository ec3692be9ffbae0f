"""ISAPI image processing of the video channels: `Image/channels[/{ch}]`, its parts and its
capabilities, onto `image.channels[].isp` (`config.image.IspSettings`) and from there onto the
sensor's controls (`vigil.media.isp`).

Resources (channel `{ch}`: a channel with a sensor, 404 `notSupport` for another):

- `Image/channels` (`ImageChannellist`) and `Image/channels/{ch}` (`ImageChannel`: `id`,
  `enabled`, `videoInputID` and each part below the sensor has);
- the parts, each also a resource of its own (the path in either case Hikvision's firmwares
  use): `color` (`Color`: `brightnessLevel`, `contrastLevel`, `saturationLevel`, `hueLevel`),
  `sharpness` (`Sharpness/SharpnessLevel`), `imageFlip` (`ImageFlip`: `enabled` and
  `ImageFlipStyle` LEFTRIGHT mirror, UPDOWN flip, CENTER both), `exposure`
  (`Exposure/ExposureType` auto or manual), `shutter` (`Shutter/ShutterLevel` "1/25": the
  manual exposure time), `gain` (`Gain/GainLevel`), `whiteBalance`
  (`WhiteBalance/WhiteBalanceStyle` auto or manual), `WDR` (`mode` open or close, `WDRLevel`),
  `BLC` (`enabled`), `noiseReduce` (`NoiseReduce`: `mode` close or general,
  `GeneralMode/generalLevel`), `powerLineFrequency` (`powerLineFrequencyMode` 50hz or 60hz);
- `Image/channels/{ch}/capabilities`: the `ImageChannel` document with each value's range
  (`min`/`max`) or choices (`opt`).

The whole `ImageChannel` also carries `IrcutFilter`, the day/night part, through
`vigil.api.isapi_daynight` (`ircut_doc`, `parse_ircut`), which serves it on its own too.

Levels are 0-100. A document shows only what the sensor has: a part it lacks entirely is a 404
`notSupport`, an element it lacks sent in a PUT is a 403 `notSupport` naming it, a value out of
range a 400 `badParameters` naming the element, an unknown element `badXmlContent`; either way
nothing is saved. Elements left out keep their values. Writes need `parameterConfig` (the auth
middleware's default for a PUT).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vigil.api.context import context
from vigil.api.errors import IsapiError, bad_parameters, bad_xml_content, not_found
from vigil.api.io import checked, config_change, ok, read_xml, xml_response
from vigil.api.isapi_daynight import ircut_doc, parse_ircut
from vigil.api.isapi_image import with_image
from vigil.api.xml import XmlIn, render
from vigil.config.image import ChannelImage, IspSettings
from vigil.media.isp import Capabilities, Unsupported, check_settings

routes = web.RouteTableDef()

IMAGE = "/ISAPI/Image/channels"
CHANNEL = IMAGE + "/{ch}"
SHUTTERS = (1, 3, 6, 12, 25, 30, 50, 60, 100, 120, 250, 500, 1000, 2000, 4000, 10000, 100000)


def not_supported(message: str) -> IsapiError:
    return IsapiError(403, 4, "notSupport", message)


# -- how one element's text stands for one setting ----------------------------------------------
@dataclass(frozen=True)
class Codec:
    show: Callable[[Any], Any]
    read: Callable[[str], Any]  # ValueError: not a value of this element
    capability: Callable[[Capabilities], dict[str, Any]]


def _level(text: str) -> int:
    if not text.lstrip("-").isdigit():
        raise ValueError("an integer 0-100")
    return int(text)


def _choice(values: Mapping[str, Any]) -> Codec:
    names = {value: name for name, value in values.items()}

    def read(text: str) -> Any:
        if text not in values:
            raise ValueError(f"one of {', '.join(values)}")
        return values[text]

    return Codec(names.__getitem__, read, lambda _: {"@opt": ",".join(values)})


def _shutter_read(text: str) -> int:
    one, _, denominator = text.partition("/")
    if one != "1" or not denominator.isdigit() or not 1 <= int(denominator) <= 100_000:
        raise ValueError("1/N seconds, N 1-100000")
    return round(1_000_000 / int(denominator))


def _shutter_options(capabilities: Capabilities) -> dict[str, Any]:
    low, high = capabilities.exposure_range_us() or (0, 0)
    shown = [f"1/{n}" for n in SHUTTERS if low <= 1_000_000 / n <= high]
    return {"@opt": ",".join(shown)}


LEVEL = Codec(int, _level, lambda _: {"@min": 0, "@max": 100})
SWITCH = _choice({"true": True, "false": False})
AUTO = _choice({"auto": True, "manual": False})
SHUTTER = Codec(lambda us: f"1/{round(1_000_000 / us)}", _shutter_read, _shutter_options)


@dataclass(frozen=True)
class Element:
    path: str  # in the part: "brightnessLevel", "GeneralMode/generalLevel"
    setting: str
    codec: Codec


@dataclass(frozen=True)
class Part:
    """One part of `ImageChannel` and the resource that is that part alone."""

    root: str
    paths: tuple[str, ...]
    elements: tuple[Element, ...]

    def offered(self, capabilities: Capabilities) -> list[Element]:
        return [e for e in self.elements if capabilities.offers(e.setting)]

    def show(self, isp: IspSettings, capabilities: Capabilities) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for element in self.offered(capabilities):
            _put(doc, element.path, element.codec.show(getattr(isp, element.setting)))
        return doc

    def capability(self, isp: IspSettings, capabilities: Capabilities) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for element in self.offered(capabilities):
            value = element.codec.show(getattr(isp, element.setting))
            _put(doc, element.path, {**element.codec.capability(capabilities), "#text": value})
        return doc

    def read(self, doc: XmlIn, capabilities: Capabilities) -> dict[str, Any]:
        """The settings `doc` changes; refused elements raise."""
        changes: dict[str, Any] = {}
        nested: dict[str, XmlIn | None] = {}
        for element in self.elements:
            parent, _, tag = element.path.rpartition("/")
            holder = doc
            if parent:
                if parent not in nested:
                    nested[parent] = doc.child(parent)
                found = nested[parent]
                if found is None:
                    continue
                holder = found
            text = holder.text(tag, max_len=32)
            if text is None:
                continue
            if not capabilities.offers(element.setting):
                raise not_supported(f"<{self.root}/{element.path}>: {Unsupported(element.setting)}")
            try:
                changes[element.setting] = element.codec.read(text)
            except ValueError as exc:
                raise bad_parameters(f"<{self.root}/{element.path}> {text!r}: {exc}") from None
        for child in nested.values():
            if child is not None:
                child.finish()
        doc.finish()
        return changes


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, tag = path.split("/")
    for parent in parents:
        doc = doc.setdefault(parent, {})
    doc[tag] = value


class ImageFlipPart(Part):
    """`ImageFlip`: `enabled` and a style, onto the mirror and flip switches."""

    STYLES = {"LEFTRIGHT": (True, False), "UPDOWN": (False, True), "CENTER": (True, True)}

    def _styles(self, capabilities: Capabilities) -> list[str]:
        has = capabilities.offers("mirror"), capabilities.offers("flip")
        return [s for s, (m, f) in self.STYLES.items() if (has[0] or not m) and (has[1] or not f)]

    def _shown(self, isp: IspSettings) -> dict[str, Any]:
        style = next((s for s, v in self.STYLES.items() if v == (isp.mirror, isp.flip)), None)
        return {"enabled": style is not None, "ImageFlipStyle": style}

    def show(self, isp: IspSettings, capabilities: Capabilities) -> dict[str, Any]:
        return self._shown(isp)

    def capability(self, isp: IspSettings, capabilities: Capabilities) -> dict[str, Any]:
        shown = self._shown(isp)
        style: dict[str, Any] = {"@opt": ",".join(self._styles(capabilities))}
        if shown["ImageFlipStyle"] is not None:
            style["#text"] = shown["ImageFlipStyle"]
        return {
            "enabled": {"@opt": "true,false", "#text": shown["enabled"]},
            "ImageFlipStyle": style,
        }

    def read(self, doc: XmlIn, capabilities: Capabilities) -> dict[str, Any]:
        enabled = doc.bool("enabled")
        style = doc.text("ImageFlipStyle", max_len=16)
        doc.ignore("flipAngle")
        doc.finish()
        if enabled is False:
            return {s: False for s in ("mirror", "flip") if capabilities.offers(s)}
        if style is None:
            if enabled:
                raise bad_xml_content("<ImageFlip>: enabled needs an <ImageFlipStyle>")
            return {}
        if style not in self.STYLES:
            raise bad_parameters(
                f"<ImageFlip/ImageFlipStyle> {style!r}: one of LEFTRIGHT, UPDOWN, CENTER"
            )
        if style not in self._styles(capabilities):
            raise not_supported(f"<ImageFlip/ImageFlipStyle> {style}: the sensor cannot flip so")
        mirror, flip = self.STYLES[style]
        return {"mirror": mirror, "flip": flip}


PARTS = (
    Part(
        "Color",
        ("color", "Color"),
        (
            Element("brightnessLevel", "brightness", LEVEL),
            Element("contrastLevel", "contrast", LEVEL),
            Element("saturationLevel", "saturation", LEVEL),
            Element("hueLevel", "hue", LEVEL),
        ),
    ),
    Part("Sharpness", ("sharpness", "Sharpness"), (Element("SharpnessLevel", "sharpness", LEVEL),)),
    ImageFlipPart(  # its elements say which settings it carries; it shows and reads its own
        "ImageFlip",
        ("imageFlip", "ImageFlip"),
        (Element("enabled", "mirror", SWITCH), Element("ImageFlipStyle", "flip", SWITCH)),
    ),
    Part("Exposure", ("exposure", "Exposure"), (Element("ExposureType", "exposure_auto", AUTO),)),
    Part("Shutter", ("shutter", "Shutter"), (Element("ShutterLevel", "exposure_time", SHUTTER),)),
    Part("Gain", ("gain", "Gain"), (Element("GainLevel", "gain", LEVEL),)),
    Part(
        "WhiteBalance",
        ("whiteBalance", "WhiteBalance"),
        (Element("WhiteBalanceStyle", "white_balance_auto", AUTO),),
    ),
    Part(
        "WDR",
        ("WDR", "wdr"),
        (
            Element("mode", "wdr", _choice({"open": True, "close": False})),
            Element("WDRLevel", "wdr_level", LEVEL),
        ),
    ),
    Part("BLC", ("BLC", "blc"), (Element("enabled", "blc", SWITCH),)),
    Part(
        "NoiseReduce",
        ("noiseReduce", "NoiseReduce"),
        (
            Element("mode", "dnr", _choice({"general": True, "close": False})),
            Element("GeneralMode/generalLevel", "dnr_level", LEVEL),
        ),
    ),
    Part(
        "powerLineFrequency",
        ("powerLineFrequency", "PowerLineFrequency"),
        (
            Element(
                "powerLineFrequencyMode", "power_line_frequency", _choice({"50hz": 50, "60hz": 60})
            ),
        ),
    ),
)
# Where each setting is in the documents, for naming refused values.
ELEMENTS = {e.setting: f"{p.root}/{e.path}" for p in PARTS for e in p.elements} | {
    "mirror": "ImageFlip/ImageFlipStyle",
    "flip": "ImageFlip/ImageFlipStyle",
}


def _has(part: Part, capabilities: Capabilities) -> bool:
    return bool(part.offered(capabilities))


# -- the channel ------------------------------------------------------------------------------
def channel_doc(image: ChannelImage, capabilities: Capabilities) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": image.channel, "enabled": True, "videoInputID": image.channel}
    for part in PARTS:
        if _has(part, capabilities):
            doc[part.root] = part.show(image.isp, capabilities)
    return doc | {"IrcutFilter": ircut_doc(image.day_night)}


def capabilities_doc(image: ChannelImage, capabilities: Capabilities) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": image.channel, "enabled": True, "videoInputID": image.channel}
    for part in PARTS:
        if _has(part, capabilities):
            doc[part.root] = part.capability(image.isp, capabilities)
    return doc | {"IrcutFilter": ircut_doc(image.day_night)}


def apply_changes(
    image: ChannelImage, changes: dict[str, Any], capabilities: Capabilities, where: str
) -> ChannelImage:
    """`image` with the ISP `changes`, validated against the model and the sensor."""
    isp = checked(image.isp, ELEMENTS, where, **changes)
    try:
        check_settings(isp, capabilities, set(changes))
    except Unsupported as exc:
        raise not_supported(f"<{ELEMENTS[exc.setting]}>: {exc}") from None
    except ValueError as exc:
        raise bad_parameters(f"<{ELEMENTS['exposure_time']}>: {exc}") from None
    return dataclasses.replace(image, isp=isp)


def parse_channel(
    doc: XmlIn, image: ChannelImage, capabilities: Capabilities, light_sensor: bool
) -> ChannelImage:
    """A whole `ImageChannel` document onto the channel's settings (`IrcutFilter` is the
    day/night module's, `light_sensor` whether its auto mode can be had)."""
    for tag in ("id", "videoInputID"):
        if doc.int(tag, image.channel) != image.channel:
            raise bad_parameters(f"<{tag}> is the channel, {image.channel}")
    if doc.bool("enabled", True) is not True:
        raise bad_parameters("<enabled>: the channel's image processing is always on")
    changes: dict[str, Any] = {}
    for part in PARTS:
        found = doc.child(part.root)
        if found is None:
            continue
        if not _has(part, capabilities):
            raise not_supported(f"<{part.root}>: the sensor has none")
        changes |= part.read(found, capabilities)
    ircut = doc.child("IrcutFilter")
    doc.finish()
    if ircut is not None:
        day_night = parse_ircut(ircut, image.day_night, light_sensor=light_sensor)
        image = dataclasses.replace(image, day_night=day_night)
    return apply_changes(image, changes, capabilities, "ImageChannel")


def _light_sensor(request: web.Request) -> bool:
    return context(request).board.day_night.light_sensor != "none"


# -- resources --------------------------------------------------------------------------------
def _channel(request: web.Request) -> tuple[ChannelImage, Capabilities]:
    raw = request.match_info["ch"]
    capabilities = (
        context(request).media.image_capabilities(int(raw))
        if raw.isdigit() and len(raw) <= 3
        else None
    )
    if capabilities is None:
        raise not_found(f"no video input channel {raw[:8]} with a sensor")
    return context(request).store.current.image.channel(int(raw)), capabilities


def _sensor_channels(request: web.Request) -> list[tuple[ChannelImage, Capabilities]]:
    ctx = context(request)
    found = []
    for channel in range(1, 33):
        capabilities = ctx.media.image_capabilities(channel)
        if capabilities is not None:
            found.append((ctx.store.current.image.channel(channel), capabilities))
    return found


@routes.get(IMAGE)
async def get_channels(request: web.Request) -> web.Response:
    docs = [channel_doc(image, caps) for image, caps in _sensor_channels(request)]
    return xml_response(render("ImageChannellist", {"ImageChannel": docs}))


@routes.put(IMAGE)
async def put_channels(request: web.Request) -> web.Response:
    doc = await read_xml(request, "ImageChannellist")
    known = {image.channel: (image, caps) for image, caps in _sensor_channels(request)}
    new: list[ChannelImage] = []
    for entry in doc.children("ImageChannel", 32):
        number = entry.int("id")
        if number not in known:
            raise bad_parameters(f"<ImageChannel/id> {number}: no such channel with a sensor")
        if any(image.channel == number for image in new):
            raise bad_parameters(f"<ImageChannel/id> {number} appears twice")
        image, caps = known[number]
        new.append(parse_channel(entry, image, caps, _light_sensor(request)))
    doc.finish()

    def change(config: Any) -> Any:
        for image in new:
            config = with_image(config, image)
        return config

    await config_change(request, change)
    return ok(request)


@routes.get(CHANNEL)
async def get_channel(request: web.Request) -> web.Response:
    image, capabilities = _channel(request)
    return xml_response(render("ImageChannel", channel_doc(image, capabilities)))


@routes.put(CHANNEL)
async def put_channel(request: web.Request) -> web.Response:
    image, capabilities = _channel(request)
    doc = await read_xml(request, "ImageChannel")
    new = parse_channel(doc, image, capabilities, _light_sensor(request))
    await config_change(request, lambda config: with_image(config, new))
    return ok(request)


@routes.get(CHANNEL + "/capabilities")
async def get_capabilities(request: web.Request) -> web.Response:
    image, capabilities = _channel(request)
    return xml_response(render("ImageChannel", capabilities_doc(image, capabilities)))


def _serve_part(part: Part) -> None:
    def offered(request: web.Request) -> tuple[ChannelImage, Capabilities]:
        image, capabilities = _channel(request)
        if not _has(part, capabilities):
            raise not_found(f"the sensor has no {part.root} settings")
        return image, capabilities

    async def get(request: web.Request) -> web.Response:
        image, capabilities = offered(request)
        return xml_response(render(part.root, part.show(image.isp, capabilities)))

    async def put(request: web.Request) -> web.Response:
        image, capabilities = offered(request)
        doc = await read_xml(request, part.root)
        new = apply_changes(image, part.read(doc, capabilities), capabilities, part.root)
        await config_change(request, lambda config: with_image(config, new))
        return ok(request)

    for path in part.paths:
        routes.get(f"{CHANNEL}/{path}")(get)
        routes.put(f"{CHANNEL}/{path}")(put)


for _part in PARTS:
    _serve_part(_part)
