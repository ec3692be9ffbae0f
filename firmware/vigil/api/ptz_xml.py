"""The ISAPI PTZ documents and Vigil's PTZ settings: document -> values and back, no I/O.

Shapes are Hikvision's (`PTZData`, `PTZPreset`, `PTZPatrol`, `ParkAction`, `PTZChanelCap`...);
units are the ISAPI ones the controller takes: speeds -100..100, positions in degrees x 10
(`azimuth` 0..3599, `elevation` 0..900 with positive down, `absoluteZoom` the zoom ratio x 10,
10..300). Where Hikvision's documents vary or say nothing, this module chooses:

- `PTZData` speeds (`pan`, `tilt`, `zoom`) left out are 0; `Momentary/duration` is required,
  in milliseconds (1..60000).
- `Relative` is `positionX`/`positionY`/`relativeZoom` read as deltas in the units above
  (degrees x 10, zoom ratio x 10); `positionY` is positive up as in Hikvision's documents, so
  the controller is handed its opposite (elevation is positive down).
- `PTZChannel/controlProtocol` is shown `PELCO-D`/`PELCO-P` (Hikvision's spelling) and read in
  any case; `controlAddress/Address` is 1..255. `id`, `serialNumber` and `videoInputID` are 1,
  the one dome; `enabled` false is refused (the dome channel cannot be switched off).
- `PTZPatrol`: the steps are `PatrolSequenceList/PatrolSequence` with `presetID`, `delay`
  (dwell, seconds) and `seqSpeed` (1..40), as Hikvision's domes show them; the spellings other
  clients use (`PresetID`/`presetId`, `dwellTime`/`DwellTime`, `speed`) are read too, and a
  step with preset 0 (Hikvision's padding of empty slots) is skipped. An `enabled` sent is
  accepted and ignored: a patrol with steps is one that can run.
- `ParkAction`: `enabled`, `Parktime` (seconds, 5..720), `Action/ActionType` preset, patrol or
  pattern and `Action/ActionNum`.
- `PTZLockCfg`: `enabled` and `lockTime`, the seconds the lock lasts (shown: the seconds left).

A value out of range is `badParameters` naming the element, an unknown or malformed element
`badXmlContent`; nothing is changed by a refused document.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from vigil.api.errors import bad_parameters, bad_xml_content
from vigil.api.io import checked, refused
from vigil.api.xml import XmlIn
from vigil.config.ptz import (
    MAX_PATROL_STEPS,
    MAX_PATROLS,
    MAX_PATTERNS,
    PARK_ACTIONS,
    PROTOCOLS,
    ParkAction,
    Patrol,
    PatrolStep,
    Pattern,
    PtzPosition,
    PtzPreset,
    PtzSettings,
)
from vigil.config.schema import ConfigError, from_dict
from vigil.ptz.controller import MAX_LOCK_S, MAX_MOMENTARY_MS, PtzStatus

T = TypeVar("T")


def bounds(cls: type, name: str) -> tuple[int, int]:
    """The range the settings rules give field `name` of `cls` (one place for each limit)."""
    meta = next(f.metadata for f in dataclasses.fields(cls) if f.name == name)
    return int(meta["min"]), int(meta["max"])


CHANNEL_ID = 1
SPEED = (-100, 100)
AZIMUTH = bounds(PtzPosition, "azimuth")
ELEVATION = bounds(PtzPosition, "elevation")
ZOOM = bounds(PtzPosition, "zoom")
DURATION_MS = (1, MAX_MOMENTARY_MS)
LOCK_S = (1, MAX_LOCK_S)
MAX_PRESETS = bounds(PtzPreset, "id")[1]
ADDRESS = bounds(PtzSettings, "address")
PATROL_SPEED = bounds(PatrolStep, "speed")
DWELL_S = bounds(PatrolStep, "dwell_s")
PARK_S = bounds(ParkAction, "idle_s")
NAME_LENGTH = 64  # longer than any name the settings take: they say how long one may be

# Where a refused setting came from, so that the error names what the client sent.
CHANNEL_ELEMENTS = {"protocol": "controlProtocol", "address": "controlAddress/Address"}
PATROL_ELEMENTS = {"name": "patrolName", "steps": "PatrolSequenceList"}
STEP_ELEMENTS = {"preset": "presetID", "dwell_s": "delay", "speed": "seqSpeed"}
PARK_ELEMENTS = {
    "enabled": "enabled",
    "idle_s": "Parktime",
    "action": "Action/ActionType",
    "target": "Action/ActionNum",
}


# -- values ------------------------------------------------------------------------------------
def in_range(value: int, bounds: tuple[int, int], element: str) -> int:
    low, high = bounds
    if not low <= value <= high:
        raise bad_parameters(f"<{element}> {value} is out of range {low}..{high}")
    return value


def _int(doc: XmlIn, tag: str, bounds: tuple[int, int], default: int | None = None) -> int:
    value = doc.int(tag, default)
    if value is None:
        raise bad_xml_content(f"<{tag}> is required in {doc.path}")
    return in_range(value, bounds, tag)


def _first_of(doc: XmlIn, tags: tuple[str, ...]) -> str | None:
    """The one of `tags` (spellings of one element) the document has; two of them are an error."""
    present = [tag for tag in tags if doc.has(tag)]
    if len(present) > 1:
        raise bad_xml_content(f"<{present[0]}> and <{present[1]}> in {doc.path}: send one")
    return present[0] if present else None


def built(cls: type[T], elements: dict[str, str], whole: str, **values: Any) -> T:
    """`cls(**values)` with the settings rules checked; a refused value is a badParameters."""
    try:
        return from_dict(cls, values)
    except ConfigError as exc:
        raise refused(exc, elements, whole) from None


def _check_id(doc: XmlIn, expected: int) -> None:
    if doc.int("id", expected) != expected:
        raise bad_parameters(f"<id> does not match the URL ({expected})")


# -- moves -------------------------------------------------------------------------------------
def parse_speeds(doc: XmlIn) -> tuple[int, int, int]:
    """`pan`, `tilt`, `zoom` of a `PTZData` (-100..100, left out = 0)."""
    return (_int(doc, "pan", SPEED, 0), _int(doc, "tilt", SPEED, 0), _int(doc, "zoom", SPEED, 0))


def parse_continuous(doc: XmlIn) -> tuple[int, int, int]:
    speeds = parse_speeds(doc)
    doc.finish()
    return speeds


def parse_momentary(doc: XmlIn) -> tuple[int, int, int, int]:
    """`PTZData` with `Momentary/duration` (ms) -> pan, tilt, zoom, duration_ms."""
    speeds = parse_speeds(doc)
    momentary = doc.child("Momentary")
    doc.finish()
    if momentary is None:
        raise bad_xml_content("<Momentary><duration> (milliseconds) is required")
    duration = _int(momentary, "duration", DURATION_MS)
    momentary.finish()
    return (*speeds, duration)


def position_doc(position: PtzPosition) -> dict[str, int]:
    return {
        "elevation": position.elevation,
        "azimuth": position.azimuth,
        "absoluteZoom": position.zoom,
    }


def parse_position(doc: XmlIn) -> PtzPosition:
    """`AbsoluteHigh` -> a position; every element is required."""
    position = PtzPosition(
        azimuth=_int(doc, "azimuth", AZIMUTH),
        elevation=_int(doc, "elevation", ELEVATION),
        zoom=_int(doc, "absoluteZoom", ZOOM),
    )
    doc.finish()
    return position


def parse_absolute(doc: XmlIn) -> PtzPosition:
    """`PTZData/AbsoluteHigh` -> where to go."""
    high = doc.child("AbsoluteHigh")
    doc.finish()
    if high is None:
        raise bad_xml_content("<AbsoluteHigh> (elevation, azimuth, absoluteZoom) is required")
    return parse_position(high)


def parse_relative(doc: XmlIn) -> tuple[int, int, int]:
    """`PTZData/Relative` -> the controller's deltas pan, tilt (positive down), zoom."""
    relative = doc.child("Relative")
    doc.finish()
    if relative is None:
        raise bad_xml_content("<Relative> (positionX, positionY, relativeZoom) is required")
    pan = _int(relative, "positionX", (-AZIMUTH[1], AZIMUTH[1]), 0)
    up = _int(relative, "positionY", (-ELEVATION[1], ELEVATION[1]), 0)
    zoom = _int(relative, "relativeZoom", (ZOOM[0] - ZOOM[1], ZOOM[1] - ZOOM[0]), 0)
    relative.finish()
    return pan, -up, zoom


