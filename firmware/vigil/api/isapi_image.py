"""ISAPI image settings of the video channels: the OSD and privacy masks, in `image`.

Resources, per video channel `{ch}` (the channels the detection resources have; 404
`notSupport` for another):

- `System/Video/inputs/channels/{ch}` (`VideoInputChannel`): `id` (the channel), `inputPort`
  (the channel: one sensor each) and `name`, the channel name the OSD shows.
- `.../overlays` (`VideoOverlay`): `fontSize` (`16*16` small, `32*32` medium, `48*48` large,
  `auto`; `adaptive` is read as `auto`), `TextOverlayList` (up to 8 `TextOverlay`: `id` 1-8,
  `enabled`, `positionX`, `positionY`, `displayText`, printable ASCII up to 44 characters),
  `DateTimeOverlay` (`enabled`, position, `dateStyle` e.g. `YYYY-MM-DD`, `timeStyle` `24hour`
  or `12hour`, `displayWeek`) and `channelNameOverlay` (`enabled`, position).
- `.../privacyMask` (`PrivacyMask`): `enabled` and `PrivacyMaskRegionList`, up to 8
  `PrivacyMaskRegion` (`id` 1-8, `enabled`, `RegionCoordinatesList` of the 4 corners of a
  rectangle with sides along the picture's, `maskType` `black`: the only fill).

Positions are Hikvision's: a 704x576 normalized screen (`normalizedScreenSize`, which a PUT
may send but not change), origin BOTTOM left; a text's position is its top left corner. They are
kept in thousandths with the origin top left (`config.image`), rounded half up each way; as
thousandths are finer than 704x576, a position sent is shown back exactly, except that a text
placed on the right or bottom edge itself (x 704 or y 0) is kept at 999 and shows as 703 or 1.

Choices where Hikvision's documents say more than Vigil does:

- `attribute` (`transparent`, `flashing`): the OSD is opaque white text with a dark outline, so
  both are shown `false`; `false` is accepted, `true` is `badParameters`.
- `frontColorMode`, `frontColor`, `alignment`, `boundary`, `upDownboundary`,
  `leftRightboundary`, which clients copy from Hikvision documents, are accepted and ignored.
- A `TextOverlayList` sent replaces the text lines (a line left out is removed); a
  `PrivacyMaskRegionList` sent replaces the masks, a region with `enabled` false is dropped
  (its coordinates are not read) and the masks are shown numbered 1-n in the order sent.
- Elements left out keep their values; a position is both `positionX` and `positionY`.

Anything else unknown is `badXmlContent`; a value out of range is `badParameters` naming the
element; either way nothing is saved. Writes need `parameterConfig` (the auth middleware's
default for a PUT).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from aiohttp import web

from vigil.api.context import context
from vigil.api.errors import bad_parameters, bad_xml_content, not_found
from vigil.api.io import checked, config_change, ok, read_xml, xml_response
from vigil.api.isapi_detection import (
    Screen,
    check_screen,
    from_screen,
    parse_area,
    points_doc,
    screen_doc,
    to_screen,
)
from vigil.api.xml import XmlIn, render
from vigil.config.events import Area
from vigil.config.image import (
    MAX_MASKS,
    MAX_TEXT_LINES,
    ChannelImage,
    OsdSettings,
    PrivacyMaskSettings,
    TextOverlay,
)
from vigil.config.model import Config

routes = web.RouteTableDef()

CHANNEL = "/ISAPI/System/Video/inputs/channels/{ch}"
SCREEN: Screen = (704, 576)
LAST = 999  # the largest position in thousandths
FONT_SIZES = {"small": "16*16", "medium": "32*32", "large": "48*48", "auto": "auto"}
FONT_NAMES = {shown: name for name, shown in FONT_SIZES.items()} | {"adaptive": "auto"}
ECHOED = (
    "frontColorMode",
    "frontColor",
    "alignment",
    "boundary",
    "upDownboundary",
    "leftRightboundary",
)
MASK_TYPES = ("black",)

# Where each setting is in the documents, for naming refused values.
OSD_ELEMENTS = {
    "channel_name": "name",
    "name": "channelNameOverlay",
    "date_time": "DateTimeOverlay",
    "texts": "TextOverlayList",
    "font_size": "fontSize",
}
POSITION = {"x": "positionX", "y": "positionY"}
NAME_ELEMENTS = {"enabled": "enabled", **POSITION}
DATE_TIME_ELEMENTS = {
    "enabled": "enabled",
    **POSITION,
    "date_format": "dateStyle",
    "time_format": "timeStyle",
    "show_week": "displayWeek",
}
TEXT_ELEMENTS = {"id": "id", "enabled": "enabled", "text": "displayText", **POSITION}
MASK_ELEMENTS = {"enabled": "enabled", "areas": "PrivacyMaskRegionList"}


# -- positions ---------------------------------------------------------------------------------
def position_doc(x: int, y: int) -> dict[str, int]:
    """A text's top left corner (thousandths, top-left origin) -> `positionX`/`positionY`."""
    px, py = to_screen(x, y, SCREEN)
    return {"positionX": px, "positionY": py}


