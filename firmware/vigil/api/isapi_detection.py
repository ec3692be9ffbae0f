"""ISAPI detection settings of the video channels (SPEC §5), all in `events.detection`.

Resources, per video channel `{ch}` (404 `notSupport` for a channel the device does not have):

- `System/Video/inputs/channels/{ch}/motionDetection` (`MotionDetection`): `enabled`;
  `regionType` `grid` (the 22x18 grid, Vigil's mode `grid`) or `roi` (up to 8 rectangles, mode
  `expert`); `Grid` (always 18 rows, 22 columns: other granularities are refused);
  `MotionDetectionLayout` with the grid's `sensitivityLevel` (0-100, 0 = off) and
  `layout/gridMap`; `MotionDetectionRegionList` with the expert areas. The settings of the mode
  not in force are kept, so switching `regionType` back restores them.
  `.../motionDetection/layout/gridLayout` (`MotionDetectionGridLayout`: `sensitivityLevel` and
  `layout/gridMap`) is the grid alone; it does not switch the mode.
  `.../motionDetection/capabilities` is the document with the ranges (`min`/`max`/`opt`).
- `.../tamperDetection` (`TamperDetection`): `enabled` and one `TamperDetectionRegion` (id 1,
  `sensitivityLevel`, the area).
- `.../videoLoss` (`VideoLoss`): `enabled` and Vigil's `timeoutSeconds` (1-60, no frame for that
  long is video loss).
- Defocus and scene change live where Hikvision's web client finds them:
  `Smart/DefocusDetection/{ch}` (`DefocusDetection`) and `Smart/SceneChangeDetection/{ch}`
  (`SceneChangeDetection`), each `id` (the channel), `enabled`, `sensitivityLevel`.

The grid map (`gridMap`) is Hikvision's: 18 rows from the top, each row 22 cells from the left
as bits, most significant first, padded to 3 bytes (6 hex digits, 108 in all); the padding bits
are ignored when read. Areas are rectangles in Hikvision's coordinates: `RegionCoordinatesList`
of 4 `RegionCoordinates` (`positionX`, `positionY`, 0-1000, origin BOTTOM left), shown clockwise
from the top-left corner and read in any order; they become `Area`s in thousandths with the
origin at the top left. `normalizedScreenSize`, if sent, must be 1000x1000.

Expert areas (`MotionDetectionRegion`): `id` (1-8), `enabled`, `sensitivityLevel` (0-100, 0 =
this area is off), `detectionThreshold` (PSIA's name for the share of the area, 1-100 %, that
must change: Vigil's proportion), and for the night set `nightSensitivityLevel` (Hikvision's
expert-mode name) and `nightDetectionThreshold` (Vigil's). A region with `enabled` false is
dropped (clients send all 8 with the unused ones disabled and zeroed); an element left out of a
region keeps the value of the area with the same id. The day/night switch is Hikvision's
expert-mode `MotionDetectionSwitch`: `type` `off` or `schedule` (`auto` needs a light sensor
and is refused) and `Schedule/TimeRange` from `beginTime` (day starts) to `endTime` (night
starts), on the minute.

A PUT may leave elements out (they keep their values); any of these documents may carry the
channel as its `id` (PSIA's have one; another channel's is refused). `enableHighlight`,
`samplingInterval`, `startTriggerTime` and `endTriggerTime`, which clients copy from Hikvision
documents, are accepted and ignored: the detectors run at their own rate (≤ 5 fps). Anything
else unknown is `badXmlContent`; a value out of range is `badParameters` naming the element;
either way nothing is saved.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vigil.api.context import context
from vigil.api.errors import bad_parameters, bad_xml_content, not_found
from vigil.api.io import checked, config_change, ok, read_xml, xml_response
from vigil.api.weekly_xml import isapi_time, time_of_day
from vigil.api.xml import XmlIn, render
from vigil.config.events import (
    GRID_COLUMNS,
    GRID_ROWS,
    Area,
    ChannelDetection,
    MotionArea,
    MotionSettings,
    SensitivitySettings,
    TamperSettings,
    VideoLossSettings,
)
from vigil.config.model import Config
from vigil.config.schema import validate

routes = web.RouteTableDef()

Point = tuple[int, int]

CHANNEL = "/ISAPI/System/Video/inputs/channels/{ch}"
GRID_LAYOUT_ROOTS = ("MotionDetectionGridLayout", "MotionDetectionLayout")
FRAME = 1000  # coordinates are thousandths of the picture
Screen = tuple[int, int]  # a normalized screen's width and height, origin bottom left
THOUSANDTHS: Screen = (FRAME, FRAME)  # the detection documents' screen
GRID_ROW_DIGITS = 6  # 3 bytes of hex a row
GRID_MAP = re.compile(rf"[0-9A-Fa-f]{{{GRID_ROWS * GRID_ROW_DIGITS}}}")
REGION_TYPES = {"grid": "grid", "expert": "roi"}
MODES = {name: mode for mode, name in REGION_TYPES.items()}
DAY_NIGHT = ("off", "schedule")
ECHOED = ("enableHighlight", "samplingInterval", "startTriggerTime", "endTriggerTime")

# Where each setting is in the documents, for reading them and for naming refused values.
MOTION_ELEMENTS = {
    "enabled": "enabled",
    "mode": "regionType",
    "sensitivity": "MotionDetectionLayout/sensitivityLevel",
    "grid": "gridMap",
    "areas": "MotionDetectionRegionList",
    "day_night": "MotionDetectionSwitch/type",
    "day_start": "TimeRange/beginTime",
    "night_start": "TimeRange/endTime",
}
REGION_LEVELS = {
    "sensitivity": "sensitivityLevel",
    "proportion": "detectionThreshold",
    "night_sensitivity": "nightSensitivityLevel",
    "night_proportion": "nightDetectionThreshold",
}
REGION_ELEMENTS = {"id": "id", "area": "RegionCoordinatesList", **REGION_LEVELS}
TAMPER_ELEMENTS = {
    "enabled": "enabled",
    "sensitivity": "sensitivityLevel",
    "area": "RegionCoordinatesList",
}
VIDEO_LOSS_ELEMENTS = {"enabled": "enabled", "timeout_s": "timeoutSeconds"}
SENSITIVITY_ELEMENTS = {"enabled": "enabled", "sensitivity": "sensitivityLevel"}


# -- pure conversions --------------------------------------------------------------------------
def grid_to_hex(rows: Sequence[str]) -> str:
    """The grid's rows ("0"/"1" x 22, top first) -> Hikvision's gridMap (108 hex digits)."""
    width = GRID_ROW_DIGITS * 4
    return "".join(f"{int(row.ljust(width, '0'), 2):0{GRID_ROW_DIGITS}x}" for row in rows)


def hex_to_grid(grid_map: str) -> list[str]:
    """Hikvision's gridMap -> the grid's rows; ValueError if it is not 18 rows of 3 bytes."""
    if GRID_MAP.fullmatch(grid_map) is None:
        digits = GRID_ROWS * GRID_ROW_DIGITS
        raise ValueError(
            f"a grid map is {digits} hex digits (3 bytes for each of {GRID_ROWS} rows)"
        )
    width = GRID_ROW_DIGITS * 4
    rows = (grid_map[i : i + GRID_ROW_DIGITS] for i in range(0, len(grid_map), GRID_ROW_DIGITS))
    return [f"{int(row, 16):0{width}b}"[:GRID_COLUMNS] for row in rows]


def rescale(value: int, to: int, unit: int) -> int:
    """`value` of `unit` as a share of `to`, rounded half up (exact when `to` is `unit`)."""
    return (2 * value * to + unit) // (2 * unit)


def to_screen(x: int, y: int, screen: Screen = THOUSANDTHS) -> Point:
    """A point in thousandths (origin top left) -> the screen's (origin bottom left)."""
    width, height = screen
    return rescale(x, width, FRAME), height - rescale(y, height, FRAME)


