"""Record tracks, search and manual recording through a real vigild and real clients
(`hikvisionapi` from PyPI, requests with Digest). The search tests record on a loop-device
card formatted over ISAPI (needs root and loop devices, like test_storage)."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hikvisionapi import Client

from tests.integration import test_storage
from tests.integration.test_storage import format_card, wait_for
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.record.footage import parse_playback_uri

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
TRACK = "/ISAPI/ContentMgmt/record/tracks/101"
SEARCH = "/ISAPI/ContentMgmt/search"
MANUAL = "/ISAPI/ContentMgmt/record/control/manual"
S = 1_000_000
card_image = test_storage.card_image  # the fixture: a blank card, cleaned up after the test
needs_card = test_storage.pytestmark


def action(number: int, day: str, start: str, end: str, mode: str) -> str:
    return (
        f"<ScheduleAction><id>{number}</id>"
        f"<ScheduleActionStartTime><DayOfWeek>{day}</DayOfWeek><TimeOfDay>{start}</TimeOfDay>"
        f"</ScheduleActionStartTime><ScheduleActionEndTime><DayOfWeek>{day}</DayOfWeek>"
        f"<TimeOfDay>{end}</TimeOfDay></ScheduleActionEndTime>"
        f"<Actions><Record>true</Record><ActionRecordingMode>{mode}</ActionRecordingMode>"
        "</Actions></ScheduleAction>"
    )


DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Continuous all day, every day, in three periods; only the modes differ from the default.
SCHEDULE = [
    (day, start, end, "CMR")
    for day in DAYS
    for start, end in (("00:00:00", "08:00:00"), ("08:00:00", "16:30:00"), ("16:30:00", "24:00:00"))
]


def schedule_xml(periods: list[tuple[str, str, str, str]]) -> str:
    actions = "".join(action(i, *period) for i, period in enumerate(periods, 1))
    return (
        "<TrackSchedule><ScheduleBlockList><ScheduleBlock>"
        f"{actions}</ScheduleBlock></ScheduleBlockList></TrackSchedule>"
    )


def sub_status(reply: object) -> str:
    return ET.fromstring(reply.content).findtext(f"{NS}subStatusCode") or ""  # type: ignore[attr-defined]


# -- tracks ------------------------------------------------------------------------------------
def test_track_round_trip_and_bad_input(device: Vigild) -> None:
    api = Client(device.url, "admin", ADMIN_PASSWORD, timeout=10)
    track = api.ContentMgmt.record.tracks[101](method="get")["Track"]
    assert (track["id"], track["Channel"], track["DefaultRecordingMode"]) == ("101", "101", "CMR")
    assert len(track["TrackSchedule"]["ScheduleBlockList"]["ScheduleBlock"]["ScheduleAction"]) == 7

    # The usual client: GET the document, change the schedule and the times, PUT it all back.
    periods = [
        ("Monday", "00:00:00", "07:00:00", "MOTION"),
        ("Monday", "07:00:00", "19:00:00", "CMR"),
        ("Monday", "19:00:00", "24:00:00", "EDR"),
        ("Wednesday", "12:30:00", "13:45:00", "ALARM"),
        ("Saturday", "00:00:00", "24:00:00", "AllEvent"),
    ]
    text = api.ContentMgmt.record.tracks[101](method="get", present="text")
    head, _, rest = text.partition("<TrackSchedule>")
    text = head + schedule_xml(periods) + rest.partition("</TrackSchedule>")[2]
    text = text.replace("<PostRecordTimeSeconds>10<", "<PostRecordTimeSeconds>30<")
    text = text.replace("<LoopEnable>true<", "<LoopEnable>false<")
    result = api.ContentMgmt.record.tracks[101](method="put", data=text)["ResponseStatus"]
    assert result["statusCode"] == "1"

    track = api.ContentMgmt.record.tracks[101](method="get")["Track"]
    actions = track["TrackSchedule"]["ScheduleBlockList"]["ScheduleBlock"]["ScheduleAction"]
    assert [
        (
            a["ScheduleActionStartTime"]["DayOfWeek"],
            a["ScheduleActionStartTime"]["TimeOfDay"],
            a["ScheduleActionEndTime"]["TimeOfDay"],
            a["Actions"]["ActionRecordingMode"],
        )
        for a in actions
    ] == periods
    extension = track["CustomExtensionList"]["CustomExtension"]
    assert (extension["PreRecordTimeSeconds"], extension["PostRecordTimeSeconds"]) == ("5", "30")
    assert track["LoopEnable"] == "false"
    policy = ET.fromstring(device.get("/ISAPI/ContentMgmt/Storage/policy").content)
    assert policy.findtext(f"{NS}overwrite") == "false"  # one device-wide setting
    assert 'mode = "motion|alarm"' in (device.data_dir / "config.toml").read_text()

    # Refused documents change nothing on disk.
    config = device.data_dir / "config.toml"
    saved = config.read_bytes()
    nine = [("Friday", f"{h:02d}:00:00", f"{h:02d}:30:00", "CMR") for h in range(9)]
    bad = [
        ("<Track><id>101</id><Enable>true", "badXmlFormat"),
        (f"<Track>{schedule_xml(nine)}</Track>", "badParameters"),
        (
            "<Track>"
            + schedule_xml([("Monday", "08:00:00", "12:00:00", "CMR"), *periods[1:2]])
            + "</Track>",
            "badParameters",
        ),
        (
            "<Track>" + schedule_xml([("Monday", "08:00:00", "08:00:30", "CMR")]) + "</Track>",
            "badParameters",
        ),
        (
            "<Track><CustomExtensionList><CustomExtension><PreRecordTimeSeconds>31"
            "</PreRecordTimeSeconds></CustomExtension></CustomExtensionList></Track>",
            "badParameters",
        ),
        ("<Track><Channel>201</Channel></Track>", "badParameters"),
        ("<Track><Loop>true</Loop></Track>", "badXmlContent"),
    ]
    for body, expected in bad:
        reply = device.put(TRACK, body)
        assert (reply.status_code, sub_status(reply)) == (400, expected), body
    assert device.put("/ISAPI/ContentMgmt/record/tracks/777", "<Track/>").status_code == 404

    # Refused searches: a clear error each, nothing changed either.
    bad_searches = [
        ("<CMSearchDescription><searchID>", "badXmlFormat"),
        (search_body(start="2026-11-20T10:00:00Z", end="2026-11-20T09:00:00Z"), "badParameters"),
        (search_body(start="2024-01-01T00:00:00Z", end="2026-01-01T00:00:00Z"), "badParameters"),
        (search_body(start="1990-01-01T00:00:00Z", end="1990-01-02T00:00:00Z"), "badParameters"),
        (search_body(max_results=5000), "badParameters"),
        (search_body(position=-1), "badParameters"),
        (search_body(track="999"), "badParameters"),
        (search_body("SOMETIMES"), "badParameters"),
    ]
    for body, expected in bad_searches:
        reply = device.post(SEARCH, body)
        assert (reply.status_code, sub_status(reply)) == (400, expected), body
    assert config.read_bytes() == saved


# -- search and manual recording on a recording device -----------------------------------------
@dataclass(frozen=True)
class Row:
    start_us: int
    end_us: int
    record_type: str
    state: str


@dataclass(frozen=True)
class Match:
    start: datetime
    end: datetime
    uri: str
    kind: str


def index_rows(device: Vigild) -> list[Row]:
    """Track 101's rows, read straight from the card's index (read-only, beside the daemon)."""
    path = device.data_dir / "card" / "record" / "index.sqlite3"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT start_us, end_us, record_type, state FROM segments"
                " WHERE stream_id = 101 ORDER BY start_us"
            ).fetchall()
    except sqlite3.OperationalError:  # caught between the file's creation and its schema
        return []
    return [Row(*row) for row in rows]


def complete(rows: list[Row], record_type: str | None = None) -> list[Row]:
    return [r for r in rows if r.state == "complete" and record_type in (None, r.record_type)]


def search_body(
    kind: str = "",
    *,
    max_results: int = 100,
    position: int = 0,
    start: str = "",
    end: str = "",
    track: str = "101",
) -> str:
    """A search of track 101 over the last and the next hour, unless told otherwise."""
    now = datetime.now(UTC)
    start = start or (now - timedelta(hours=1)).isoformat()
    end = end or (now + timedelta(hours=1)).isoformat()
    descriptor = "//recordType.meta.std-cgi.com" + (f"/{kind}" if kind else "")
    return (
        "<CMSearchDescription><searchID>it</searchID>"
        f"<trackIDList><trackID>{track}</trackID></trackIDList>"
        f"<timeSpanList><timeSpan><startTime>{start}</startTime><endTime>{end}</endTime>"
        f"</timeSpan></timeSpanList><maxResults>{max_results}</maxResults>"
        f"<searchResultPostion>{position}</searchResultPostion>"
        f"<metadataList><metadataDescriptor>{descriptor}</metadataDescriptor></metadataList>"
        "</CMSearchDescription>"
    )


def search(device: Vigild, body: str) -> tuple[str, int, list[Match]]:
    """(responseStatusStrg, totalMatches, matches)."""
    reply = device.post(SEARCH, body)
    assert reply.status_code == 200, reply.text
    result = ET.fromstring(reply.content)
    matches = [
        Match(
            datetime.fromisoformat(item.findtext(f"{NS}timeSpan/{NS}startTime") or ""),
            datetime.fromisoformat(item.findtext(f"{NS}timeSpan/{NS}endTime") or ""),
            item.findtext(f"{NS}mediaSegmentDescriptor/{NS}playbackURI") or "",
            (item.findtext(f"{NS}metadataMatches/{NS}metadataDescriptor") or "").split("/")[-1],
        )
        for item in result.iter(f"{NS}searchMatchItem")
    ]
    assert result.findtext(f"{NS}numOfMatches") == str(len(matches))
    status = result.findtext(f"{NS}responseStatusStrg") or ""
    return status, int(result.findtext(f"{NS}totalMatches") or -1), matches


def assert_matches_rows(matches: list[Match], rows: list[Row]) -> None:
    """Each match covers its file in whole seconds, and so does its playback URI."""
    assert len(matches) >= len(rows)
    for match, row in zip(matches, rows, strict=False):
        start_us, end_us = round(match.start.timestamp()) * S, round(match.end.timestamp()) * S
        assert start_us <= row.start_us < start_us + S
        assert end_us - S < row.end_us <= end_us
        track, uri_start, uri_end = parse_playback_uri(match.uri)
        assert track == 101 and uri_start <= row.start_us and uri_end >= row.end_us


def manual_recording(api: Client, order: str) -> str:
    """PUT record/control/manual/`order` (start, stop) for track 101: the status code."""
    reply = api.ContentMgmt.record.control.manual[order].tracks[101](method="put")
    return reply["ResponseStatus"]["statusCode"]


@needs_card
def test_search_paging_and_manual_recording(vigild_factory, card_image: Path) -> None:  # type: ignore[no-untyped-def]
    device: Vigild = vigild_factory(extra_args=("--sim-card", str(card_image))).start()
    device.activate()
    files_of_10_s = (
        "<Track><CustomExtensionList><CustomExtension><PreRecordTimeSeconds>0"
        "</PreRecordTimeSeconds><segmentSeconds>10</segmentSeconds></CustomExtension>"
        "</CustomExtensionList></Track>"
    )
    assert device.put(TRACK, files_of_10_s).status_code == 200

    # Without a card: nothing is found, and manual recording has nowhere to go.
    assert search(device, search_body())[:2] == ("NO MATCHES", 0)
    reply = device.put(f"{MANUAL}/start/tracks/101", "")
    assert (reply.status_code, sub_status(reply)) == (403, "hddNotExist")

    format_card(device)
    wait_for(lambda: len(complete(index_rows(device))) >= 3, "three recorded files", timeout=90)
    rows = complete(index_rows(device))
    status, total, matches = search(device, search_body())
    assert status == "OK" and total == len(matches)
    assert_matches_rows(matches, rows)
    assert {m.kind for m in matches} == {"timing"}

    # The calendar: today (device time, UTC here) has continuous footage.
    today = datetime.now(UTC)
    body = f"<trackDailyParam><year>{today.year}</year><monthOfYear>{today.month}</monthOfYear>"
    reply = device.post(f"{TRACK}/dailyDistribution", body + "</trackDailyParam>")
    assert reply.status_code == 200, reply.text
    days = ET.fromstring(reply.content).iter(f"{NS}day")
    recorded = {d.findtext(f"{NS}dayOfMonth"): d.findtext(f"{NS}recordType") for d in days}
    assert recorded[str(today.day)] == "time"
    just_before = today - timedelta(minutes=5)  # the first file, if the day began since
    assert {k for k, v in recorded.items() if v} <= {str(today.day), str(just_before.day)}

    # Pages of two: MORE until the last page, which is OK; together, every file once.
    pages: list[Match] = []
    statuses = []
    while not statuses or statuses[-1] == "MORE":
        status, _, page = search(device, search_body(max_results=2, position=len(pages)))
        statuses.append(status)
        pages += page
    assert len(statuses) >= 2 and set(statuses[:-1]) == {"MORE"} and statuses[-1] == "OK"
    # (The newest file grows meanwhile: compare starts.)
    assert [m.start for m in pages[: len(matches)]] == [m.start for m in matches]
    assert [m.start for m in pages] == sorted({m.start for m in pages})
    assert search(device, search_body("manual"))[:2] == ("NO MATCHES", 0)
    assert search(device, search_body("CMR"))[1] >= len(matches)

    # Manual recording: the track says so, and its new files are `manual`.
    api = Client(device.url, "admin", ADMIN_PASSWORD, timeout=10)
    assert manual_recording(api, "start") == "1"
    track_status = api.ContentMgmt.record.tracks[101].status(method="get")["TrackStatus"]
    assert (track_status["recordingStatus"], track_status["recordType"]) == ("recording", "manual")
    assert track_status["manualRecord"] == "true"
    wait_for(lambda: complete(index_rows(device), "manual"), "a manual file", timeout=60)
    assert manual_recording(api, "stop") == "1"
    track_status = api.ContentMgmt.record.tracks[101].status(method="get")["TrackStatus"]
    assert (track_status["recordType"], track_status["manualRecord"]) == ("timing", "false")

    def continuous_again() -> bool:
        rows = index_rows(device)
        last_manual = max(r.start_us for r in rows if r.record_type == "manual")
        return any(r.start_us > last_manual for r in complete(rows, "continuous"))

    wait_for(continuous_again, "continuous files after the manual ones", timeout=60)
    rows = index_rows(device)
    manual_rows = complete(rows, "manual")
    _, total, manual_matches = search(device, search_body("manual"))
    assert total == len([r for r in rows if r.record_type == "manual"]) == len(manual_matches)
    assert {m.kind for m in manual_matches} == {"manual"}
    assert_matches_rows(manual_matches, manual_rows)
    _, _, timing = search(device, search_body("timing"))
    assert {m.kind for m in timing} == {"timing"}
    assert not {m.start for m in timing} & {m.start for m in manual_matches}