def screen_position(px: int, py: int) -> dict[str, int]:
    """`positionX`/`positionY` (704x576, bottom-left origin) -> `x`/`y` in thousandths, top
    left origin; ValueError outside the screen."""
    width, height = SCREEN
    if not (0 <= px <= width and 0 <= py <= height):
        raise ValueError(f"({px}, {py}) is outside the screen (0-{width}, 0-{height})")
    x, y = from_screen((px, py), SCREEN)
    return {"x": min(x, LAST), "y": min(y, LAST)}


def _parse_position(doc: XmlIn, where: str) -> dict[str, int]:
    px, py = doc.int("positionX"), doc.int("positionY")
    if px is None and py is None:
        return {}
    if px is None or py is None:
        raise bad_xml_content(f"{where}: a position is both <positionX> and <positionY>")
    try:
        return screen_position(px, py)
    except ValueError as exc:
        raise bad_parameters(f"<{where}/positionX>: {exc}") from None


def _flags(doc: XmlIn, flags: dict[str, str]) -> dict[str, Any]:
    """The `bool` settings (`flags`: field -> tag) that `doc` sends."""
    found = {field: doc.bool(tag) for field, tag in flags.items()}
    return {field: value for field, value in found.items() if value is not None}


# -- overlays ----------------------------------------------------------------------------------
def _text_doc(text: TextOverlay) -> dict[str, Any]:
    return {
        "id": text.id,
        "enabled": text.enabled,
        **position_doc(text.x, text.y),
        "displayText": text.text,
    }


def overlay_doc(osd: OsdSettings) -> dict[str, Any]:
    date_time, name = osd.date_time, osd.name
    return {
        "normalizedScreenSize": screen_doc(SCREEN),
        "attribute": {"transparent": False, "flashing": False},
        "fontSize": FONT_SIZES[osd.font_size],
        "TextOverlayList": {
            "@size": MAX_TEXT_LINES,
            "TextOverlay": [_text_doc(t) for t in osd.texts],
        },
        "DateTimeOverlay": {
            "enabled": date_time.enabled,
            **position_doc(date_time.x, date_time.y),
            "dateStyle": date_time.date_format,
            "timeStyle": date_time.time_format,
            "displayWeek": date_time.show_week,
        },
        "channelNameOverlay": {"enabled": name.enabled, **position_doc(name.x, name.y)},
    }


def _check_attribute(doc: XmlIn | None) -> None:
    if doc is None:
        return
    for tag in ("transparent", "flashing"):
        if doc.bool(tag):
            raise bad_parameters(f"<attribute/{tag}>: the OSD is opaque and steady (false)")
    doc.finish()


