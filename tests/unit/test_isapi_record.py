"""ISAPI record tracks and manual recording, served in-process by the real handlers over HTTP
(aiohttp's test server) with a real ConfigStore on disk and a stand-in for the recording
service; authentication and the daemon are left to tests/integration/test_record_api.py.
Footage search and the calendar are in test_isapi_search.py, served with this harness."""

from __future__ import annotations

import dataclasses
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from vigil.api import isapi_record
from vigil.api.app import error_middleware
from vigil.api.context import CONTEXT, TrackStatus
from vigil.config.model import RECORD_MODES, Config
from vigil.config.store import ConfigStore

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
TRACKS = "/ISAPI/ContentMgmt/record/tracks"
XML = {"Content-Type": "application/xml"}


@dataclass
class FakeRecording:
    """The RecordingControl protocol as the handlers use it."""

    store: ConfigStore
    root: Path | None = None
    index: object = None
    calls: list[tuple[int, bool]] = field(default_factory=list)

    def track_status(self, track_id: int) -> TrackStatus | None:
        track = self.store.current.record.track(track_id)
        if track is None:
            return None
        manual = (track_id, True) in self.calls[-1:]
        kind = "manual" if manual else None
        return TrackStatus(track_id, track.stream, manual, kind, manual)

    async def manual(self, track_id: int, on: bool) -> None:
        if self.store.current.record.track(track_id) is None:
            raise LookupError(track_id)
        self.calls.append((track_id, on))


@dataclass
class Served:
    client: TestClient  # type: ignore[type-arg]
    store: ConfigStore
    recording: FakeRecording

    def saved(self) -> bytes:
        return self.store.path.read_bytes()

    async def put(self, path: str, body: str = "") -> ClientResponse:
        return await self.client.put(path, data=body.encode(), headers=XML)

    async def post(self, path: str, body: str = "") -> ClientResponse:
        return await self.client.post(path, data=body.encode(), headers=XML)


@asynccontextmanager
async def serving(tmp_path: Path, routes: web.RouteTableDef) -> AsyncIterator[Served]:
    """`routes` served with a fresh ConfigStore in `tmp_path` and a FakeRecording."""
    store = ConfigStore(tmp_path / "config.toml", Config())
    store.load()
    recording = FakeRecording(store)
    app = web.Application(middlewares=[error_middleware])
    ctx = SimpleNamespace(
        store=store, recording=recording, identity=SimpleNamespace(uuid=str(uuid.uuid4()))
    )
    app[CONTEXT] = ctx  # type: ignore[misc]
    app.router.add_routes(routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Served(client, store, recording)
    finally:
        await client.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path, isapi_record.routes) as served:
        yield served


def action(number: int, day: str, start: str, end: str, mode: str, end_day: str = "") -> str:
    return (
        f"<ScheduleAction><id>{number}</id>"
        f"<ScheduleActionStartTime><DayOfWeek>{day}</DayOfWeek>"
        f"<TimeOfDay>{start}</TimeOfDay></ScheduleActionStartTime>"
        f"<ScheduleActionEndTime><DayOfWeek>{end_day or day}</DayOfWeek>"
        f"<TimeOfDay>{end}</TimeOfDay></ScheduleActionEndTime>"
        "<ScheduleDSTEnable>false</ScheduleDSTEnable><Description>nothing</Description>"
        "<Actions><Record>true</Record><Log>false</Log><SaveImg>false</SaveImg>"
        f"<ActionRecordingMode>{mode}</ActionRecordingMode></Actions></ScheduleAction>"
    )


def track_xml(
    actions: str, *, track_id: int = 101, extra: str = "", ext: str = "", channel: int = 101
) -> str:
    return (
        f'<Track xmlns="http://www.hikvision.com/ver20/XMLSchema" version="2.0">'
        f"<id>{track_id}</id><Channel>{channel}</Channel><Enable>true</Enable>{extra}"
        "<TrackSchedule><ScheduleBlockList><ScheduleBlock>"
        "<ScheduleBlockGUID>{0}</ScheduleBlockGUID>"
        "<ScheduleBlockType>www.std-cgi.com/racm/schedule/ver10</ScheduleBlockType>"
        f"{actions}</ScheduleBlock></ScheduleBlockList></TrackSchedule>"
        "<CustomExtensionList><CustomExtension>"
        "<CustomExtensionName>www.hikvision.com/RaCM/trackCustomExt/ver10</CustomExtensionName>"
        f"<enableSchedule>true</enableSchedule>{ext}</CustomExtension></CustomExtensionList>"
        "</Track>"
    )


