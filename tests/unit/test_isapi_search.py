"""ISAPI footage search (recordings and pictures) and the dailyDistribution calendar, served
in-process by the real handlers with the harness of test_isapi_record.py (aiohttp's test server,
a real ConfigStore, a stand-in for the recording service) over a real RecordingIndex."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.unit.test_isapi_record import NS, TRACKS, Served, serving
from vigil.api import isapi_search
from vigil.config.model import RecordSettings, RecordTrack
from vigil.record.fmp4 import SegmentInfo
from vigil.record.footage import parse_playback_uri
from vigil.record.index import RECORD_TYPES, RecordingIndex


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path, isapi_search.routes) as served:
        yield served


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
    ("not XML", "<CMSearchDescription><searchID>", "badXmlFormat", "not well-formed"),
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
        word = isapi_search.RESULT_WORDS[record_type]
        assert isapi_search.FILTER_WORDS[word.lower()] == {record_type}


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