def _parse_text(doc: XmlIn, current: OsdSettings) -> TextOverlay:
    where = "TextOverlayList/TextOverlay"
    number = doc.int("id")
    if number is None:
        raise bad_xml_content(f"{where}: <id> is needed")
    changes: dict[str, Any] = {"id": number, **_flags(doc, {"enabled": "enabled"})}
    changes |= _parse_position(doc, where)
    text = doc.text("displayText")
    if text is not None:
        changes["text"] = text
    doc.finish()
    same = next((t for t in current.texts if t.id == number), TextOverlay())
    return checked(same, TEXT_ELEMENTS, where, **changes)


def _parse_texts(doc: XmlIn, current: OsdSettings) -> list[TextOverlay]:
    lines = list(doc.children("TextOverlay", 32))
    doc.finish()
    if len(lines) > MAX_TEXT_LINES:
        raise bad_parameters(f"<TextOverlayList>: at most {MAX_TEXT_LINES} lines, not {len(lines)}")
    return [_parse_text(line, current) for line in lines]


def _parse_part(doc: XmlIn, current: Any, elements: dict[str, str], where: str) -> Any:
    """`channelNameOverlay` or `DateTimeOverlay`: flags, position and (date/time) styles."""
    flags = {f: t for f, t in elements.items() if isinstance(getattr(current, f), bool)}
    changes = _flags(doc, flags) | _parse_position(doc, where)
    for field, tag in elements.items():
        if isinstance(getattr(current, field), str):
            value = doc.text(tag, max_len=32)
            if value is not None:
                changes[field] = value
    doc.finish()
    return checked(current, elements, where, **changes)


def parse_overlay(doc: XmlIn, current: OsdSettings) -> OsdSettings:
    changes: dict[str, Any] = {}
    check_screen(doc.child("normalizedScreenSize"), SCREEN)
    _check_attribute(doc.child("attribute"))
    font = doc.text("fontSize", max_len=16)
    if font is not None:
        if font not in FONT_NAMES:
            raise bad_parameters(f"<fontSize> {font!r}: one of {', '.join(FONT_NAMES)}")
        changes["font_size"] = FONT_NAMES[font]
    texts = doc.child("TextOverlayList")
    if texts is not None:
        changes["texts"] = _parse_texts(texts, current)
    date_time = doc.child("DateTimeOverlay")
    if date_time is not None:
        where = "DateTimeOverlay"
        changes["date_time"] = _parse_part(date_time, current.date_time, DATE_TIME_ELEMENTS, where)
    name = doc.child("channelNameOverlay")
    if name is not None:
        changes["name"] = _parse_part(name, current.name, NAME_ELEMENTS, "channelNameOverlay")
    doc.ignore(*ECHOED)
    doc.finish()
    return checked(current, OSD_ELEMENTS, "VideoOverlay", **changes)


# -- privacy masks -----------------------------------------------------------------------------
def privacy_mask_doc(mask: PrivacyMaskSettings) -> dict[str, Any]:
    regions = [
        {
            "id": number,
            "enabled": True,
            "RegionCoordinatesList": points_doc(area, SCREEN),
            "maskType": MASK_TYPES[0],
        }
        for number, area in enumerate(mask.areas, start=1)
    ]
    return {
        "enabled": mask.enabled,
        "normalizedScreenSize": screen_doc(SCREEN),
        "PrivacyMaskRegionList": {"@size": MAX_MASKS, "PrivacyMaskRegion": regions},
    }


def _parse_region(doc: XmlIn) -> tuple[int, Area | None]:
    """One region -> its id and area (None: the region is off)."""
    where = "PrivacyMaskRegion"
    number = doc.int("id")
    if number is None or not 1 <= number <= MAX_MASKS:
        raise bad_parameters(f"<{where}/id>: 1-{MAX_MASKS}")
    mask_type = doc.text("maskType", MASK_TYPES[0], max_len=16)
    if mask_type not in MASK_TYPES:
        raise bad_parameters(f"<{where}/maskType> {mask_type!r}: masks are black")
    corners = doc.child("RegionCoordinatesList")
    if not doc.bool("enabled", True):
        doc.finish()
        return number, None
    doc.finish()
    if corners is None:
        raise bad_xml_content(f"{where} {number}: <RegionCoordinatesList> is needed")
    return number, parse_area(corners, where, SCREEN)


