"""Event rules over ISAPI on a real vigild (the sim board: one video channel, alarm inputs 1-2,
relay 1): triggers with their linkage and arming schedules, read and written by `hikvisionapi`
and by requests with Digest; refused documents change nothing."""

from __future__ import annotations

import time
import tomllib
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hikvisionapi import Client

from tests.integration.test_io_api import contact, io_state, wait_state
from tests.isapi_xml import NS, put_ok, refusal, text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.events.bus import HOLD_OFF_S

TRIGGERS = "/ISAPI/Event/triggers"
SCHEDULES = "/ISAPI/Event/schedules"
MOTION_SCHEDULE = f"{SCHEDULES}/motionDetections/VMD_video1"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SIM_TRIGGERS = [
    ("VMD-1", "VMD", "videoInputChannelID", "1"),
    ("tamper-1", "tamperdetection", "videoInputChannelID", "1"),
    ("videoloss-1", "videoloss", "videoInputChannelID", "1"),
    ("defocus-1", "defocus", "videoInputChannelID", "1"),
    ("scenechangedetection-1", "scenechangedetection", "videoInputChannelID", "1"),
    ("IO-1", "IO", "inputIOPortID", "1"),
    ("IO-2", "IO", "inputIOPortID", "2"),
    *((event, event, "", "") for event in ("diskfull", "diskerror", "nicbroken", "ipconflict")),
    ("illaccess", "illaccess", "", ""),
]


@pytest.fixture(scope="module")
def camera(module_device: Vigild) -> Vigild:
    return module_device  # conftest: one activated device for the module


def saved_trigger(camera: Vigild, event: str, source: int) -> dict[str, Any]:
    config = tomllib.loads((camera.data_dir / "config.toml").read_text())
    triggers = config["events"]["triggers"]
    return next(t for t in triggers if (t["event"], t["source"]) == (event, source))


def note(method: str, extra: str = "", recurrence: str = "beginning") -> str:
    return (
        f"<EventTriggerNotification><id>{method}</id><notificationMethod>{method}"
        f"</notificationMethod><notificationRecurrence>{recurrence}</notificationRecurrence>"
        f"{extra}</EventTriggerNotification>"
    )


def ptz(number: int = 5, action: str = "preset", channel: int = 1) -> str:
    return note(
        "ptz",
        f"<ptzAction><ptzChannelID>{channel}</ptzChannelID><actionName>{action}</actionName>"
        f"<actionNum>{number}</actionNum></ptzAction>",
    )


def trigger(trigger_id: str, *notes: str, head: str = "") -> str:
    listed = f"<EventTriggerNotificationList>{''.join(notes)}</EventTriggerNotificationList>"
    return f"<EventTrigger><id>{trigger_id}</id>{head}{listed}</EventTrigger>"


def block(day: int | str, begin: str, end: str) -> str:
    return (
        f"<TimeBlock><dayOfWeek>{day}</dayOfWeek><TimeRange><beginTime>{begin}</beginTime>"
        f"<endTime>{end}</endTime></TimeRange></TimeBlock>"
    )


def schedule(schedule_id: str, *blocks: str, head: str = "") -> str:
    return (
        f'<Schedule version="2.0" xmlns="{NS[1:-1]}"><id>{schedule_id}</id>{head}'
        f"<TimeBlockList>{''.join(blocks)}</TimeBlockList></Schedule>"
    )


def shown_blocks(doc: ET.Element) -> list[tuple[str, str, str]]:
    return [
        (text(b, "dayOfWeek"), text(b, "TimeRange/beginTime"), text(b, "TimeRange/endTime"))
        for b in doc.iter(f"{NS}TimeBlock")
    ]


def source(shown: ET.Element) -> tuple[str, str]:
    """The element naming a trigger's source, and the source."""
    for tag in ("videoInputChannelID", "inputIOPortID"):
        value = shown.findtext(f"{NS}{tag}")
        if value is not None:
            return tag, value
    return "", ""


def notifications(doc: ET.Element) -> list[tuple[str, str]]:
    """(method, its target) of each EventTriggerNotification shown."""
    shown = []
    for item in doc.iter(f"{NS}EventTriggerNotification"):
        target = [text(item, t) for t in ("videoInputID", "outputIOPortID", "ptzAction/actionNum")]
        shown.append((text(item, "notificationMethod"), "".join(target)))
    return shown


