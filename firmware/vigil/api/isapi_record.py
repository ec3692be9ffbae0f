"""ISAPI ContentMgmt record: tracks and their schedules, manual recording, track status.

Tracks (`GET .../record/tracks`, `GET|PUT .../record/tracks/{id}`, `.../{id}/capabilities`) are
Hikvision's `TrackList`/`Track`, mapped onto `RecordTrack` and two device-wide storage settings:

- `Channel` is the stream the track records (101 main, 102 sub, 103 third), as Hikvision shows
  it; a PUT may also send the channel's number (1), as some firmwares show it: no change.
- `Enable` and `CustomExtension/enableSchedule` both map to `enabled` (the schedule is in
  force); a PUT that sends both enables the schedule only if both are true.
- `TrackSchedule`: one `ScheduleBlock` of `ScheduleAction`s, each one period of one day,
  `TimeOfDay` on the minute (`hh:mm:00`, `24:00:00` ends a day). A period that would cross
  midnight is refused (send two); an end of `00:00:00` on the next day is read as `24:00:00`.
  An action with `Actions/Record` false records nothing and is dropped. At most 8 periods a
  day, none overlapping. `Log`, `SaveImg`, `ScheduleDSTEnable`, `Description` are ignored.
- `ActionRecordingMode`: continuous `CMR`, motion `MOTION`, alarm `ALARM`, motion|alarm `EDR`
  (`ALARMORMOTION` accepted), motion&alarm `ALARMANDMOTION`, any event `AllEvent`; read
  without regard to case. `DefaultRecordingMode` is the first period's mode (`CMR` without
  periods); a PUT's value is checked and otherwise ignored: the periods say what records.
- `LoopEnable` is `storage.overwrite` and `Duration` (`P<n>DT0H`) with `durationEnabled` is
  `storage.expiry_days`: both hold for every track (Vigil keeps them device-wide, as
  `ContentMgmt/Storage/policy` shows), so a PUT of one track changes them for all.
- `CustomExtension`: `PreRecordTimeSeconds` (0-30), `PostRecordTimeSeconds` (5-600), and the
  Vigil element `segmentSeconds` (10-3600, the length of a recording file). `SaveAudio` is
  always false (no audio is recorded); it, `RedundancyRecord` and `HolidaySchedule` are
  accepted and ignored, as are `Description`, `TrackGUID`, `SrcDescriptor`, `Size` and
  `StreamHint` (derived from the stream and the device).

A PUT is checked whole before anything is saved: an error is a 400 (`badXmlContent` for the
document's shape, `badParameters` for a value, naming the element) and changes nothing. A PUT
to a track that does not exist creates it if its id is an existing stream's (102 records the
sub stream); other unknown ids are 404.

Manual recording: `PUT|POST .../record/control/manual/start|stop/tracks/{id}` (Hikvision's
documentation says POST, many clients PUT; permission `record`). Starting needs a card that
takes recordings (`hddNotExist` otherwise); stopping always succeeds. Manual recording lasts
until stopped or until the daemon restarts. `GET .../record/tracks/{id}/status` (Vigil's;
the names are those clients probe Hikvision devices for) is `TrackStatus{id, Channel,
recordingStatus recording|stopped, recordType (a search result word), manualRecord}`.

Footage search and the calendar of a track's footage are in `isapi_search`.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vigil.api.auth import requires
from vigil.api.context import context
from vigil.api.errors import (
    bad_parameters,
    bad_xml_content,
    invalid_operation,
    not_found,
)
from vigil.api.io import (
    by_url_id,
    config_change,
    ok,
    read_body,
    read_xml,
    refused,
    xml_response,
)
from vigil.api.weekly_xml import checked_week, in_week_order, isapi_time, period, time_of_day
from vigil.api.xml import XmlIn, render
from vigil.config.model import Config, RecordPeriod, RecordTrack, StorageSettings
from vigil.config.schema import ConfigError, checked_replace
from vigil.config.weekly import MAX_PERIODS_PER_DAY, WEEKDAYS
from vigil.record.footage import RTSP_DEFAULT_PORT

routes = web.RouteTableDef()

MODE_NAMES = {
    "continuous": "CMR",
    "motion": "MOTION",
    "alarm": "ALARM",
    "motion|alarm": "EDR",
    "motion&alarm": "ALARMANDMOTION",
    "event": "AllEvent",
}
MODE_BY_NAME = {name.lower(): mode for mode, name in MODE_NAMES.items()} | {
    "alarmormotion": "motion|alarm"
}
DAY_NAMES = {day: day.capitalize() for day in WEEKDAYS}
MAX_ACTIONS = len(WEEKDAYS) * MAX_PERIODS_PER_DAY
SCHEDULE_BLOCK_TYPE = "www.std-cgi.com/racm/schedule/ver10"
EXTENSION_NAME = "www.hikvision.com/RaCM/trackCustomExt/ver10"
# Elements of a Track that describe it rather than configure it: echoed back, ignored.
DESCRIPTIVE = ("Description", "TrackGUID", "SrcDescriptor", "Size", "StreamHint")
EXTENSION_FIELDS = ("pre_record_s", "post_record_s", "segment_seconds")
IGNORED_EXTENSION = ("CustomExtensionName", "SaveAudio", "RedundancyRecord", "HolidaySchedule")
# Which element a refused setting came from, so that the error names what the client sent.
ELEMENTS = {
    "enabled": "Enable",
    "stream": "Channel",
    "schedule": "TrackSchedule",
    "pre_record_s": "PreRecordTimeSeconds",
    "post_record_s": "PostRecordTimeSeconds",
    "segment_seconds": "segmentSeconds",
    "overwrite": "LoopEnable",
    "expiry_days": "Duration",
}
_DURATION = re.compile(r"P(\d{1,4})D(?:T(?:0+H)?(?:0+M)?(?:0+S)?)?", re.IGNORECASE)
MANUAL_BODY_LIMIT = 4096  # clients send no body; whatever comes is read (bounded) and ignored

# Record types as search results and track status name them (`timing` is Hikvision's word
# for continuous).
RESULT_WORDS = {
    "continuous": "timing",
    "motion": "motion",
    "alarm": "alarm",
    "manual": "manual",
    "event": "event",
}


@dataclass(frozen=True)
class TrackChange:
    """What a PUT of a track asks for: the track and the device-wide settings it carries."""

    track: RecordTrack
    overwrite: bool
    expiry_days: int


def guid(request: web.Request, kind: str, track_id: int) -> str:
    """Stable per device and track, as clients key tracks by their GUIDs."""
    device = uuid.UUID(context(request).identity.uuid)
    return "{" + str(uuid.uuid5(device, f"{kind}-{track_id}")).upper() + "}"


# -- rendering ---------------------------------------------------------------------------------
def _action_doc(number: int, period: RecordPeriod) -> dict[str, Any]:
    day = DAY_NAMES[period.day]
    return {
        "id": number,
        "ScheduleActionStartTime": {"DayOfWeek": day, "TimeOfDay": isapi_time(period.start)},
        "ScheduleActionEndTime": {"DayOfWeek": day, "TimeOfDay": isapi_time(period.end)},
        "ScheduleDSTEnable": False,
        "Description": "nothing",
        "Actions": {
            "Record": True,
            "Log": False,
            "SaveImg": False,
            "ActionRecordingMode": MODE_NAMES[period.mode],
        },
    }


def _rtsp_authority(request: web.Request, port: int) -> str:
    host = request.url.host or "localhost"
    host = f"[{host}]" if ":" in host else host
    return host if port == RTSP_DEFAULT_PORT else f"{host}:{port}"


def _source_doc(request: web.Request, track: RecordTrack, config: Config) -> dict[str, Any]:
    authority = _rtsp_authority(request, config.ports.rtsp)
    return {
        "SrcGUID": guid(request, "source", track.stream),
        "SrcChannel": track.stream // 100,
        "SrcDriver": "RTSP",
        "SrcType": "video",
        "SrcUrl": f"rtsp://{authority}/Streaming/channels/{track.stream}",
        "SrcUrlMethods": "DESCRIBE",
    }


def _description(track: RecordTrack, config: Config) -> str:
    stream = config.stream(track.stream)
    assert stream is not None  # Config.check: a recorded stream exists
    return (
        f"trackType=standard,contentType=video,codecType={stream.codec},"
        f"resolution={stream.width}x{stream.height},framerate={stream.fps} fps"
    )


def _track_doc(request: web.Request, track: RecordTrack, config: Config) -> dict[str, Any]:
    periods = in_week_order(track.schedule)
    storage = config.storage
    return {
        "id": track.id,
        "Channel": track.stream,
        "Enable": track.enabled,
        "Description": _description(track, config),
        "TrackGUID": guid(request, "track", track.id),
        "DefaultRecordingMode": MODE_NAMES[periods[0].mode if periods else "continuous"],
        "LoopEnable": storage.overwrite,
        "SrcDescriptor": _source_doc(request, track, config),
        "TrackSchedule": {
            "ScheduleBlockList": {
                "ScheduleBlock": {
                    "ScheduleBlockGUID": guid(request, "schedule", track.id),
                    "ScheduleBlockType": SCHEDULE_BLOCK_TYPE,
                    "ScheduleAction": [_action_doc(i, p) for i, p in enumerate(periods, 1)],
                }
            }
        },
        "CustomExtensionList": {
            "CustomExtension": {
                "CustomExtensionName": EXTENSION_NAME,
                "enableSchedule": track.enabled,
                "SaveAudio": False,
                "PreRecordTimeSeconds": track.pre_record_s,
                "PostRecordTimeSeconds": track.post_record_s,
                "segmentSeconds": track.segment_seconds,
            }
        },
        "Duration": f"P{storage.expiry_days}DT0H",
        "durationEnabled": storage.expiry_days > 0,
    }


# -- parsing -----------------------------------------------------------------------------------
def record_mode(name: str, where: str) -> str:
    """A Hikvision recording mode name (sent in `where`) -> the RECORD_MODES value."""
    mode = MODE_BY_NAME.get(name.strip().lower())
    if mode is None:
        known = ", ".join(MODE_NAMES.values())
        raise bad_parameters(f"{where} {name[:32]!r} is not a recording mode ({known})")
    return mode


def _day_time(doc: XmlIn, where: str) -> tuple[str, str]:
    """`<DayOfWeek>Monday</DayOfWeek><TimeOfDay>07:30:00</TimeOfDay>` -> ("monday", "07:30")."""
    day_name = doc.text("DayOfWeek", "") or ""
    text = doc.text("TimeOfDay", "") or ""
    doc.finish()
    day = day_name.lower()
    if day not in WEEKDAYS:
        raise bad_parameters(f"{where}/DayOfWeek {day_name[:16]!r} is not a day of the week")
    return day, time_of_day(text, f"{where}/TimeOfDay")


def _parse_actions(doc: XmlIn, where: str) -> tuple[bool, str]:
    """`Actions` -> (whether the period records, its mode)."""
    record = doc.bool("Record", True)
    mode_name = doc.text("ActionRecordingMode")
    doc.ignore("Log", "SaveImg")
    doc.finish()
    if mode_name is None:
        raise bad_xml_content(f"{where}/Actions needs <ActionRecordingMode>")
    return bool(record), record_mode(mode_name, f"{where}/Actions/ActionRecordingMode")


def _next_day(day: str) -> str:
    return WEEKDAYS[(WEEKDAYS.index(day) + 1) % len(WEEKDAYS)]


def _parse_action(doc: XmlIn) -> RecordPeriod | None:
    """One ScheduleAction -> its period, or None if it records nothing."""
    where = f"ScheduleAction {doc.text('id', '?', max_len=8)}"
    start = doc.child("ScheduleActionStartTime")
    end = doc.child("ScheduleActionEndTime")
    actions = doc.child("Actions")
    doc.ignore("ScheduleDSTEnable", "Description")
    doc.finish()
    if start is None or end is None or actions is None:
        raise bad_xml_content(f"{where} needs a start time, an end time and <Actions>")
    day, start_time = _day_time(start, f"{where}/ScheduleActionStartTime")
    end_day, end_time = _day_time(end, f"{where}/ScheduleActionEndTime")
    record, mode = _parse_actions(actions, where)
    if end_day != day:
        if (end_day, end_time) != (_next_day(day), "00:00"):
            raise bad_parameters(f"{where}: a period lies within one day; split it at midnight")
        end_time = "24:00"
    if not record:
        return None
    return period(RecordPeriod, where, day=day, start=start_time, end=end_time, mode=mode)


def _parse_schedule(doc: XmlIn) -> list[RecordPeriod]:
    blocks = doc.child("ScheduleBlockList")
    doc.finish()
    if blocks is None:
        raise bad_xml_content("<TrackSchedule> needs <ScheduleBlockList>")
    periods: list[RecordPeriod] = []
    for block in blocks.children("ScheduleBlock", limit=1):
        block.ignore("ScheduleBlockGUID", "ScheduleBlockType")
        for action in block.children("ScheduleAction", limit=MAX_ACTIONS):
            recorded = _parse_action(action)
            if recorded is not None:
                periods.append(recorded)
        block.finish()
    blocks.finish()
    return checked_week(periods, "<TrackSchedule>")


def _parse_extension(doc: XmlIn, changes: dict[str, Any]) -> bool | None:
    """The CustomExtension's settings into `changes`; its `enableSchedule`, if sent."""
    enable_schedule = doc.bool("enableSchedule")
    for field in EXTENSION_FIELDS:
        value = doc.int(ELEMENTS[field])
        if value is not None:
            changes[field] = value
    doc.ignore(*IGNORED_EXTENSION)
    doc.finish()
    return enable_schedule


