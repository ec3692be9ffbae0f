"""ISAPI event rules: what each event does (`Event/triggers`) and when it is armed
(`Event/schedules`), both in `events.triggers` (one `EventTrigger` per event and source).

Ids are those Hikvision devices and their web client use:

- motion: trigger `VMD-{ch}`, eventType `VMD`, schedule `motionDetections/VMD_video{ch}`;
- tampering: `tamper-{ch}`, `tamperdetection`, `tamperDetections/Tamperdetection_video{ch}`;
- video loss: `videoloss-{ch}`, `videoloss`, `videolosses/Videoloss_video{ch}`;
- defocus: `defocus-{ch}`, `defocus`, `defocusDetections/defocus_video{ch}` (Vigil's);
- scene change: `scenechangedetection-{ch}`, `scenechangedetection`,
  `sceneChangeDetections/scenechangedetection_video{ch}`;
- alarm input: `IO-{n}`, `IO`, `inputs/{n}` (or `inputs/IO_{n}`);
- exceptions: `diskfull`, `diskerror`, `nicbroken`, `ipconflict`, `illaccess` (id and
  eventType alike), no schedule: they are always armed.

Ids, event types and the collections of schedules are matched without regard to case. Hikvision's
web client shows no schedule for defocus, so its path is Vigil's, made like the others.

`EventTrigger`: `id`, `eventType`, `eventDescription` (shown, ignored when sent), the source
(`videoInputChannelID` or `inputIOPortID`; checked if sent), Vigil's `enabled` (the rule is in
force) and `EventTriggerNotificationList`, which, when sent, replaces the linkage whole (an empty
list turns every action off). Its `EventTriggerNotification`s (`id` is free text, shown as
Hikvision shows it; `notificationRecurrence` is `beginning`, the only one Vigil does):
`center` (alertStream subscribers and the HTTP hosts), `email`, `FTP` (upload the event's
pictures), `record` with `videoInputID` (a channel whose tracks record), `IO` with
`outputIOPortID` (a relay the board has), `ptz` with `ptzAction` (`ptzChannelID` 1,
`actionName` `preset`, `actionNum` 1-255; patrols and patterns are refused). Other methods
(`beep`, `monitorAlarm`...) are refused. `PUT Event/triggers` takes an `EventTriggerList` of
any of the triggers (each named by its `id`); the ones it leaves out keep their settings.

`Schedule` (`EventSchedule` is accepted too): `id`, `eventType`, the source, and `TimeBlockList`
of `TimeBlock`s, each one period: `dayOfWeek` 1-7 (Monday first; day names are accepted) and
`TimeRange` with `beginTime`/`endTime`, `hh:mm:ss` on the minute, `24:00:00` ending the day. At
most 8 periods a day, none overlapping, none backwards; a period never crosses midnight (send
two). A sent `TimeBlockList` replaces the week; an empty one disarms the event. An empty
`HolidayBlockList` is accepted; holiday periods are refused. Copying a day onto others is the
client's job, as with Hikvision devices: it PUTs the whole week. `GET Event/schedules` and
`GET Event/schedules/{collection}` list the schedules (`ScheduleList`).

Every PUT is checked whole before anything is saved: `badXmlContent` for the document's shape,
`badParameters` for a value (naming the element), 404 `notSupport` for an id or path that names
no trigger of this device (an event type it does not have, a channel or input it does not have).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vigil.api.context import context
from vigil.api.errors import bad_parameters, bad_xml_content, not_found
from vigil.api.io import checked, config_change, ok, read_xml, xml_response
from vigil.api.weekly_xml import checked_week, in_week_order, isapi_time, period, time_of_day
from vigil.api.xml import XmlIn, render
from vigil.config.events import EXCEPTION_EVENTS, ArmingPeriod, EventTrigger
from vigil.config.model import Config
from vigil.config.weekly import WEEKDAYS

routes = web.RouteTableDef()

VIDEO_SOURCE, INPUT_SOURCE = "videoInputChannelID", "inputIOPortID"
SOURCE_TAGS = (VIDEO_SOURCE, INPUT_SOURCE)
PTZ_CHANNEL = 1  # the dome on the RS-485 line is the first video channel's
RECURRENCE = "beginning"
TRIGGER_ELEMENTS = {
    "enabled": "enabled",
    "record": "videoInputID",
    "outputs": "outputIOPortID",
    "ptz_preset": "ptzAction/actionNum",
    "schedule": "TimeBlockList",
}
SIMPLE_METHODS = {"center": "center", "email": "email", "FTP": "ftp"}
METHODS = (*SIMPLE_METHODS, "record", "IO", "ptz")
METHOD_BY_NAME = {name.lower(): name for name in METHODS}
SOURCE_NUMBER = r"(\d{1,3})"


@dataclass(frozen=True)
class Kind:
    """How one event type is named in triggers and schedules."""

    event: str  # the bus's event type (`config.events.EVENT_TYPES`)
    event_type: str  # ISAPI's eventType
    trigger_prefix: str = ""  # before the source's number; "": the id is the event type
    source_tag: str | None = None  # the element that names the source
    collection: str | None = None  # under Event/schedules; None: always armed
    schedule_prefix: str = ""  # before the source's number in the schedule's id
    bare_number: bool = False  # the schedule's id may be the number alone

    def trigger_id(self, source: int) -> str:
        return f"{self.trigger_prefix}{source}" if self.trigger_prefix else self.event_type

    def schedule_id(self, source: int) -> str:
        return f"{self.schedule_prefix}{source}"

    def schedule_source(self, text: str) -> int | None:
        """The source a schedule id names (`VMD_video1` -> 1), None if it names none."""
        prefix = re.escape(self.schedule_prefix)
        prefix = f"(?:{prefix})?" if self.bare_number else prefix
        match = re.fullmatch(prefix + SOURCE_NUMBER, text, re.IGNORECASE)
        return int(match[1]) if match else None


def _video(event: str, event_type: str, prefix: str, collection: str, schedule: str) -> Kind:
    return Kind(event, event_type, prefix, VIDEO_SOURCE, collection, schedule)


KINDS = (
    _video("vmd", "VMD", "VMD-", "motionDetections", "VMD_video"),
    _video(
        "tamperdetection", "tamperdetection", "tamper-", "tamperDetections", "Tamperdetection_video"
    ),
    _video("videoloss", "videoloss", "videoloss-", "videolosses", "Videoloss_video"),
    _video("defocus", "defocus", "defocus-", "defocusDetections", "defocus_video"),
    _video(
        "scenechangedetection",
        "scenechangedetection",
        "scenechangedetection-",
        "sceneChangeDetections",
        "scenechangedetection_video",
    ),
    Kind("io", "IO", "IO-", INPUT_SOURCE, "inputs", "IO_", bare_number=True),
    *(Kind(event, event) for event in EXCEPTION_EVENTS),
)
BY_EVENT = {kind.event: kind for kind in KINDS}
BY_COLLECTION = {kind.collection.lower(): kind for kind in KINDS if kind.collection}


def trigger_key(text: str) -> tuple[str, int] | None:
    """A trigger id (`VMD-1`, `IO-2`, `diskfull`) -> (event, source), None if it names none."""
    for kind in KINDS:
        if not kind.trigger_prefix:
            if text.lower() == kind.event_type.lower():
                return kind.event, 0
            continue
        pattern = re.escape(kind.trigger_prefix) + SOURCE_NUMBER
        match = re.fullmatch(pattern, text, re.IGNORECASE)
        if match:
            return kind.event, int(match[1])
    return None


def trigger_id(trigger: EventTrigger) -> str:
    return BY_EVENT[trigger.event].trigger_id(trigger.source)


# -- rendering ---------------------------------------------------------------------------------
def _notification(method: str, item_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "notificationMethod": method,
        "notificationRecurrence": RECURRENCE,
        **extra,
    }


def _notifications(trigger: EventTrigger) -> list[dict[str, Any]]:
    items = [_notification(m, m) for m, f in SIMPLE_METHODS.items() if getattr(trigger, f)]
    items += [_notification("record", f"record-{c}", videoInputID=c) for c in trigger.record]
    items += [_notification("IO", f"IO-{o}", outputIOPortID=o) for o in trigger.outputs]
    if trigger.ptz_preset:
        action = {
            "ptzChannelID": PTZ_CHANNEL,
            "actionName": "preset",
            "actionNum": trigger.ptz_preset,
        }
        items.append(
            _notification("ptz", f"ptz{PTZ_CHANNEL}-preset{trigger.ptz_preset}", ptzAction=action)
        )
    return items


def _source(kind: Kind, trigger: EventTrigger) -> dict[str, Any]:
    return {kind.source_tag: trigger.source} if kind.source_tag else {}


def trigger_doc(trigger: EventTrigger) -> dict[str, Any]:
    kind = BY_EVENT[trigger.event]
    return {
        "id": kind.trigger_id(trigger.source),
        "eventType": kind.event_type,
        "eventDescription": f"{kind.event_type} Event trigger Information",
        **_source(kind, trigger),
        "enabled": trigger.enabled,
        "EventTriggerNotificationList": {"EventTriggerNotification": _notifications(trigger)},
    }


def schedule_doc(trigger: EventTrigger) -> dict[str, Any]:
    kind = BY_EVENT[trigger.event]
    blocks = [
        {
            "dayOfWeek": WEEKDAYS.index(p.day) + 1,
            "TimeRange": {"beginTime": isapi_time(p.start), "endTime": isapi_time(p.end)},
        }
        for p in in_week_order(trigger.schedule)
    ]
    return {
        "id": kind.schedule_id(trigger.source),
        "eventType": kind.event_type,
        **_source(kind, trigger),
        "TimeBlockList": {"TimeBlock": blocks},
    }


# -- parsing -----------------------------------------------------------------------------------
def _check_identity(doc: XmlIn, trigger: EventTrigger, name: str) -> None:
    """`eventType` and the source, where sent, must be the trigger's own."""
    kind = BY_EVENT[trigger.event]
    event_type = doc.text("eventType")
    if event_type is not None and event_type.lower() not in (kind.event_type.lower(), kind.event):
        raise bad_parameters(f"<eventType> {event_type[:32]!r}: {name} is {kind.event_type}")
    for tag in SOURCE_TAGS:
        source = doc.int(tag)
        if source is not None and (tag != kind.source_tag or source != trigger.source):
            raise bad_parameters(f"<{tag}> {source}: not the source of {name}")