WEEK = (
    action(1, "Monday", "00:00:00", "08:00:00", "MOTION")
    + action(2, "Monday", "08:00:00", "18:30:00", "CMR")
    + action(3, "Monday", "18:30:00", "24:00:00", "EDR")
    + action(4, "Tuesday", "22:00:00", "00:00:00", "ALARMANDMOTION", end_day="Wednesday")
    + action(5, "Saturday", "07:15:00", "19:45:00", "AllEvent")
    + action(6, "Sunday", "00:00:00", "24:00:00", "alarm")
)


async def get_doc(served: Served, path: str) -> ET.Element:
    reply = await served.client.get(path)
    assert reply.status == 200, await reply.text()
    return ET.fromstring(await reply.read())


def schedule_of(track: ET.Element) -> list[tuple[str, str, str, str]]:
    return [
        (
            a.findtext(f"{NS}ScheduleActionStartTime/{NS}DayOfWeek") or "",
            a.findtext(f"{NS}ScheduleActionStartTime/{NS}TimeOfDay") or "",
            a.findtext(f"{NS}ScheduleActionEndTime/{NS}TimeOfDay") or "",
            a.findtext(f"{NS}Actions/{NS}ActionRecordingMode") or "",
        )
        for a in track.iter(f"{NS}ScheduleAction")
    ]


def test_every_record_mode_has_a_hikvision_name() -> None:
    assert set(isapi_record.MODE_NAMES) == set(RECORD_MODES)
    for mode, name in isapi_record.MODE_NAMES.items():
        assert isapi_record.record_mode(name.lower(), "x") == mode


async def test_default_track(served: Served) -> None:
    tracks = await get_doc(served, TRACKS)
    assert tracks.tag == f"{NS}TrackList"
    (track,) = tracks.findall(f"{NS}Track")
    assert track.findtext(f"{NS}id") == "101" and track.findtext(f"{NS}Channel") == "101"
    assert track.findtext(f"{NS}Enable") == "true"
    assert track.findtext(f"{NS}DefaultRecordingMode") == "CMR"
    assert (track.findtext(f"{NS}LoopEnable"), track.findtext(f"{NS}durationEnabled")) == (
        "true",
        "false",
    )
    assert schedule_of(track) == [
        (day, "00:00:00", "24:00:00", "CMR")
        for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    ]
    extension = track.find(f"{NS}CustomExtensionList/{NS}CustomExtension")
    assert extension is not None
    assert extension.findtext(f"{NS}PreRecordTimeSeconds") == "5"
    assert extension.findtext(f"{NS}PostRecordTimeSeconds") == "10"
    assert extension.findtext(f"{NS}segmentSeconds") == "60"
    same = await get_doc(served, f"{TRACKS}/101")
    assert same.findtext(f"{NS}TrackGUID") == track.findtext(f"{NS}TrackGUID")


async def test_put_then_get_round_trip(served: Served) -> None:
    body = track_xml(
        WEEK,
        extra="<LoopEnable>false</LoopEnable><Duration>P14DT0H</Duration>"
        "<durationEnabled>true</durationEnabled>",
        ext="<PreRecordTimeSeconds>12</PreRecordTimeSeconds>"
        "<PostRecordTimeSeconds>45</PostRecordTimeSeconds><segmentSeconds>120</segmentSeconds>",
    )
    reply = await served.put(f"{TRACKS}/101", body)
    assert reply.status == 200, await reply.text()

    track = await get_doc(served, f"{TRACKS}/101")
    assert schedule_of(track) == [
        ("Monday", "00:00:00", "08:00:00", "MOTION"),
        ("Monday", "08:00:00", "18:30:00", "CMR"),
        ("Monday", "18:30:00", "24:00:00", "EDR"),
        ("Tuesday", "22:00:00", "24:00:00", "ALARMANDMOTION"),
        ("Saturday", "07:15:00", "19:45:00", "AllEvent"),
        ("Sunday", "00:00:00", "24:00:00", "ALARM"),
    ]
    assert track.findtext(f"{NS}DefaultRecordingMode") == "MOTION"
    assert track.findtext(f"{NS}LoopEnable") == "false"
    assert (track.findtext(f"{NS}Duration"), track.findtext(f"{NS}durationEnabled")) == (
        "P14DT0H",
        "true",
    )
    saved = served.store.current
    stored = saved.record.track(101)
    assert stored is not None
    assert (stored.pre_record_s, stored.post_record_s, stored.segment_seconds) == (12, 45, 120)
    assert [(p.day, p.start, p.end, p.mode) for p in stored.schedule][3] == (
        "tuesday",
        "22:00",
        "24:00",
        "motion&alarm",
    )
    assert (saved.storage.overwrite, saved.storage.expiry_days) == (False, 14)
    assert b"motion&alarm" in served.saved()

    # The usual client: GET the whole document, change one thing, PUT it all back.
    text = (await (await served.client.get(f"{TRACKS}/101")).read()).decode()
    text = text.replace("<Enable>true</Enable>", "<Enable>false</Enable>")
    reply = await served.put(f"{TRACKS}/101", text)
    assert reply.status == 200, await reply.text()
    after = served.store.current
    assert after.record.track(101) == dataclasses.replace(stored, enabled=False)
    assert after.storage == saved.storage