def _parse_expiry(doc: XmlIn, current: int) -> int:
    """`Duration` (`P30DT0H`) and `durationEnabled` -> expiry days (0: never)."""
    enabled = doc.bool("durationEnabled")
    text = doc.text("Duration", max_len=32)
    days = current
    if text is not None:
        match = _DURATION.fullmatch(text)
        if match is None:
            raise bad_parameters(f"<Duration> {text!r} is not a number of days like P30DT0H")
        days = int(match[1])
    if enabled is False:
        return 0
    if enabled and days == 0:
        raise bad_parameters("<Duration>: an enabled expiry is 1 day or more")
    return days


def _parse_stream(doc: XmlIn, current: RecordTrack, config: Config) -> int:
    channel = doc.int("Channel")
    if channel is None or channel == current.id // 100:
        return current.stream
    if config.stream(channel) is None or channel // 100 != current.id // 100:
        channel_no = current.id // 100
        raise bad_parameters(f"<Channel> {channel}: not a stream of channel {channel_no}")
    return channel


def parse_track(doc: XmlIn, current: RecordTrack, config: Config) -> TrackChange:
    """A `Track` document applied to `current`; raises IsapiError, changes nothing."""
    if doc.int("id", current.id) != current.id:
        raise bad_parameters("<id> does not match the URL")
    changes: dict[str, Any] = {"stream": _parse_stream(doc, current, config)}
    enables = [doc.bool("Enable")]
    default_mode = doc.text("DefaultRecordingMode")
    if default_mode is not None:
        record_mode(default_mode, "<DefaultRecordingMode>")
    overwrite = doc.bool("LoopEnable", config.storage.overwrite)
    expiry_days = _parse_expiry(doc, config.storage.expiry_days)
    schedule = doc.child("TrackSchedule")
    if schedule is not None:
        changes["schedule"] = _parse_schedule(schedule)
    extensions = doc.child("CustomExtensionList")
    if extensions is not None:
        for extension in extensions.children("CustomExtension", limit=1):
            enables.append(_parse_extension(extension, changes))
        extensions.finish()
    doc.ignore(*DESCRIPTIVE)
    doc.finish()
    sent = [e for e in enables if e is not None]
    changes["enabled"] = all(sent) if sent else current.enabled
    return _checked(current, changes, config.storage, overwrite, expiry_days)