# -- the channel -------------------------------------------------------------------------------
def protocol_name(protocol: str) -> str:
    return protocol.upper()


def channel_doc(settings: PtzSettings) -> dict[str, Any]:
    return {
        "id": CHANNEL_ID,
        "enabled": True,
        "serialNumber": CHANNEL_ID,
        "videoInputID": CHANNEL_ID,
        "controlProtocol": protocol_name(settings.protocol),
        "controlAddress": {"enabled": True, "Address": settings.address},
    }


def parse_channel(doc: XmlIn, current: PtzSettings) -> dict[str, Any]:
    """A `PTZChannel` -> the changes to `current` (protocol, address), checked."""
    _check_id(doc, CHANNEL_ID)
    for tag in ("serialNumber", "videoInputID"):
        if doc.int(tag, CHANNEL_ID) != CHANNEL_ID:
            raise bad_parameters(f"<{tag}> is {CHANNEL_ID}: the dome is the one video input")
    if doc.bool("enabled", True) is False:
        raise bad_parameters("<enabled> false: the dome's channel cannot be switched off")
    changes: dict[str, Any] = {}
    protocol = doc.text("controlProtocol", max_len=16)
    if protocol is not None:
        if protocol.lower() not in PROTOCOLS:
            known = ", ".join(protocol_name(p) for p in PROTOCOLS)
            raise bad_parameters(f"<controlProtocol> {protocol!r} is one of {known}")
        changes["protocol"] = protocol.lower()
    address = doc.child("controlAddress")
    doc.finish()
    if address is not None:
        address.bool("enabled")  # always on: a Pelco dome always has an address
        value = address.int("Address")
        address.finish()
        if value is not None:
            changes["address"] = value
    checked(current, CHANNEL_ELEMENTS, "PTZChannel", **changes)
    return changes