def listed(*triggers: str) -> str:
    return f"<EventTriggerList>{''.join(triggers)}</EventTriggerList>"


def vmd(*notes: str, head: str = "") -> str:
    return trigger("VMD-1", *notes, head=head)


def io(number: int, *notes: str) -> str:
    return trigger(f"IO-{number}", *notes)


def relay(number: int) -> str:
    return note("IO", f"<outputIOPortID>{number}</outputIOPortID>")


def record(channel: int) -> str:
    return note("record", f"<videoInputID>{channel}</videoInputID>")


def week(*blocks: str, head: str = "") -> str:
    return schedule("VMD_video1", *blocks, head=head)


# -- triggers ----------------------------------------------------------------------------------
def test_the_devices_triggers(camera: Vigild) -> None:
    listed = xml(camera.get(TRIGGERS)).findall(f"{NS}EventTrigger")
    assert [(text(t, "id"), text(t, "eventType"), *source(t)) for t in listed] == SIM_TRIGGERS
    for trigger_id, event_type, _, _ in SIM_TRIGGERS:
        one = xml(camera.get(f"{TRIGGERS}/{trigger_id}"))
        assert one.tag == f"{NS}EventTrigger" and text(one, "eventType") == event_type
    # Ids are read without regard to case, as devices differ.
    assert text(xml(camera.get(f"{TRIGGERS}/vmd-1")), "id") == "VMD-1"


def test_linkage_round_trip_with_hikvisionapi(camera: Vigild) -> None:
    api = Client(camera.url, "admin", ADMIN_PASSWORD, timeout=10)
    vmd = api.Event.triggers["VMD-1"]
    doc = vmd(method="get")["EventTrigger"]
    assert (doc["id"], doc["eventType"], doc["videoInputChannelID"]) == ("VMD-1", "VMD", "1")

    # The usual client: GET the document, swap the notification list, PUT it all back.
    sent = vmd(method="get", present="text")
    head, _, rest = sent.partition("<EventTriggerNotificationList>")
    linkage = note("email") + note("FTP") + record(1) + relay(1) + ptz(5)
    sent = head + f"<EventTriggerNotificationList>{linkage}" + "</EventTriggerNotificationList>"
    sent += rest.partition("</EventTriggerNotificationList>")[2]
    assert vmd(method="put", data=sent)["ResponseStatus"]["statusCode"] == "1"

    items = vmd(method="get")["EventTrigger"]["EventTriggerNotificationList"]
    methods = [item["notificationMethod"] for item in items["EventTriggerNotification"]]
    assert methods == ["email", "FTP", "record", "IO", "ptz"]
    assert notifications(xml(camera.get(f"{TRIGGERS}/VMD-1"))) == [
        ("email", ""),
        ("FTP", ""),
        ("record", "1"),
        ("IO", "1"),
        ("ptz", "5"),
    ]
    saved = saved_trigger(camera, "vmd", 1)
    assert (saved["center"], saved["email"], saved["ftp"]) == (False, True, True)
    assert (saved["record"], saved["outputs"], saved["ptz_preset"]) == ([1], [1], 5)

    # An empty list turns every action off.
    put_ok(camera, f"{TRIGGERS}/VMD-1", trigger("VMD-1"))
    assert notifications(xml(camera.get(f"{TRIGGERS}/VMD-1"))) == []


def test_the_list_changes_the_triggers_it_names(camera: Vigild) -> None:
    put_ok(camera, f"{TRIGGERS}/tamper-1", trigger("tamper-1", note("center")))
    tamper_before = camera.get(f"{TRIGGERS}/tamper-1").content
    body = listed(
        trigger("IO-2", relay(1), head="<enabled>false</enabled>"),
        trigger("illaccess", note("email"), head="<eventType>illaccess</eventType>"),
    )
    put_ok(camera, TRIGGERS, body)
    io = xml(camera.get(f"{TRIGGERS}/IO-2"))
    assert text(io, "enabled") == "false" and notifications(io) == [("IO", "1")]
    assert notifications(xml(camera.get(f"{TRIGGERS}/illaccess"))) == [("email", "")]
    assert camera.get(f"{TRIGGERS}/tamper-1").content == tamper_before
    assert saved_trigger(camera, "io", 2)["enabled"] is False