def from_screen(point: Point, screen: Screen = THOUSANDTHS) -> Point:
    """A point of the screen (origin bottom left) -> thousandths (origin top left). With a
    screen no finer than thousandths, `to_screen` gives the point back exactly."""
    (x, y), (width, height) = point, screen
    return rescale(x, FRAME, width), rescale(height - y, FRAME, height)


def area_points(area: Area, screen: Screen = THOUSANDTHS) -> list[Point]:
    """An area (top-left origin) -> its corners in Hikvision's coordinates (bottom-left
    origin, in `screen`), clockwise from the top left."""
    left, top = to_screen(area.x, area.y, screen)
    right, bottom = to_screen(area.x + area.width, area.y + area.height, screen)
    return [(left, top), (right, top), (right, bottom), (left, bottom)]


def points_area(points: Sequence[Point], screen: Screen = THOUSANDTHS) -> Area:
    """The 4 corners, in any order and in Hikvision's coordinates (in `screen`), of a
    rectangle with sides along the picture's -> the area; ValueError if they are not that."""
    if len(points) != 4:
        raise ValueError(f"an area is a rectangle: 4 corners, not {len(points)}")
    width, height = screen
    outside = next((p for p in points if not (0 <= p[0] <= width and 0 <= p[1] <= height)), None)
    if outside is not None:
        raise ValueError(f"{outside} is outside the picture (0-{width}, 0-{height})")
    xs, ys = sorted({x for x, _ in points}), sorted({y for _, y in points})
    if len(xs) != 2 or len(ys) != 2 or set(points) != {(x, y) for x in xs for y in ys}:
        raise ValueError("the corners do not make a rectangle with sides along the picture's")
    left, top = from_screen((xs[0], ys[1]), screen)
    right, bottom = from_screen((xs[1], ys[0]), screen)
    area = Area(x=left, y=top, width=right - left, height=bottom - top)
    validate(area)
    return area