def _parse_ptz(doc: XmlIn) -> int:
    """`ptzAction` -> the preset it goes to."""
    channel = doc.int("ptzChannelID", PTZ_CHANNEL)
    action = doc.text("actionName")
    number = doc.int("actionNum")
    doc.finish()
    if channel != PTZ_CHANNEL:
        raise bad_parameters(f"<ptzChannelID> {channel}: the dome is on channel {PTZ_CHANNEL}")
    if action != "preset":
        raise bad_parameters(f"<actionName> {str(action)[:16]!r}: only going to a preset")
    if number is None:
        raise bad_xml_content("<ptzAction> needs an <actionNum>")
    if number < 1:
        raise bad_parameters(f"<ptzAction/actionNum> {number}: presets are numbered from 1")
    return number


def _parse_target(doc: XmlIn, tag: str, known: set[int], what: str) -> int:
    number = doc.int(tag)
    if number is None:
        raise bad_xml_content(f"a {what} notification needs <{tag}>")
    if number not in known:
        raise bad_parameters(f"<{tag}> {number}: no such {what}")
    return number


def _parse_notification(doc: XmlIn, linkage: dict[str, Any], config: Config) -> None:
    """One `EventTriggerNotification` added to `linkage`."""
    doc.text("id")
    name = doc.text("notificationMethod") or ""
    method = METHOD_BY_NAME.get(name.lower())
    if method is None:
        raise bad_parameters(f"<notificationMethod> {name[:32]!r}: one of {', '.join(METHODS)}")
    recurrence = doc.text("notificationRecurrence", RECURRENCE)
    if recurrence != RECURRENCE:
        raise bad_parameters(f"<notificationRecurrence> {str(recurrence)[:32]!r}: {RECURRENCE}")
    if method in SIMPLE_METHODS:
        linkage[SIMPLE_METHODS[method]] = True
    elif method == "record":
        channels = {s.id // 100 for s in config.streams}
        linkage["record"].add(_parse_target(doc, "videoInputID", channels, "video channel"))
    elif method == "IO":
        outputs = {o.id for o in config.events.alarm_io.outputs}
        linkage["outputs"].add(_parse_target(doc, "outputIOPortID", outputs, "alarm output"))
    else:
        action = doc.child("ptzAction")
        if action is None:
            raise bad_xml_content("a ptz notification needs <ptzAction>")
        if linkage["ptz_preset"]:
            raise bad_parameters("<ptzAction>: an event goes to one preset")
        linkage["ptz_preset"] = _parse_ptz(action)
    doc.finish()


def _parse_notifications(doc: XmlIn, config: Config) -> dict[str, Any]:
    """`EventTriggerNotificationList` -> the whole linkage it sets."""
    linkage: dict[str, Any] = {field: False for field in SIMPLE_METHODS.values()}
    linkage |= {"record": set(), "outputs": set(), "ptz_preset": 0}
    for item in doc.children("EventTriggerNotification", limit=64):
        _parse_notification(item, linkage, config)
    doc.finish()
    return linkage | {"record": sorted(linkage["record"]), "outputs": sorted(linkage["outputs"])}


def parse_trigger(doc: XmlIn, current: EventTrigger, config: Config) -> EventTrigger:
    """An `EventTrigger` document applied to `current`; raises IsapiError, changes nothing."""
    name = trigger_id(current)
    sent_id = doc.text("id")
    if sent_id is not None and trigger_key(sent_id) != current.key:
        raise bad_parameters(f"<id> {sent_id[:32]!r} is not {name}")
    _check_identity(doc, current, name)
    changes: dict[str, Any] = {}
    enabled = doc.bool("enabled")
    if enabled is not None:
        changes["enabled"] = enabled
    notifications = doc.child("EventTriggerNotificationList")
    doc.ignore("eventDescription")
    doc.finish()
    if notifications is not None:
        changes |= _parse_notifications(notifications, config)
    return checked(current, TRIGGER_ELEMENTS, "EventTrigger", **changes)


def _day(text: str | None, where: str) -> str:
    """`1`..`7` (Monday first) or a day's name -> the model's day."""
    value = (text or "").strip().lower()
    if value.isdigit() and 1 <= int(value) <= len(WEEKDAYS):
        return WEEKDAYS[int(value) - 1]
    if value in WEEKDAYS:
        return value
    raise bad_parameters(f"<{where}/dayOfWeek> {str(text)[:16]!r}: 1 (Monday) to 7 (Sunday)")


def _parse_block(doc: XmlIn, number: int) -> ArmingPeriod:
    where = f"TimeBlock {number}"
    day_text = doc.text("dayOfWeek")
    span = doc.child("TimeRange")
    doc.finish()
    day = _day(day_text, where)
    if span is None:
        raise bad_xml_content(f"<{where}> needs a <TimeRange>")
    begin, end = span.text("beginTime"), span.text("endTime")
    span.finish()
    if begin is None or end is None:
        raise bad_xml_content(f"<{where}/TimeRange> needs <beginTime> and <endTime>")
    start = time_of_day(begin, f"<{where}/TimeRange/beginTime>")
    finish = time_of_day(end, f"<{where}/TimeRange/endTime>")
    return period(ArmingPeriod, f"<{where}>", day=day, start=start, end=finish)


def _check_no_holidays(doc: XmlIn | None) -> None:
    if doc is not None and list(doc.children("TimeBlock")):
        raise bad_parameters("<HolidayBlockList>: holiday schedules are not supported")
    if doc is not None:
        doc.finish()


def parse_schedule(doc: XmlIn, current: EventTrigger) -> EventTrigger:
    """A `Schedule` document applied to `current`'s arming schedule; raises IsapiError."""
    kind = BY_EVENT[current.event]
    name = kind.schedule_id(current.source)
    sent_id = doc.text("id")
    if sent_id is not None and kind.schedule_source(sent_id) != current.source:
        raise bad_parameters(f"<id> {sent_id[:32]!r} is not {name}")
    _check_identity(doc, current, name)
    blocks = doc.child("TimeBlockList")
    _check_no_holidays(doc.child("HolidayBlockList"))
    doc.finish()
    if blocks is None:
        return current
    periods = [_parse_block(block, i) for i, block in enumerate(blocks.children("TimeBlock"), 1)]
    blocks.finish()
    schedule = checked_week(periods, "<TimeBlockList>")
    return checked(current, TRIGGER_ELEMENTS, "Schedule", schedule=schedule)


# -- resources ---------------------------------------------------------------------------------
def _with_triggers(config: Config, changed: Mapping[tuple[str, int], EventTrigger]) -> Config:
    triggers = [changed.get(t.key, t) for t in config.events.triggers]
    events = dataclasses.replace(config.events, triggers=triggers)
    return dataclasses.replace(config, events=events)


def _trigger(config: Config, text: str) -> EventTrigger | None:
    key = trigger_key(text)
    return config.events.trigger(*key) if key else None


def _url_trigger(request: web.Request) -> EventTrigger:
    raw = request.match_info["id"]
    trigger = _trigger(context(request).store.current, raw)
    if trigger is None:
        raise not_found(f"no event trigger {raw[:32]}")
    return trigger


def _url_schedule(request: web.Request) -> EventTrigger:
    """The trigger whose arming schedule the URL names."""
    collection, raw = request.match_info["collection"], request.match_info["id"]
    kind = BY_COLLECTION.get(collection.lower())
    source = kind.schedule_source(raw) if kind else None
    trigger = None
    if kind is not None and source is not None:
        trigger = context(request).store.current.events.trigger(kind.event, source)
    if trigger is None:
        raise not_found(f"no arming schedule {collection[:32]}/{raw[:32]}")
    return trigger


@routes.get("/ISAPI/Event/triggers")
async def list_triggers(request: web.Request) -> web.Response:
    triggers = context(request).store.current.events.triggers
    return xml_response(
        render("EventTriggerList", {"EventTrigger": [trigger_doc(t) for t in triggers]})
    )


@routes.put("/ISAPI/Event/triggers")
async def put_triggers(request: web.Request) -> web.Response:
    config = context(request).store.current
    doc = await read_xml(request, "EventTriggerList")
    changed: dict[tuple[str, int], EventTrigger] = {}
    for item in doc.children("EventTrigger", limit=len(config.events.triggers)):
        sent_id = item.text("id") or ""
        current = _trigger(config, sent_id)
        if current is None:
            raise bad_parameters(f"<EventTrigger> {sent_id[:32]!r}: no such trigger")
        if current.key in changed:
            raise bad_parameters(f"<EventTrigger> {sent_id[:32]!r} is sent twice")
        changed[current.key] = parse_trigger(item, current, config)
    doc.finish()
    await config_change(request, lambda c: _with_triggers(c, changed))
    return ok(request)


@routes.get("/ISAPI/Event/triggers/{id}")
async def get_trigger(request: web.Request) -> web.Response:
    return xml_response(render("EventTrigger", trigger_doc(_url_trigger(request))))


@routes.put("/ISAPI/Event/triggers/{id}")
async def put_trigger(request: web.Request) -> web.Response:
    current = _url_trigger(request)
    config = context(request).store.current
    trigger = parse_trigger(await read_xml(request, "EventTrigger"), current, config)
    await config_change(request, lambda c: _with_triggers(c, {trigger.key: trigger}))
    return ok(request)


def _schedule_list(triggers: list[EventTrigger], events: Collection[str]) -> web.Response:
    docs = [schedule_doc(t) for t in triggers if t.event in events]
    return xml_response(render("ScheduleList", {"Schedule": docs}))


@routes.get("/ISAPI/Event/schedules")
async def list_schedules(request: web.Request) -> web.Response:
    scheduled = {kind.event for kind in BY_COLLECTION.values()}
    return _schedule_list(context(request).store.current.events.triggers, scheduled)


@routes.get("/ISAPI/Event/schedules/{collection}")
async def list_collection(request: web.Request) -> web.Response:
    collection = request.match_info["collection"]
    kind = BY_COLLECTION.get(collection.lower())
    if kind is None:
        raise not_found(f"no arming schedules {collection[:32]}")
    return _schedule_list(context(request).store.current.events.triggers, {kind.event})


@routes.get("/ISAPI/Event/schedules/{collection}/{id}")
async def get_schedule(request: web.Request) -> web.Response:
    return xml_response(render("Schedule", schedule_doc(_url_schedule(request))))


@routes.put("/ISAPI/Event/schedules/{collection}/{id}")
async def put_schedule(request: web.Request) -> web.Response:
    current = _url_schedule(request)
    trigger = parse_schedule(await read_xml(request, ("Schedule", "EventSchedule")), current)
    await config_change(request, lambda c: _with_triggers(c, {trigger.key: trigger}))
    return ok(request)