def _checked(
    current: RecordTrack,
    changes: dict[str, Any],
    storage: StorageSettings,
    overwrite: bool | None,
    expiry_days: int,
) -> TrackChange:
    try:
        track = checked_replace(current, **changes)
        checked_replace(storage, overwrite=overwrite, expiry_days=expiry_days)
    except ConfigError as exc:
        raise refused(exc, ELEMENTS, "Track") from None
    return TrackChange(track, bool(overwrite), expiry_days)


def _with_track(config: Config, change: TrackChange) -> Config:
    others = [t for t in config.record.tracks if t.id != change.track.id]
    tracks = sorted([*others, change.track], key=lambda t: t.id)
    return dataclasses.replace(
        config,
        record=dataclasses.replace(config.record, tracks=tracks),
        storage=dataclasses.replace(
            config.storage, overwrite=change.overwrite, expiry_days=change.expiry_days
        ),
    )


def _track_for_put(request: web.Request, config: Config) -> RecordTrack:
    """The track of the URL, or a new one with defaults if the URL names an existing stream."""
    raw = request.match_info["id"]
    track_id = int(raw) if raw.isdigit() and len(raw) <= 4 else None
    track = config.record.track(track_id) if track_id is not None else None
    if track is not None:
        return track
    if track_id is None or config.stream(track_id) is None:
        raise not_found(f"no record track {raw[:8]}; new tracks take a stream's id")
    return RecordTrack(id=track_id, stream=track_id)