# -- shared pieces -----------------------------------------------------------------------------
def _scalars(doc: XmlIn, cls: type, elements: Mapping[str, str]) -> dict[str, Any]:
    """The flat `bool`/`int` settings of `cls` that `doc` sends (by `elements`' tags)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field, tag in elements.items():
        value = doc.bool(tag) if hints[field] is bool else doc.int(tag)
        if value is not None:
            values[field] = value
    return values


def _rule(cls: type, field: str, rule: str) -> Any:
    """One of the model's own rules for a setting (`min`, `max`, `max_items`...)."""
    return next(f.metadata[rule] for f in dataclasses.fields(cls) if f.name == field)


def _limits(cls: type, field: str) -> dict[str, Any]:
    """A setting's range as capability attributes."""
    return {"@min": _rule(cls, field, "min"), "@max": _rule(cls, field, "max")}


def screen_doc(screen: Screen = THOUSANDTHS) -> dict[str, int]:
    """A `normalizedScreenSize`."""
    return {"normalizedScreenWidth": screen[0], "normalizedScreenHeight": screen[1]}


def check_screen(doc: XmlIn | None, screen: Screen = THOUSANDTHS) -> None:
    """A `normalizedScreenSize` sent must be the document's own."""
    if doc is None:
        return
    size = (doc.int("normalizedScreenWidth"), doc.int("normalizedScreenHeight"))
    doc.finish()
    if size != screen:
        raise bad_parameters(f"<normalizedScreenSize>: coordinates are in {screen[0]}x{screen[1]}")


def points_doc(area: Area, screen: Screen = THOUSANDTHS) -> dict[str, Any]:
    """A `RegionCoordinatesList`'s content."""
    corners = [{"positionX": x, "positionY": y} for x, y in area_points(area, screen)]
    return {"RegionCoordinates": corners}


def parse_area(doc: XmlIn, where: str, screen: Screen = THOUSANDTHS) -> Area:
    """A `RegionCoordinatesList` -> the rectangle it draws."""
    points: list[Point] = []
    for corner in doc.children("RegionCoordinates", limit=16):
        x, y = corner.int("positionX"), corner.int("positionY")
        corner.finish()
        if x is None or y is None:
            raise bad_xml_content(f"{where}: <RegionCoordinates> needs positionX and positionY")
        points.append((x, y))
    doc.finish()
    try:
        return points_area(points, screen)
    except ValueError as exc:
        raise bad_parameters(f"<{where}/RegionCoordinatesList>: {exc}") from None


# -- motion ------------------------------------------------------------------------------------
def _layout_doc(motion: MotionSettings) -> dict[str, Any]:
    return {"sensitivityLevel": motion.sensitivity, "layout": {"gridMap": grid_to_hex(motion.grid)}}


def _region_doc(area: MotionArea) -> dict[str, Any]:
    levels = {tag: getattr(area, field) for field, tag in REGION_LEVELS.items()}
    return {
        "id": area.id,
        "enabled": True,
        **levels,
        "RegionCoordinatesList": points_doc(area.area),
    }