NINE_ON_MONDAY = "".join(
    action(i, "Monday", f"{i:02d}:00:00", f"{i:02d}:30:00", "CMR") for i in range(1, 10)
)


def bad_action(
    what: str,
    words: str,
    start: str,
    end: str,
    *,
    day: str = "Monday",
    mode: str = "CMR",
    end_day: str = "",
) -> tuple[str, str, str, str]:
    """A BAD_TRACKS row: a track whose one ScheduleAction is refused."""
    body = track_xml(action(1, day, start, end, mode, end_day=end_day))
    return (what, body, "badParameters", words)


def bad_setting(
    what: str, tag: str, value: str, sub_status: str = "badParameters", words: str = ""
) -> tuple[str, str, str, str]:
    """A BAD_TRACKS row: the week's track with a custom extension `tag` refused (the message
    names the tag unless `words` says otherwise)."""
    return (what, track_xml(WEEK, ext=f"<{tag}>{value}</{tag}>"), sub_status, words or tag)


BAD_TRACKS = [
    # (what, body, sub status, words the message must contain)
    ("not XML", "<Track><id>101</id>", "badXmlFormat", "not well-formed"),
    ("9 periods a day", track_xml(NINE_ON_MONDAY), "badParameters", "at most 8"),
    (
        "overlap",
        track_xml(
            action(1, "Monday", "08:00:00", "12:00:00", "CMR")
            + action(2, "Monday", "11:00:00", "13:00:00", "CMR")
        ),
        "badParameters",
        "overlap",
    ),
    bad_action("across midnight", "within one day", "22:00:00", "06:00:00", end_day="Tuesday"),
    bad_action("end before start", "not before the end", "10:00:00", "09:00:00"),
    bad_action("seconds", "on the minute", "07:30:15", "09:00:00"),
    bad_action("hour 25", "ScheduleAction 1", "07:00:00", "25:00:00"),
    bad_action("unknown day", "day of the week", "07:00:00", "09:00:00", day="Funday"),
    bad_action("unknown mode", "recording mode", "07:00:00", "09:00:00", mode="SOMETIMES"),
    bad_setting("pre-record 31", "PreRecordTimeSeconds", "31"),
    bad_setting("post-record 4", "PostRecordTimeSeconds", "4"),
    bad_setting("post-record 601", "PostRecordTimeSeconds", "601"),
    bad_setting("segment 5 s", "segmentSeconds", "5"),
    ("unknown element", track_xml(WEEK, extra="<Bogus>1</Bogus>"), "badXmlContent", "Bogus"),
    ("other channel", track_xml(WEEK, channel=201), "badParameters", "Channel"),
    ("no such stream", track_xml(WEEK, channel=104), "badParameters", "Channel"),
    ("id mismatch", track_xml(WEEK, track_id=102), "badParameters", "<id>"),
    (
        "expiry > 365 days",
        track_xml(
            WEEK, extra="<Duration>P400DT0H</Duration><durationEnabled>true</durationEnabled>"
        ),
        "badParameters",
        "Duration",
    ),
    (
        "expiry text",
        track_xml(WEEK, extra="<Duration>30 days</Duration>"),
        "badParameters",
        "Duration",
    ),
    bad_setting("pre-record text", "PreRecordTimeSeconds", "x", "badXmlContent", "integer"),
]