# -- presets -----------------------------------------------------------------------------------
def preset_doc(preset: PtzPreset) -> dict[str, Any]:
    return {
        "enabled": True,
        "id": preset.id,
        "presetName": preset.name,
        "AbsoluteHigh": position_doc(preset.position),
    }


def parse_preset(doc: XmlIn, preset_id: int, current_name: str) -> str:
    """A `PTZPreset` to set at the current position -> its name. An `AbsoluteHigh` sent back
    is ignored: a preset is always where the dome is when it is set."""
    _check_id(doc, preset_id)
    name = doc.text("presetName", current_name, max_len=NAME_LENGTH)
    if doc.bool("enabled", True) is False:
        raise bad_parameters("<enabled> false: clear a preset with DELETE")
    doc.ignore("AbsoluteHigh")
    doc.finish()
    preset = built(PtzPreset, {"name": "presetName"}, "PTZPreset", id=preset_id, name=name or "")
    return preset.name


def parse_preset_names(doc: XmlIn, presets: list[PtzPreset]) -> list[PtzPreset]:
    """A `PTZPresetList` -> the presets renamed; every preset in it must be set already."""
    by_id = {p.id: p for p in presets}
    renamed = dict(by_id)
    for item in doc.children("PTZPreset", MAX_PRESETS):
        preset_id = _int(item, "id", (1, MAX_PRESETS))
        if preset_id not in by_id:
            raise bad_parameters(f"<PTZPreset> {preset_id} is not set: PUT presets/{preset_id}")
        name = parse_preset(item, preset_id, by_id[preset_id].name)
        renamed[preset_id] = checked(
            by_id[preset_id], {"name": "presetName"}, "PTZPreset", name=name
        )
    doc.finish()
    return [renamed[p.id] for p in presets]


# -- patrols -----------------------------------------------------------------------------------
def patrol_doc(patrol: Patrol) -> dict[str, Any]:
    steps = [{"presetID": s.preset, "delay": s.dwell_s, "seqSpeed": s.speed} for s in patrol.steps]
    return {
        "id": patrol.id,
        "enabled": bool(patrol.steps),
        "patrolName": patrol.name,
        "PatrolSequenceList": {"PatrolSequence": steps},
    }