def motion_doc(motion: MotionSettings) -> dict[str, Any]:
    day = {"beginTime": isapi_time(motion.day_start), "endTime": isapi_time(motion.night_start)}
    return {
        "enabled": motion.enabled,
        "regionType": REGION_TYPES[motion.mode],
        "Grid": {"rowGranularity": GRID_ROWS, "columnGranularity": GRID_COLUMNS},
        "MotionDetectionLayout": _layout_doc(motion),
        "normalizedScreenSize": screen_doc(),
        "MotionDetectionRegionList": {
            "MotionDetectionRegion": [_region_doc(a) for a in motion.areas]
        },
        "MotionDetectionSwitch": {
            "type": motion.day_night,
            "Schedule": {"scheduleType": "day", "TimeRange": day},
        },
    }


def _check_grid_size(doc: XmlIn) -> None:
    size = (doc.int("rowGranularity", GRID_ROWS), doc.int("columnGranularity", GRID_COLUMNS))
    doc.finish()
    if size != (GRID_ROWS, GRID_COLUMNS):
        raise bad_parameters(f"<Grid>: the grid is {GRID_ROWS} rows of {GRID_COLUMNS} columns")


def parse_layout(doc: XmlIn) -> dict[str, Any]:
    """`sensitivityLevel` and `layout/gridMap` (or `gridMap` alone, as some clients send it)."""
    changes = _scalars(doc, MotionSettings, {"sensitivity": "sensitivityLevel"})
    grid_map = doc.text("gridMap")
    layout = doc.child("layout")
    if layout is not None:
        nested = layout.text("gridMap")
        layout.finish()
        if grid_map is not None and nested is not None:
            raise bad_xml_content("<gridMap> is sent twice")
        grid_map = nested if grid_map is None else grid_map
    doc.finish()
    if grid_map is not None:
        try:
            changes["grid"] = hex_to_grid(grid_map)
        except ValueError as exc:
            raise bad_parameters(f"<gridMap>: {exc}") from None
    return changes


def _parse_region(doc: XmlIn, current: Sequence[MotionArea]) -> MotionArea | None:
    """One `MotionDetectionRegion` -> its area, or None if it is disabled."""
    region_id = doc.int("id")
    where = f"MotionDetectionRegion {region_id}"
    enabled = doc.bool("enabled", True)
    levels = _scalars(doc, MotionArea, REGION_LEVELS)
    corners = doc.child("RegionCoordinatesList")
    doc.finish()
    if region_id is None:
        raise bad_xml_content("<MotionDetectionRegion> needs an <id>")
    if not enabled:
        return None
    base = next((a for a in current if a.id == region_id), None)
    if corners is not None:
        levels["area"] = parse_area(corners, where)
    elif base is None:
        raise bad_xml_content(f"{where} needs a <RegionCoordinatesList>")
    elements = {field: f"{where}/{tag}" for field, tag in REGION_ELEMENTS.items()}
    return checked(base or MotionArea(), elements, where, id=region_id, **levels)


def _parse_regions(doc: XmlIn, current: Sequence[MotionArea]) -> list[MotionArea]:
    regions = list(doc.children("MotionDetectionRegion"))
    doc.finish()
    limit = _rule(MotionSettings, "areas", "max_items")
    if len(regions) > limit:
        raise bad_parameters(
            f"<MotionDetectionRegionList>: at most {limit} areas, not {len(regions)}"
        )
    areas = [_parse_region(region, current) for region in regions]
    return [area for area in areas if area is not None]


def _parse_switch(doc: XmlIn) -> dict[str, Any]:
    """`MotionDetectionSwitch` -> the day/night settings it sends."""
    changes: dict[str, Any] = {}
    kind = doc.text("type")
    schedule = doc.child("Schedule")
    doc.finish()
    if kind is not None:
        if kind not in DAY_NIGHT:
            raise bad_parameters(f"<MotionDetectionSwitch/type> {kind[:16]!r}: off or schedule")
        changes["day_night"] = kind
    if schedule is not None:
        if schedule.text("scheduleType", "day") != "day":
            raise bad_parameters("<Schedule/scheduleType>: the range given is the day's")
        day = schedule.child("TimeRange")
        schedule.finish()
        if day is not None:
            for field, tag in (("day_start", "beginTime"), ("night_start", "endTime")):
                text = day.text(tag)
                if text is not None:
                    changes[field] = time_of_day(text, f"<TimeRange/{tag}>")
            day.finish()
    return changes