@pytest.mark.parametrize(
    ("what", "body", "sub_status", "words"), BAD_TRACKS, ids=[b[0] for b in BAD_TRACKS]
)
async def test_bad_track_changes_nothing(
    served: Served, what: str, body: str, sub_status: str, words: str
) -> None:
    before, current = served.saved(), served.store.current
    reply = await served.put(f"{TRACKS}/101", body)
    assert reply.status == 400, what
    status = ET.fromstring(await reply.read())
    assert status.findtext(f"{NS}subStatusCode") == sub_status
    assert words in (status.findtext(f"{NS}errorMsg") or ""), status.findtext(f"{NS}errorMsg")
    assert served.saved() == before and served.store.current is current


async def test_unknown_tracks_and_creating_one_for_a_stream(served: Served) -> None:
    for path in (f"{TRACKS}/999", f"{TRACKS}/102", f"{TRACKS}/x", f"{TRACKS}/102/capabilities"):
        assert (await served.client.get(path)).status == 404, path
    before = served.saved()
    for track_id in (104, 999, 201):
        body = track_xml(WEEK, track_id=track_id, channel=track_id)
        assert (await served.put(f"{TRACKS}/{track_id}", body)).status == 404
    assert served.saved() == before

    # 102 is the sub stream: a track of that id is created, recording it.
    reply = await served.put(f"{TRACKS}/102", track_xml(WEEK, track_id=102, channel=1))
    assert reply.status == 200, await reply.text()
    tracks = (await get_doc(served, TRACKS)).findall(f"{NS}Track")
    assert [(t.findtext(f"{NS}id"), t.findtext(f"{NS}Channel")) for t in tracks] == [
        ("101", "101"),
        ("102", "102"),
    ]
    assert len(schedule_of(tracks[1])) == 6
    # A track may record another stream of its channel.
    reply = await served.put(f"{TRACKS}/101", track_xml(WEEK, channel=102))
    assert reply.status == 200, await reply.text()
    track = served.store.current.record.track(101)
    assert track is not None and track.stream == 102


async def test_enable_and_enable_schedule_both_count(served: Served) -> None:
    body = track_xml(WEEK).replace(
        "<enableSchedule>true</enableSchedule>", "<enableSchedule>false</enableSchedule>"
    )
    assert (await served.put(f"{TRACKS}/101", body)).status == 200
    track = served.store.current.record.track(101)
    assert track is not None and not track.enabled
    assert (await served.put(f"{TRACKS}/101", track_xml(WEEK))).status == 200
    track = served.store.current.record.track(101)
    assert track is not None and track.enabled


async def test_capabilities(served: Served) -> None:
    caps = await get_doc(served, f"{TRACKS}/101/capabilities")
    channel = caps.find(f"{NS}Channel")
    assert channel is not None and channel.get("opt") == "101,102,103"
    mode = caps.find(f".//{NS}ActionRecordingMode")
    assert mode is not None
    assert mode.get("opt") == "CMR,MOTION,ALARM,EDR,ALARMANDMOTION,AllEvent"
    post = caps.find(f".//{NS}PostRecordTimeSeconds")
    assert post is not None and (post.get("min"), post.get("max"), post.text) == ("5", "600", "10")
    action_caps = caps.find(f".//{NS}ScheduleAction")
    assert action_caps is not None and action_caps.get("maxPerDay") == "8"


async def test_manual_recording(served: Served, tmp_path: Path) -> None:
    manual = "/ISAPI/ContentMgmt/record/control/manual"
    reply = await served.put(f"{manual}/start/tracks/101")
    assert reply.status == 403
    status = ET.fromstring(await reply.read())
    assert status.findtext(f"{NS}subStatusCode") == "hddNotExist"
    assert (await served.put(f"{manual}/stop/tracks/101")).status == 200

    served.recording.root = tmp_path
    assert (await served.client.post(f"{manual}/start/tracks/101")).status == 200
    status = await get_doc(served, f"{TRACKS}/101/status")
    assert [status.findtext(f"{NS}{tag}") for tag in ("recordingStatus", "recordType")] == [
        "recording",
        "manual",
    ]
    assert (await served.put(f"{manual}/stop/tracks/101")).status == 200
    status = await get_doc(served, f"{TRACKS}/101/status")
    assert status.findtext(f"{NS}recordingStatus") == "stopped"
    assert status.find(f"{NS}recordType") is None
    assert served.recording.calls == [(101, False), (101, True), (101, False)]
    for path in (f"{manual}/start/tracks/102", f"{manual}/stop/tracks/abc"):
        assert (await served.put(path)).status == 404
    assert (await served.client.get(f"{manual}/start/tracks/101")).status == 405
