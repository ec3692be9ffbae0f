"""ISAPI record tracks and manual recording, served in-process by the real handlers over HTTP
(aiohttp's test server) with a real ConfigStore on disk and a stand-in for the recording
service; authentication and the daemon are left to tests/integration/test_record_api.py."""

from __future__ import annotations

import dataclasses
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from vigil.api import isapi_record
from vigil.api.app import error_middleware
from vigil.api.context import CONTEXT, TrackStatus
from vigil.config.model import RECORD_MODES, Config, RecordSettings, RecordTrack
from vigil.config.store import ConfigStore
from vigil.record.fmp4 import SegmentInfo
from vigil.record.footage import parse_playback_uri
from vigil.record.index import RECORD_TYPES, RecordingIndex

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


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    store = ConfigStore(tmp_path / "config.toml", Config())
    store.load()
    recording = FakeRecording(store)
    app = web.Application(middlewares=[error_middleware])
    ctx = SimpleNamespace(
        store=store, recording=recording, identity=SimpleNamespace(uuid=str(uuid.uuid4()))
    )
    app[CONTEXT] = ctx  # type: ignore[misc]
    app.router.add_routes(isapi_record.routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield Served(client, store, recording)
    await client.close()


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
BAD_TRACKS = [
    # (what, body, sub status, words the message must contain)
    ("not XML", "<Track><id>101</id>", "badXmlFormat", "malformed"),
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
    (
        "across midnight",
        track_xml(action(1, "Monday", "22:00:00", "06:00:00", "CMR", end_day="Tuesday")),
        "badParameters",
        "within one day",
    ),
    (
        "end before start",
        track_xml(action(1, "Monday", "10:00:00", "09:00:00", "CMR")),
        "badParameters",
        "not before the end",
    ),
    (
        "seconds",
        track_xml(action(1, "Monday", "07:30:15", "09:00:00", "CMR")),
        "badParameters",
        "on the minute",
    ),
    (
        "hour 25",
        track_xml(action(1, "Monday", "07:00:00", "25:00:00", "CMR")),
        "badParameters",
        "ScheduleAction 1",
    ),
    (
        "unknown day",
        track_xml(action(1, "Funday", "07:00:00", "09:00:00", "CMR")),
        "badParameters",
        "day of the week",
    ),
    (
        "unknown mode",
        track_xml(action(1, "Monday", "07:00:00", "09:00:00", "SOMETIMES")),
        "badParameters",
        "recording mode",
    ),
    (
        "pre-record 31",
        track_xml(WEEK, ext="<PreRecordTimeSeconds>31</PreRecordTimeSeconds>"),
        "badParameters",
        "PreRecordTimeSeconds",
    ),
    (
        "post-record 4",
        track_xml(WEEK, ext="<PostRecordTimeSeconds>4</PostRecordTimeSeconds>"),
        "badParameters",
        "PostRecordTimeSeconds",
    ),
    (
        "post-record 601",
        track_xml(WEEK, ext="<PostRecordTimeSeconds>601</PostRecordTimeSeconds>"),
        "badParameters",
        "PostRecordTimeSeconds",
    ),
    (
        "segment 5 s",
        track_xml(WEEK, ext="<segmentSeconds>5</segmentSeconds>"),
        "badParameters",
        "segmentSeconds",
    ),
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
    (
        "pre-record text",
        track_xml(WEEK, ext="<PreRecordTimeSeconds>x</PreRecordTimeSeconds>"),
        "badXmlContent",
        "integer",
    ),
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


# -- search ------------------------------------------------------------------------------------
SEARCH = "/ISAPI/ContentMgmt/search"
S = 1_000_000
T0 = int(datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp()) * S


@pytest.fixture
async def footage(served: Served, tmp_path: Path) -> AsyncIterator[RecordingIndex]:
    """Track 101: 10 one-minute files from T0 (types below); track 102 (sub stream): one."""
    sub_track = RecordTrack(id=102, stream=102)
    await served.store.update(
        lambda c: dataclasses.replace(c, record=RecordSettings([*c.record.tracks, sub_track]))
    )
    index = RecordingIndex.open(tmp_path)
    types = ["continuous"] * 4 + ["motion", "alarm", "manual", "event", "continuous", "motion"]
    for n, record_type in enumerate(types):
        add_segment(index, 101, T0 + n * 60 * S + 250_000, 59.5, record_type)
    add_segment(index, 102, T0, 30, "continuous")
    served.recording.root, served.recording.index = tmp_path, index
    yield index
    index.close()


def add_segment(index: RecordingIndex, track: int, start_us: int, seconds: float, kind: str) -> int:
    info = SegmentInfo(track, "H264", 640, 360, 1000, start_us, kind)
    end_pts = 1000 + round(seconds * 90_000)
    return index.add_segment(info, f"video/{track}/{start_us}.mp4", end_pts, 1000, "complete")


def search_xml(
    start: str = "2026-11-20T09:00:00Z",
    end: str = "2026-11-20T12:00:00Z",
    tracks: tuple[int, ...] = (101,),
    types: tuple[str, ...] = ("",),
    max_results: int = 100,
    position: int = 0,
    extra: str = "",
) -> str:
    track_ids = "".join(f"<trackID>{t}</trackID>" for t in tracks)
    descriptors = "".join(
        f"<metadataDescriptor>//recordType.meta.std-cgi.com{'/' + t if t else ''}"
        "</metadataDescriptor>"
        for t in types
    )
    return (
        "<CMSearchDescription><searchID>C77384AD-66A0-0001-E7C2-1151F04F90B0</searchID>"
        f"<trackIDList>{track_ids}</trackIDList>"
        f"<timeSpanList><timeSpan><startTime>{start}</startTime><endTime>{end}</endTime>"
        f"</timeSpan></timeSpanList><maxResults>{max_results}</maxResults>"
        f"<searchResultPostion>{position}</searchResultPostion>"
        f"<metadataList>{descriptors}</metadataList>{extra}</CMSearchDescription>"
    )


@dataclass(frozen=True)
class Match:
    track: int
    start: datetime
    end: datetime
    uri: str
    kind: str
    codec: str


async def search(served: Served, body: str) -> tuple[ET.Element, list[Match]]:
    reply = await served.post(SEARCH, body)
    assert reply.status == 200, await reply.text()
    result = ET.fromstring(await reply.read())
    matches = [
        Match(
            int(item.findtext(f"{NS}trackID") or 0),
            datetime.fromisoformat(item.findtext(f"{NS}timeSpan/{NS}startTime") or ""),
            datetime.fromisoformat(item.findtext(f"{NS}timeSpan/{NS}endTime") or ""),
            item.findtext(f"{NS}mediaSegmentDescriptor/{NS}playbackURI") or "",
            (item.findtext(f"{NS}metadataMatches/{NS}metadataDescriptor") or "").split("/")[-1],
            item.findtext(f"{NS}mediaSegmentDescriptor/{NS}codecType") or "",
        )
        for item in result.iter(f"{NS}searchMatchItem")
    ]
    assert result.findtext(f"{NS}numOfMatches") == str(len(matches))
    return result, matches


def status_of(result: ET.Element) -> tuple[str, int]:
    return result.findtext(f"{NS}responseStatusStrg") or "", int(
        result.findtext(f"{NS}totalMatches") or -1
    )


async def test_search_matches_the_index(served: Served, footage: RecordingIndex) -> None:
    result, matches = await search(served, search_xml())
    assert result.findtext(f"{NS}searchID") == "C77384AD-66A0-0001-E7C2-1151F04F90B0"
    assert status_of(result) == ("OK", 10)
    rows = footage.segments_overlapping(101, T0 - 3600 * S, T0 + 3600 * S, limit=100)
    assert len(matches) == len(rows) == 10
    for match, row in zip(matches, rows, strict=True):
        assert (match.track, match.codec) == (101, "H.264-BP")
        # Whole seconds that cover the file: start rounded down, end up.
        assert match.start.timestamp() * S <= row.start_us < (match.start.timestamp() + 1) * S
        assert (match.end.timestamp() - 1) * S < row.end_us <= match.end.timestamp() * S
        track, start_us, end_us = parse_playback_uri(match.uri)
        assert track == 101 and start_us <= row.start_us and end_us >= row.end_us
        assert urlsplit(match.uri).hostname == "127.0.0.1"
    assert [m.kind for m in matches] == [
        *["timing"] * 4,
        "motion",
        "alarm",
        "manual",
        "event",
        "timing",
        "motion",
    ]
    # Several tracks: track by track, in the order asked.
    _, both = await search(served, search_xml(tracks=(102, 101)))
    assert [m.track for m in both] == [102] + [101] * 10
    # Without a track list: every track.
    result, _ = await search(
        served, search_xml().replace("<trackIDList><trackID>101</trackID></trackIDList>", "")
    )
    assert status_of(result) == ("OK", 11)


async def test_search_pages(served: Served, footage: RecordingIndex) -> None:
    seen: list[Match] = []
    statuses = []
    for position in (0, 4, 8, 12):
        result, page = await search(served, search_xml(max_results=4, position=position))
        statuses.append(status_of(result)[0])
        seen += page
    assert statuses == ["MORE", "MORE", "OK", "NO MATCHES"]
    assert len(seen) == 10 and len({m.start for m in seen}) == 10
    assert seen == sorted(seen, key=lambda m: m.start)
    # The correct spelling of the position is read too; pages cross from one track to the next.
    body = search_xml(tracks=(102, 101), max_results=2, position=1)
    result, page = await search(served, body.replace("Postion>", "Position>"))
    assert [m.track for m in page] == [101, 101] and status_of(result) == ("MORE", 11)


@pytest.mark.parametrize(
    ("types", "kinds"),
    [
        (("CMR",), {"timing"}),
        (("timing",), {"timing"}),
        (("MOTION",), {"motion"}),
        (("alarm",), {"alarm"}),
        (("EDR",), {"motion", "alarm"}),
        (("ALARMANDMOTION",), {"event"}),
        (("AllEvent",), {"motion", "alarm", "event"}),
        (("manual",), {"manual"}),
        (("MANUAL", "alarm"), {"manual", "alarm"}),
        (("motion", ""), {"timing", "motion", "alarm", "manual", "event"}),
    ],
)
async def test_search_by_record_type(
    served: Served, footage: RecordingIndex, types: tuple[str, ...], kinds: set[str]
) -> None:
    _, matches = await search(served, search_xml(types=types))
    assert {m.kind for m in matches} == kinds


async def test_search_times_without_a_zone_are_local(
    served: Served, footage: RecordingIndex
) -> None:
    await served.store.update(
        lambda c: dataclasses.replace(c, time=dataclasses.replace(c.time, time_zone="CST-8:00:00"))
    )
    # 18:00-18:03 at UTC+8 is 10:00-10:03 UTC: the first three files (and a little of none other).
    local = search_xml(start="2026-11-20T18:00:00", end="2026-11-20T18:03:00")
    _, matches = await search(served, local)
    assert len(matches) == 3
    mixed = search_xml(start="2026-11-20T18:00:00+08:00", end="2026-11-20T10:03:00Z")
    _, same = await search(served, mixed)
    assert same == matches


BAD_SEARCHES = [
    ("not XML", "<CMSearchDescription><searchID>", "badXmlFormat", "malformed"),
    ("end = start", search_xml(end="2026-11-20T09:00:00Z"), "badParameters", "not after"),
    ("inverted", search_xml(end="2026-11-19T09:00:00Z"), "badParameters", "not after"),
    ("over a year", search_xml(start="2025-11-01T00:00:00Z"), "badParameters", "366 days"),
    (
        "before 2000",
        search_xml(start="1999-12-31T00:00:00Z", end="2000-01-02T00:00:00Z"),
        "badParameters",
        "2000",
    ),
    ("not a time", search_xml(start="yesterday"), "badParameters", "ISO 8601"),
    ("no maxResults 0", search_xml(max_results=0), "badParameters", "maxResults"),
    ("huge maxResults", search_xml(max_results=10**12), "badParameters", "maxResults"),
    ("negative position", search_xml(position=-1), "badParameters", "Position"),
    ("huge position", search_xml(position=10**30), "badParameters", "Position"),
    ("unknown track", search_xml(tracks=(101, 999)), "badParameters", "999"),
    ("track text", search_xml(tracks=("x",)), "badParameters", "trackID"),  # type: ignore[arg-type]
    ("unknown type", search_xml(types=("SOMETIMES",)), "badParameters", "SOMETIMES"),
    ("pictures", search_xml().replace("//recordType", "//picture"), "badParameters", "picture"),
    (
        "two spans",
        search_xml().replace("</timeSpanList>", "<timeSpan/></timeSpanList>"),
        "badXmlContent",
        "timeSpan",
    ),
    (
        "no span",
        search_xml().replace("<timeSpanList>", "<x>").split("<x>")[0] + "</CMSearchDescription>",
        "badXmlContent",
        "timeSpanList",
    ),
    (
        "audio",
        search_xml(extra="<contentTypeList><contentType>audio</contentType></contentTypeList>"),
        "badParameters",
        "audio",
    ),
    ("unknown element", search_xml(extra="<Bogus/>"), "badXmlContent", "Bogus"),
]


@pytest.mark.parametrize(
    ("what", "body", "sub_status", "words"), BAD_SEARCHES, ids=[b[0] for b in BAD_SEARCHES]
)
async def test_bad_search(
    served: Served, footage: RecordingIndex, what: str, body: str, sub_status: str, words: str
) -> None:
    before = served.saved()
    reply = await served.post(SEARCH, body)
    assert reply.status == 400, what
    status = ET.fromstring(await reply.read())
    assert status.findtext(f"{NS}subStatusCode") == sub_status
    assert words in (status.findtext(f"{NS}errorMsg") or ""), status.findtext(f"{NS}errorMsg")
    assert served.saved() == before


async def test_search_without_a_card(served: Served) -> None:
    result, matches = await search(served, search_xml())
    assert matches == [] and status_of(result) == ("NO MATCHES", 0)


def test_every_record_type_has_a_result_word_that_finds_it() -> None:
    for record_type in RECORD_TYPES:
        word = isapi_record.RESULT_WORDS[record_type]
        assert isapi_record.FILTER_WORDS[word.lower()] == {record_type}


# -- calendar ----------------------------------------------------------------------------------
async def test_daily_distribution(served: Served, footage: RecordingIndex) -> None:
    day = 24 * 3600 * S
    add_segment(footage, 101, T0 + 3 * day, 60, "motion")  # 23 November
    add_segment(footage, 101, T0 - 15 * day + 13 * 3600 * S, 60, "alarm")  # 5 Nov, 23:00 UTC
    path = f"{TRACKS}/101/dailyDistribution"
    body = "<trackDailyParam><year>2026</year><monthOfYear>11</monthOfYear></trackDailyParam>"

    async def days() -> dict[str, str]:
        reply = await served.post(path, body)
        assert reply.status == 200, await reply.text()
        listed = ET.fromstring(await reply.read()).findall(f"{NS}dayList/{NS}day")
        assert [d.findtext(f"{NS}dayOfMonth") for d in listed] == [str(n) for n in range(1, 31)]
        return {
            d.findtext(f"{NS}dayOfMonth") or "": d.findtext(f"{NS}recordType") or ""
            for d in listed
            if d.findtext(f"{NS}record") == "true"
        }

    assert await days() == {"5": "event", "20": "time", "23": "event"}
    await served.store.update(
        lambda c: dataclasses.replace(c, time=dataclasses.replace(c.time, time_zone="CST-8:00:00"))
    )
    assert await days() == {"6": "event", "20": "time", "23": "event"}  # local days at UTC+8

    for bad in (
        "<trackDailyParam><year>2026</year><monthOfYear>13</monthOfYear></trackDailyParam>",
        "<trackDailyParam><year>1999</year><monthOfYear>1</monthOfYear></trackDailyParam>",
        "<trackDailyParam><year>2026</year></trackDailyParam>",
        body.replace("</trackDailyParam>", "<trackID>102</trackID></trackDailyParam>"),
        "<trackDailyParam>",
    ):
        assert (await served.post(path, bad)).status == 400, bad
    assert (await served.post(f"{TRACKS}/103/dailyDistribution", body)).status == 404


# -- pictures ----------------------------------------------------------------------------------
async def test_search_pictures(served: Served, footage: RecordingIndex) -> None:
    kinds = ["timing", "motion", "timing", "alarm", "tamperdetection"]
    for n, kind in enumerate(kinds):
        taken = T0 + n * 10 * S + 123_000
        footage.add_picture(1, f"01/2026-11-20/0.0.0.0_01_{n}_{kind.upper()}.jpg", taken, kind, 99)

    _, pictures = await search(served, search_xml(tracks=(103,)))
    assert [m.kind for m in pictures] == kinds
    assert [m.start.timestamp() * S for m in pictures] == [T0 + n * 10 * S for n in range(5)]
    assert all(m.start == m.end and m.track == 103 and m.codec == "jpeg" for m in pictures)
    uri = urlsplit(pictures[1].uri)
    assert (uri.scheme, uri.path) == ("http", "/picture/Streaming/tracks/103/")
    assert uri.query == "name=0.0.0.0_01_1_MOTION.jpg&size=99"

    _, timed = await search(served, search_xml(tracks=(103,), types=("CMR",)))
    assert [m.kind for m in timed] == ["timing", "timing"]
    _, either = await search(served, search_xml(tracks=(103,), types=("EDR",)))
    assert [m.kind for m in either] == ["motion", "alarm"]
    # Recordings and pictures in one search, paged across both.
    result, mixed = await search(served, search_xml(tracks=(101, 103), max_results=12))
    assert [m.track for m in mixed] == [101] * 10 + [103] * 2 and status_of(result)[0] == "MORE"
    # Words that name recordings only are refused for pictures.
    for word in ("manual", "AllEvent"):
        reply = await served.post(SEARCH, search_xml(tracks=(103,), types=(word,)))
        assert reply.status == 400, word
        assert "picture type" in (ET.fromstring(await reply.read()).findtext(f"{NS}errorMsg") or "")
    assert (await served.post(SEARCH, search_xml(tracks=(203,)))).status == 400

    # A record track 103 (the third stream) takes the id over: it has no footage here.
    third = RecordTrack(id=103, stream=103)
    await served.store.update(
        lambda c: dataclasses.replace(c, record=RecordSettings([*c.record.tracks, third]))
    )
    assert status_of((await search(served, search_xml(tracks=(103,))))[0]) == ("NO MATCHES", 0)