def _parse_regions(doc: XmlIn) -> list[Area]:
    regions = [_parse_region(r) for r in doc.children("PrivacyMaskRegion", 32)]
    doc.finish()
    numbers = [number for number, _ in regions]
    if len(set(numbers)) != len(numbers):
        raise bad_parameters("<PrivacyMaskRegion/id>: each region's id once")
    return [area for _, area in sorted(regions, key=lambda r: r[0]) if area is not None]


def parse_privacy_mask(doc: XmlIn, current: PrivacyMaskSettings) -> PrivacyMaskSettings:
    changes = _flags(doc, {"enabled": "enabled"})
    check_screen(doc.child("normalizedScreenSize"), SCREEN)
    regions = doc.child("PrivacyMaskRegionList")
    doc.finish()
    if regions is not None:
        changes["areas"] = _parse_regions(regions)
    return checked(current, MASK_ELEMENTS, "PrivacyMask", **changes)


# -- the channel -------------------------------------------------------------------------------
def input_channel_doc(image: ChannelImage) -> dict[str, Any]:
    return {"id": image.channel, "inputPort": image.channel, "name": image.osd.channel_name}


def parse_input_channel(doc: XmlIn, image: ChannelImage) -> ChannelImage:
    if doc.int("inputPort", image.channel) != image.channel:
        raise bad_parameters(f"<inputPort> is the channel's own, {image.channel}")
    name = doc.text("name", max_len=64)
    doc.finish()
    if name is None:
        return image
    osd = checked(image.osd, OSD_ELEMENTS, "VideoInputChannel", channel_name=name)
    return dataclasses.replace(image, osd=osd)


def parse_overlay_of(doc: XmlIn, image: ChannelImage) -> ChannelImage:
    return dataclasses.replace(image, osd=parse_overlay(doc, image.osd))


def parse_privacy_mask_of(doc: XmlIn, image: ChannelImage) -> ChannelImage:
    return dataclasses.replace(image, privacy_mask=parse_privacy_mask(doc, image.privacy_mask))


# -- resources ---------------------------------------------------------------------------------
def _channel(request: web.Request) -> ChannelImage:
    raw = request.match_info["ch"]
    config = context(request).store.current
    if not (raw.isdigit() and len(raw) <= 3 and config.events.channel(int(raw)) is not None):
        raise not_found(f"no video input channel {raw[:8]}")
    return config.image.channel(int(raw))


def with_image(config: Config, image: ChannelImage) -> Config:
    others = [c for c in config.image.channels if c.channel != image.channel]
    channels = sorted([*others, image], key=lambda c: c.channel)
    return dataclasses.replace(config, image=dataclasses.replace(config.image, channels=channels))


def _serve(
    path: str,
    root: str,
    show: Callable[[ChannelImage], dict[str, Any]],
    read: Callable[[XmlIn, ChannelImage], ChannelImage],
) -> None:
    """GET and PUT of one document about a channel's image settings; the document may carry
    the channel as its `id`."""

    async def get(request: web.Request) -> web.Response:
        return xml_response(render(root, show(_channel(request))))

    async def put(request: web.Request) -> web.Response:
        image = _channel(request)
        doc = await read_xml(request, root)
        if doc.int("id", image.channel) != image.channel:
            raise bad_parameters(f"<id> is the channel, {image.channel}")
        new = read(doc, image)
        await config_change(request, lambda config: with_image(config, new))
        return ok(request)

    routes.get(path)(get)
    routes.put(path)(put)


_serve(CHANNEL, "VideoInputChannel", input_channel_doc, parse_input_channel)
_serve(f"{CHANNEL}/overlays", "VideoOverlay", lambda i: overlay_doc(i.osd), parse_overlay_of)
_serve(
    f"{CHANNEL}/privacyMask",
    "PrivacyMask",
    lambda image: privacy_mask_doc(image.privacy_mask),
    parse_privacy_mask_of,
)