def parse_motion(doc: XmlIn, current: MotionSettings) -> MotionSettings:
    """A `MotionDetection` document applied to `current`; raises IsapiError, changes nothing."""
    changes = _scalars(doc, MotionSettings, {"enabled": "enabled"})
    region_type = doc.text("regionType")
    if region_type is not None:
        if region_type not in MODES:
            raise bad_parameters(f"<regionType> {region_type[:16]!r}: grid or roi")
        changes["mode"] = MODES[region_type]
    grid = doc.child("Grid")
    if grid is not None:
        _check_grid_size(grid)
    layout = doc.child("MotionDetectionLayout")
    if layout is not None:
        changes |= parse_layout(layout)
    check_screen(doc.child("normalizedScreenSize"))
    regions = doc.child("MotionDetectionRegionList")
    if regions is not None:
        changes["areas"] = _parse_regions(regions, current.areas)
    switch = doc.child("MotionDetectionSwitch")
    if switch is not None:
        changes |= _parse_switch(switch)
    doc.ignore(*ECHOED)
    doc.finish()
    return checked(current, MOTION_ELEMENTS, "MotionDetection", **changes)


def parse_grid_layout(doc: XmlIn, current: MotionSettings) -> MotionSettings:
    """`MotionDetectionGridLayout`, its fields at the top or in a `MotionDetectionLayout`."""
    inner = doc.child("MotionDetectionLayout")
    if inner is not None:
        doc.finish()
        doc = inner
    return checked(current, MOTION_ELEMENTS, "MotionDetectionGridLayout", **parse_layout(doc))


def _motion_capabilities(motion: MotionSettings) -> dict[str, Any]:
    doc = motion_doc(motion)
    doc["enabled"] = {"@opt": "true,false", "#text": motion.enabled}
    doc["regionType"] = {"@opt": ",".join(MODES), "#text": doc["regionType"]}
    doc["MotionDetectionLayout"]["sensitivityLevel"] = {
        **_limits(MotionSettings, "sensitivity"),
        "#text": motion.sensitivity,
    }
    region = {tag: _limits(MotionArea, field) for field, tag in REGION_LEVELS.items()}
    limit = _rule(MotionSettings, "areas", "max_items")
    region = {"id": _limits(MotionArea, "id"), **region, "RegionCoordinatesList": {"@size": 4}}
    doc["MotionDetectionRegionList"] = {"@size": limit, "MotionDetectionRegion": region}
    doc["MotionDetectionSwitch"]["type"] = {"@opt": ",".join(DAY_NIGHT), "#text": motion.day_night}
    return doc


# -- tampering, video loss, defocus, scene change ----------------------------------------------
def tamper_doc(tamper: TamperSettings) -> dict[str, Any]:
    region = {
        "id": 1,
        "enabled": True,
        "sensitivityLevel": tamper.sensitivity,
        "RegionCoordinatesList": points_doc(tamper.area),
    }
    return {
        "enabled": tamper.enabled,
        "normalizedScreenSize": screen_doc(),
        "TamperDetectionRegionList": {"TamperDetectionRegion": region},
    }


def _parse_tamper_region(doc: XmlIn) -> dict[str, Any]:
    where = "TamperDetectionRegion"
    if doc.int("id", 1) != 1:
        raise bad_parameters(f"<{where}/id>: there is one tamper area, id 1")
    if doc.bool("enabled", True) is False:
        raise bad_parameters(f"<{where}/enabled>: turn tamper detection off with <enabled>")
    changes = _scalars(doc, TamperSettings, {"sensitivity": "sensitivityLevel"})
    corners = doc.child("RegionCoordinatesList")
    doc.finish()
    if corners is not None:
        changes["area"] = parse_area(corners, where)
    return changes


def parse_tamper(doc: XmlIn, current: TamperSettings) -> TamperSettings:
    changes = _scalars(doc, TamperSettings, {"enabled": "enabled"})
    check_screen(doc.child("normalizedScreenSize"))
    regions = doc.child("TamperDetectionRegionList")
    doc.finish()
    if regions is not None:
        found = list(regions.children("TamperDetectionRegion"))
        regions.finish()
        if len(found) > 1:
            raise bad_parameters(f"<TamperDetectionRegionList>: one area, not {len(found)}")
        for region in found:
            changes |= _parse_tamper_region(region)
    return checked(current, TAMPER_ELEMENTS, "TamperDetection", **changes)