def empty_patrol_doc(patrol_id: int) -> dict[str, Any]:
    """A patrol not defined, as Hikvision lists it: no name, no steps."""
    return {"id": patrol_id, "enabled": False, "patrolName": "", "PatrolSequenceList": {}}


def _value(doc: XmlIn, tags: tuple[str, ...], bounds: tuple[int, int]) -> int:
    tag = _first_of(doc, tags)
    if tag is None:
        raise bad_xml_content(f"<{tags[0]}> is required in {doc.path}")
    return _int(doc, tag, bounds)


def _parse_step(doc: XmlIn) -> PatrolStep | None:
    preset = _value(doc, ("presetID", "PresetID", "presetId"), (0, MAX_PRESETS))
    if preset == 0:  # an empty slot
        doc.ignore("id", "delay", "dwellTime", "DwellTime", "seqSpeed", "speed")
        doc.finish()
        return None
    dwell = _value(doc, ("delay", "dwellTime", "DwellTime"), DWELL_S)
    speed = _value(doc, ("seqSpeed", "speed"), PATROL_SPEED)
    doc.ignore("id")
    doc.finish()
    return built(
        PatrolStep, STEP_ELEMENTS, "PatrolSequence", preset=preset, dwell_s=dwell, speed=speed
    )


def parse_patrol(doc: XmlIn, patrol_id: int, current: Patrol | None) -> Patrol:
    """A `PTZPatrol` -> the patrol with id `patrol_id`: what it leaves out stays as it was."""
    _check_id(doc, patrol_id)
    base = current or built(Patrol, PATROL_ELEMENTS, "PTZPatrol", id=patrol_id)
    name = doc.text("patrolName", base.name, max_len=NAME_LENGTH)
    doc.bool("enabled")  # accepted, see the module's docstring
    sequence = doc.child("PatrolSequenceList")
    steps = base.steps
    if sequence is not None:
        found = [_parse_step(s) for s in sequence.children("PatrolSequence", MAX_PRESETS)]
        sequence.finish()
        steps = [s for s in found if s is not None]
        if len(steps) > MAX_PATROL_STEPS:
            raise bad_parameters(f"<PatrolSequenceList> has {len(steps)} presets, at most 32")
    doc.finish()
    return checked(base, PATROL_ELEMENTS, "PTZPatrol", name=name, steps=steps)


def parse_patrol_list(doc: XmlIn, current: list[Patrol]) -> list[Patrol]:
    """A `PTZPatrolList` -> the patrols it holds, each applied to the one with its id."""
    by_id = {p.id: p for p in current}
    patrols: dict[int, Patrol] = {}
    for item in doc.children("PTZPatrol", MAX_PATROLS):
        patrol_id = item.int("id")
        if patrol_id is None:
            raise bad_xml_content("<PTZPatrol> needs its <id>")
        in_range(patrol_id, (1, MAX_PATROLS), "id")
        if patrol_id in patrols:
            raise bad_parameters(f"<PTZPatrol> {patrol_id} appears twice")
        patrols[patrol_id] = parse_patrol(item, patrol_id, by_id.get(patrol_id))
    doc.finish()
    merged = by_id | patrols
    return [merged[i] for i in sorted(merged) if defined(merged[i])]


def defined(patrol: Patrol) -> bool:
    """Whether a patrol is kept: one with neither a name nor steps is an empty slot."""
    return bool(patrol.name or patrol.steps)


# -- patterns, park action, lock, status -------------------------------------------------------
def pattern_doc(pattern_id: int, pattern: Pattern | None) -> dict[str, Any]:
    """`PTZPattern`: `enabled` says whether it is recorded; Vigil adds its length in ms."""
    steps = pattern.steps if pattern is not None else []
    return {
        "id": pattern_id,
        "enabled": bool(steps),
        "duration": sum(s.duration_ms for s in steps),
    }


def park_doc(park: ParkAction) -> dict[str, Any]:
    return {
        "enabled": park.enabled,
        "Parktime": park.idle_s,
        "Action": {"ActionType": park.action, "ActionNum": park.target},
    }