# -- tracks ------------------------------------------------------------------------------------
@routes.get("/ISAPI/ContentMgmt/record/tracks")
async def list_tracks(request: web.Request) -> web.Response:
    config = context(request).store.current
    tracks = [_track_doc(request, t, config) for t in config.record.tracks]
    return xml_response(render("TrackList", {"Track": tracks}))


@routes.get("/ISAPI/ContentMgmt/record/tracks/{id}")
async def get_track(request: web.Request) -> web.Response:
    config = context(request).store.current
    track = by_url_id(request, config.record.tracks, "record track")
    return xml_response(render("Track", _track_doc(request, track, config)))


@routes.put("/ISAPI/ContentMgmt/record/tracks/{id}")
async def put_track(request: web.Request) -> web.Response:
    config = context(request).store.current
    current = _track_for_put(request, config)
    change = parse_track(await read_xml(request, "Track"), current, config)
    await config_change(request, lambda c: _with_track(c, change))
    return ok(request)


@routes.get("/ISAPI/ContentMgmt/record/tracks/{id}/capabilities")
async def get_track_capabilities(request: web.Request) -> web.Response:
    config = context(request).store.current
    track = by_url_id(request, config.record.tracks, "record track")
    doc = _track_doc(request, track, config)
    channel_streams = [s.id for s in config.streams if s.id // 100 == track.id // 100]
    modes = ",".join(MODE_NAMES.values())
    block = doc["TrackSchedule"]["ScheduleBlockList"]["ScheduleBlock"]
    block["ScheduleAction"] = {
        "@maxNum": MAX_ACTIONS,
        "@maxPerDay": MAX_PERIODS_PER_DAY,
        "ScheduleActionStartTime": {"DayOfWeek": {"@opt": ",".join(DAY_NAMES.values())}},
        "Actions": {"ActionRecordingMode": {"@opt": modes}},
    }
    extension = doc["CustomExtensionList"]["CustomExtension"]
    for tag, low, high in (
        ("PreRecordTimeSeconds", 0, 30),
        ("PostRecordTimeSeconds", 5, 600),
        ("segmentSeconds", 10, 3600),
    ):
        extension[tag] = {"@min": low, "@max": high, "#text": extension[tag]}
    doc.update(
        {
            "Channel": {"@opt": ",".join(map(str, channel_streams)), "#text": track.stream},
            "DefaultRecordingMode": {"@opt": modes, "#text": doc["DefaultRecordingMode"]},
            "Duration": {"@min": "P0DT0H", "@max": "P365DT0H", "#text": doc["Duration"]},
        }
    )
    return xml_response(render("Track", doc))


# -- manual recording --------------------------------------------------------------------------
async def _manual(request: web.Request, on: bool) -> web.Response:
    ctx = context(request)
    track = by_url_id(request, ctx.store.current.record.tracks, "record track")
    await read_body(request, MANUAL_BODY_LIMIT)
    if on and ctx.recording.root is None:
        raise invalid_operation("there is no card that takes recordings", "hddNotExist")
    try:
        await ctx.recording.manual(track.id, on)
    except LookupError:  # removed meanwhile
        raise not_found(f"no record track {track.id}") from None
    return ok(request)


@routes.put("/ISAPI/ContentMgmt/record/control/manual/start/tracks/{id}")
@routes.post("/ISAPI/ContentMgmt/record/control/manual/start/tracks/{id}")
@requires("record")
async def manual_start(request: web.Request) -> web.Response:
    return await _manual(request, True)


@routes.put("/ISAPI/ContentMgmt/record/control/manual/stop/tracks/{id}")
@routes.post("/ISAPI/ContentMgmt/record/control/manual/stop/tracks/{id}")
@requires("record")
async def manual_stop(request: web.Request) -> web.Response:
    return await _manual(request, False)


@routes.get("/ISAPI/ContentMgmt/record/tracks/{id}/status")
async def get_track_status(request: web.Request) -> web.Response:
    ctx = context(request)
    track = by_url_id(request, ctx.store.current.record.tracks, "record track")
    status = ctx.recording.track_status(track.id)
    if status is None:  # removed meanwhile
        raise not_found(f"no record track {track.id}")
    content = {
        "id": status.track_id,
        "Channel": status.stream_id,
        "recordingStatus": "recording" if status.recording else "stopped",
        "recordType": RESULT_WORDS[status.record_type] if status.record_type else None,
        "manualRecord": status.manual,
    }
    return xml_response(render("TrackStatus", content))