# -- arming schedules --------------------------------------------------------------------------
def test_arming_schedule_round_trip(camera: Vigild) -> None:
    # A night shift every night, split at midnight; Saturday night runs into Monday morning
    # across the week's end; Wednesday has all 8 periods a day may have.
    night = [block(d, "00:00:00", "06:00:00") for d in range(1, 8)]
    night += [block(d, "22:00:00", "24:00:00") for d in range(1, 8)]
    wednesday = [block(3, f"{h:02d}:00:00", f"{h:02d}:30:00") for h in range(8, 14)]
    put_ok(camera, MOTION_SCHEDULE, schedule("VMD_video1", *night, *wednesday))

    doc = xml(camera.get(MOTION_SCHEDULE))
    assert (text(doc, "id"), text(doc, "eventType"), text(doc, "videoInputChannelID")) == (
        "VMD_video1",
        "VMD",
        "1",
    )
    shown = shown_blocks(doc)
    assert len(shown) == 7 * 2 + 6
    monday = [("1", "00:00:00", "06:00:00"), ("1", "22:00:00", "24:00:00")]
    assert shown[:3] == [*monday, ("2", "00:00:00", "06:00:00")]
    assert shown[-1] == ("7", "22:00:00", "24:00:00")
    assert sum(1 for b in shown if b[0] == "3") == 8
    saved = saved_trigger(camera, "vmd", 1)["schedule"]
    assert {"day": "sunday", "start": "22:00", "end": "24:00"} in saved
    assert {"day": "wednesday", "start": "13:00", "end": "13:30"} in saved

    # An alarm input's schedule, by its number or as IO_n, days by number or by name.
    put_ok(camera, f"{SCHEDULES}/inputs/2", schedule("IO_2", block("Friday", "08:00", "17:45")))
    doc = xml(camera.get(f"{SCHEDULES}/inputs/IO_2"))
    assert (text(doc, "id"), text(doc, "inputIOPortID")) == ("IO_2", "2")
    assert shown_blocks(doc) == [("5", "08:00:00", "17:45:00")]

    # An empty week disarms.
    path = f"{SCHEDULES}/tamperDetections/Tamperdetection_video1"
    put_ok(camera, path, schedule("Tamperdetection_video1"))
    assert shown_blocks(xml(camera.get(path))) == []
    assert saved_trigger(camera, "tamperdetection", 1)["schedule"] == []


def test_schedule_lists(camera: Vigild) -> None:
    ids = [text(s, "id") for s in xml(camera.get(SCHEDULES)).findall(f"{NS}Schedule")]
    assert ids == [
        "VMD_video1",
        "Tamperdetection_video1",
        "Videoloss_video1",
        "defocus_video1",
        "scenechangedetection_video1",
        "IO_1",
        "IO_2",
    ]  # the exceptions are always armed: no schedule
    inputs = xml(camera.get(f"{SCHEDULES}/inputs")).findall(f"{NS}Schedule")
    assert [text(s, "id") for s in inputs] == ["IO_1", "IO_2"]
    for path in (
        "videolosses/Videoloss_video1",
        "sceneChangeDetections/scenechangedetection_video1",
        "defocusDetections/defocus_video1",
    ):
        assert xml(camera.get(f"{SCHEDULES}/{path}")).tag == f"{NS}Schedule"


def test_unknown_triggers_and_schedules(camera: Vigild) -> None:
    for path in (
        f"{TRIGGERS}/linedetection-1",
        f"{TRIGGERS}/VMD-2",
        f"{TRIGGERS}/IO-3",
        f"{TRIGGERS}/diskfull-1",
        f"{TRIGGERS}/bogus",
        f"{SCHEDULES}/lineDetections/linedetection_video1",
        f"{SCHEDULES}/motionDetections/VMD_video2",
        f"{SCHEDULES}/motionDetections/1",
        f"{SCHEDULES}/inputs/3",
        f"{SCHEDULES}/exceptions/diskfull",
        f"{SCHEDULES}/bogus",
    ):
        reply = camera.get(path)
        assert (reply.status_code, refusal(reply)[1]) == (404, "notSupport"), path