def parse_video_loss(doc: XmlIn, current: VideoLossSettings) -> VideoLossSettings:
    changes = _scalars(doc, VideoLossSettings, VIDEO_LOSS_ELEMENTS)
    doc.finish()
    return checked(current, VIDEO_LOSS_ELEMENTS, "VideoLoss", **changes)


def video_loss_doc(video_loss: VideoLossSettings) -> dict[str, Any]:
    return {"enabled": video_loss.enabled, "timeoutSeconds": video_loss.timeout_s}


def parse_sensitivity(doc: XmlIn, current: SensitivitySettings) -> SensitivitySettings:
    changes = _scalars(doc, SensitivitySettings, SENSITIVITY_ELEMENTS)
    doc.finish()
    return checked(current, SENSITIVITY_ELEMENTS, doc.name, **changes)


def sensitivity_doc(settings: SensitivitySettings) -> dict[str, Any]:
    return {"enabled": settings.enabled, "sensitivityLevel": settings.sensitivity}


# -- resources ---------------------------------------------------------------------------------
def _channel(request: web.Request) -> ChannelDetection:
    raw = request.match_info["ch"]
    events = context(request).store.current.events
    found = events.channel(int(raw)) if raw.isdigit() and len(raw) <= 3 else None
    if found is None:
        raise not_found(f"no video input channel {raw[:8]}")
    return found


def _with_detection(config: Config, detection: ChannelDetection) -> Config:
    events = config.events
    channels = [detection if d.channel == detection.channel else d for d in events.detection]
    return dataclasses.replace(config, events=dataclasses.replace(events, detection=channels))


@dataclass(frozen=True)
class Resource:
    """One detector's settings as a document: which part of a channel's `ChannelDetection` it
    is (`part`), its root element(s) (the first is the one sent), how it is shown and read, and
    whether it shows the channel as its `id` (the Smart documents do; every document may send
    it, as PSIA's do)."""

    roots: tuple[str, ...]
    part: str
    show: Callable[[Any], dict[str, Any]]
    read: Callable[[XmlIn, Any], Any]
    shows_id: bool = False


def _serve(path: str, resource: Resource) -> None:
    async def get(request: web.Request) -> web.Response:
        detection = _channel(request)
        content = resource.show(getattr(detection, resource.part))
        if resource.shows_id:
            content = {"id": detection.channel, **content}
        return xml_response(render(resource.roots[0], content))

    async def put(request: web.Request) -> web.Response:
        detection = _channel(request)
        doc = await read_xml(request, resource.roots)
        if doc.int("id", detection.channel) != detection.channel:
            raise bad_parameters(f"<id> is the channel, {detection.channel}")
        changed = resource.read(doc, getattr(detection, resource.part))
        new = dataclasses.replace(detection, **{resource.part: changed})
        await config_change(request, lambda config: _with_detection(config, new))
        return ok(request)

    routes.get(path)(get)
    routes.put(path)(put)


_serve(
    f"{CHANNEL}/motionDetection", Resource(("MotionDetection",), "motion", motion_doc, parse_motion)
)
_serve(
    f"{CHANNEL}/motionDetection/layout/gridLayout",
    Resource(GRID_LAYOUT_ROOTS, "motion", _layout_doc, parse_grid_layout),
)
_serve(
    f"{CHANNEL}/tamperDetection", Resource(("TamperDetection",), "tamper", tamper_doc, parse_tamper)
)
_serve(
    f"{CHANNEL}/videoLoss",
    Resource(("VideoLoss",), "video_loss", video_loss_doc, parse_video_loss),
)
_serve(
    "/ISAPI/Smart/DefocusDetection/{ch}",
    Resource(("DefocusDetection",), "defocus", sensitivity_doc, parse_sensitivity, shows_id=True),
)
_serve(
    "/ISAPI/Smart/SceneChangeDetection/{ch}",
    Resource(
        ("SceneChangeDetection",), "scene_change", sensitivity_doc, parse_sensitivity, shows_id=True
    ),
)


@routes.get(f"{CHANNEL}/motionDetection/capabilities")
async def get_motion_capabilities(request: web.Request) -> web.Response:
    motion = _channel(request).motion
    return xml_response(render("MotionDetection", _motion_capabilities(motion)))