def parse_park(doc: XmlIn, current: ParkAction) -> ParkAction:
    """A `ParkAction` applied to `current`: what it leaves out stays as it was."""
    changes: dict[str, Any] = {"enabled": doc.bool("enabled", current.enabled)}
    idle = doc.int("Parktime")
    if idle is not None:
        changes["idle_s"] = in_range(idle, PARK_S, "Parktime")
    action = doc.child("Action")
    doc.finish()
    if action is not None:
        kind = action.text("ActionType", max_len=16)
        target = action.int("ActionNum")
        action.finish()
        if kind is not None:
            if kind not in PARK_ACTIONS:
                raise bad_parameters(f"<ActionType> {kind!r} is one of {', '.join(PARK_ACTIONS)}")
            changes["action"] = kind
        if target is not None:
            changes["target"] = target
    return checked(current, PARK_ELEMENTS, "ParkAction", **changes)


def lock_doc(locked_s: int) -> dict[str, Any]:
    return {"enabled": locked_s > 0, "lockTime": locked_s}


def parse_lock(doc: XmlIn) -> int:
    """A `PTZLockCfg` -> the seconds to lock for (0: unlock)."""
    enabled = doc.bool("enabled")
    seconds = doc.int("lockTime")
    doc.finish()
    if enabled is None:
        raise bad_xml_content("<enabled> is required in PTZLockCfg")
    if not enabled:
        return 0
    if seconds is None:
        raise bad_xml_content("<lockTime> (seconds) is required to lock")
    return in_range(seconds, LOCK_S, "lockTime")


def status_doc(status: PtzStatus) -> dict[str, Any]:
    """`PTZStatus`: Hikvision's `AbsoluteHigh` and Vigil's `positionSource` (`dome`: queried,
    `estimated`: the dome did not answer), `activity` and `lockTime` (seconds left)."""
    return {
        "AbsoluteHigh": position_doc(status.position),
        "positionSource": status.source,
        "activity": status.activity,
        "lockTime": status.locked_s,
    }


def _range(low: int, high: int) -> dict[str, int]:
    return {"min": low, "max": high}


def _space(x: tuple[int, int], y: tuple[int, int]) -> dict[str, Any]:
    return {"XRange": _range(*x), "YRange": _range(*y)}


def capabilities_doc(protocol: str) -> dict[str, Any]:
    """`PTZChanelCap` (Hikvision's spelling): what the resources take."""
    speeds = _space(SPEED, SPEED)
    names = ",".join(protocol_name(p) for p in PROTOCOLS)
    return {
        "AbsolutePanTiltPositionSpace": _space(AZIMUTH, ELEVATION),
        "AbsoluteZoomPositionSpace": {"ZRange": _range(*ZOOM)},
        "RelativePanTiltSpace": _space((-AZIMUTH[1], AZIMUTH[1]), (-ELEVATION[1], ELEVATION[1])),
        "RelativeZoomSpace": {"ZRange": _range(ZOOM[0] - ZOOM[1], ZOOM[1] - ZOOM[0])},
        "ContinuousPanTiltSpace": speeds,
        "ContinuousZoomSpace": {"ZRange": _range(*SPEED)},
        "MomentaryPanTiltSpace": speeds,
        "MomentaryZoomSpace": {"ZRange": _range(*SPEED)},
        "MomentaryDuration": _range(*DURATION_MS),
        "isSupportPosition3D": False,
        "maxPresetNum": MAX_PRESETS,
        "maxPatrolNum": MAX_PATROLS,
        "maxPatrolSequenceNum": MAX_PATROL_STEPS,
        "PatrolDwellTime": _range(*DWELL_S),
        "PatrolSpeed": _range(*PATROL_SPEED),
        "maxPatternNum": MAX_PATTERNS,
        "isSupportHomePosition": True,
        "ParkAction": {
            "Parktime": _range(*PARK_S),
            "ActionType": {"@opt": ",".join(PARK_ACTIONS)},
        },
        "isSupportPtzLock": True,
        "lockTime": _range(*LOCK_S),
        "controlProtocol": {"@opt": names, "#text": protocol_name(protocol)},
        "controlAddress": _range(*ADDRESS),
    }