def relay_after_contact(camera: Vigild) -> str:
    """Alarm input 1 closed for a second: the state relay 1 is in then. The relay is cleared
    and the event left to end (the bus holds an inactive back for its hold-off)."""
    contact(camera, 1, closed=True)
    time.sleep(1)
    state = io_state(camera, "output", 1) or ""
    contact(camera, 1, closed=False)
    clear = "<IOPortData><outputState>low</outputState></IOPortData>"
    assert camera.put("/ISAPI/System/IO/outputs/1/trigger", clear).status_code == 200
    wait_state(camera, "output", 1, "inactive")
    time.sleep(HOLD_OFF_S + 0.5)
    return state


def test_changes_reach_the_rules_at_once(camera: Vigild) -> None:
    """The rules read the triggers as they are now: arming, disarming and the linkage take
    effect on the next event, without a restart."""
    inputs_1 = f"{SCHEDULES}/inputs/1"
    all_week = [block(day, "00:00:00", "24:00:00") for day in range(1, 8)]
    put_ok(camera, inputs_1, schedule("IO_1", *all_week))
    put_ok(camera, f"{TRIGGERS}/IO-1", trigger("IO-1", relay(1), head="<enabled>true</enabled>"))
    assert relay_after_contact(camera) == "active"

    put_ok(camera, inputs_1, schedule("IO_1"))  # disarmed
    assert relay_after_contact(camera) == "inactive"
    put_ok(camera, inputs_1, schedule("IO_1", *all_week))
    assert relay_after_contact(camera) == "active"

    put_ok(camera, f"{TRIGGERS}/IO-1", trigger("IO-1", note("center")))  # no relay any more
    assert relay_after_contact(camera) == "inactive"
    put_ok(camera, f"{TRIGGERS}/IO-1", trigger("IO-1", relay(1), head="<enabled>false</enabled>"))
    assert relay_after_contact(camera) == "inactive"


def test_rules_survive_a_restart(camera: Vigild) -> None:
    put_ok(camera, f"{TRIGGERS}/videoloss-1", trigger("videoloss-1", note("center"), ptz(9)))
    put_ok(
        camera,
        f"{SCHEDULES}/videolosses/Videoloss_video1",
        schedule("Videoloss_video1", block(6, "10:00:00", "11:00:00")),
    )
    paths = (TRIGGERS, SCHEDULES)
    before = [camera.get(path).content for path in paths]
    camera.stop()
    camera.start()
    assert [camera.get(path).content for path in paths] == before
    assert notifications(xml(camera.get(f"{TRIGGERS}/videoloss-1"))) == [
        ("center", ""),
        ("ptz", "9"),
    ]


# -- refused documents -------------------------------------------------------------------------
VMD = f"{TRIGGERS}/VMD-1"
NOT_SUPPORT = "notSupport"
CHANNEL_2 = "<videoInputChannelID>2</videoInputChannelID>"
INPUT_1 = "<inputIOPortID>1</inputIOPortID>"
NINE = [block(2, f"{h:02d}:00:00", f"{h:02d}:30:00") for h in range(9)]
MONDAY_8_12 = block(1, "08:00:00", "12:00:00")
NO_RANGE = "<TimeBlock><dayOfWeek>1</dayOfWeek></TimeBlock>"
HOLIDAYS = f"<HolidayBlockList>{block(1, '07:00:00', '09:00:00')}</HolidayBlockList>"


def bad(
    what: str, path: str, body: str, sub: str, words: str, status: int = 400
) -> tuple[str, str, str, int, str, str]:
    """A refused document: (what, path, body, HTTP status, sub status, words of the message)."""
    return (what, path, body, status, sub, words)


P = "badParameters"
BAD = [
    bad("not XML", VMD, "<EventTrigger><id>VMD-1</id>", "badXmlFormat", "not well-formed"),
    bad("unknown element", VMD, vmd(head="<magic/>"), "badXmlContent", "magic"),
    bad("other id", VMD, trigger("tamper-1"), P, "<id>"),
    bad(
        "unknown event type", VMD, vmd(head="<eventType>linedetection</eventType>"), P, "eventType"
    ),
    bad("other channel", VMD, vmd(head=CHANNEL_2), P, "videoInputChannelID"),
    bad("input of a video event", VMD, vmd(head=INPUT_1), P, "inputIOPortID"),
    bad("relay 2 (the board has 1)", VMD, vmd(relay(2)), P, "no such alarm output"),
    bad("relay without a number", VMD, vmd(note("IO")), "badXmlContent", "outputIOPortID"),
    bad("record channel 2", VMD, vmd(record(2)), P, "no such video channel"),
    bad("beep", VMD, vmd(note("beep")), P, "notificationMethod"),
    bad("recurring", VMD, vmd(note("center", recurrence="recurring")), P, "Recurrence"),
    bad("patrol", VMD, vmd(ptz(1, action="patrol")), P, "preset"),
    bad("preset 0", VMD, vmd(ptz(0)), P, "actionNum"),
    bad("preset 256", VMD, vmd(ptz(256)), P, "actionNum"),
    bad("ptz channel 2", VMD, vmd(ptz(3, channel=2)), P, "ptzChannelID"),
    bad("two presets", VMD, vmd(ptz(3), ptz(4)), P, "one preset"),
    bad(
        "no such trigger", f"{TRIGGERS}/tamper-2", trigger("tamper-2"), NOT_SUPPORT, "tamper-2", 404
    ),
    bad("no such input", f"{TRIGGERS}/IO-3", trigger("IO-3"), NOT_SUPPORT, "IO-3", 404),
    bad("unknown in the list", TRIGGERS, listed(vmd(), trigger("linedetection-1")), P, "no such"),
    bad("twice in the list", TRIGGERS, listed(trigger("IO-1"), trigger("io-1")), P, "twice"),
    bad("one bad in the list", TRIGGERS, listed(io(1, relay(1)), io(2, relay(5))), P, "no such"),
    bad("overlap", MOTION_SCHEDULE, week(MONDAY_8_12, block(1, "11:00", "13:00")), P, "overlap"),
    bad("backwards", MOTION_SCHEDULE, week(block(1, "10:00", "09:00")), P, "not before the end"),
    bad("empty period", MOTION_SCHEDULE, week(block(1, "10:00", "10:00")), P, "not before the end"),
    bad("9 periods a day", MOTION_SCHEDULE, week(*NINE), P, "at most 8"),
    bad("seconds", MOTION_SCHEDULE, week(block(1, "07:30:15", "09:00:00")), P, "on the minute"),
    bad("hour 25", MOTION_SCHEDULE, week(block(1, "07:00:00", "25:00:00")), P, "TimeBlock 1"),
    bad("past the day", MOTION_SCHEDULE, week(block(1, "23:00:00", "24:30:00")), P, "TimeBlock 1"),
    bad("not a time", MOTION_SCHEDULE, week(block(1, "8am", "09:00:00")), P, "hh:mm:ss"),
    bad("day 8", MOTION_SCHEDULE, week(block(8, "07:00", "09:00")), P, "dayOfWeek"),
    bad("day 0", MOTION_SCHEDULE, week(block(0, "07:00", "09:00")), P, "dayOfWeek"),
    bad("no time range", MOTION_SCHEDULE, week(NO_RANGE), "badXmlContent", "TimeRange"),
    bad("holidays", MOTION_SCHEDULE, week(head=HOLIDAYS), P, "holiday"),
    bad("other schedule id", MOTION_SCHEDULE, schedule("VMD_video2"), P, "<id>"),
    bad(
        "other event type", MOTION_SCHEDULE, week(head="<eventType>IO</eventType>"), P, "eventType"
    ),
    bad("input of a video event", MOTION_SCHEDULE, week(head=INPUT_1), P, "inputIOPortID"),
    bad("no such schedule", f"{SCHEDULES}/lineDetections/x_1", week(), NOT_SUPPORT, "x_1", 404),
    bad("exception", f"{SCHEDULES}/exceptions/diskfull", week(), NOT_SUPPORT, "diskfull", 404),
]


@pytest.mark.parametrize(
    ("what", "path", "body", "status", "sub", "words"), BAD, ids=[b[0] for b in BAD]
)
def test_refused_documents_change_nothing(
    camera: Vigild, what: str, path: str, body: str, status: int, sub: str, words: str
) -> None:
    config = camera.data_dir / "config.toml"
    before = [camera.get(p).content for p in (TRIGGERS, SCHEDULES)], config.read_bytes()
    code, sub_status, message = refusal(camera.put(path, body))
    assert (code, sub_status) == (status, sub), message
    assert words in message, message
    assert ([camera.get(p).content for p in (TRIGGERS, SCHEDULES)], config.read_bytes()) == before
