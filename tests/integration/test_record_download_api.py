"""ISAPI ContentMgmt/download through a real vigild: the simulated card is formatted over
ISAPI, track 101 records the live stream in 10 s segments, and a span across two segment
boundaries is downloaded with Digest auth by requests (POST) and by curl (GET with a body, as
Hikvision clients send it): both get the same bytes, an MP4 that lasts the span to within a
frame (ffprobe) and that FFmpeg decodes without a word. Bad requests get clear ResponseStatus
errors, and a client that hangs up mid-download stops it."""

from __future__ import annotations

import sqlite3
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from tests.integration.test_storage import format_card, wait_for
from tests.recording import check_download
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.record.footage import playback_uri

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
DOWNLOAD = "/ISAPI/ContentMgmt/download"
TRACK = "/ISAPI/ContentMgmt/record/tracks/101"


def request_body(uri: str) -> str:
    escaped = uri.replace("&", "&amp;")
    return f"<downloadRequest><playbackURI>{escaped}</playbackURI></downloadRequest>"


def segments(device: Vigild) -> list[tuple[int, int]]:
    """(start_us, end_us) of track 101's rows, read-only beside the recording daemon."""
    path = device.data_dir / "card" / "record" / "index.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT start_us, end_us FROM segments WHERE stream_id = 101 ORDER BY start_us"
        ).fetchall()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Vigild:  # type: ignore[misc]
    """One device for the module: formatted, recording track 101 in 10 s segments, with at
    least two segment boundaries on the card after the change of segment length."""
    device = Vigild(data_dir=tmp_path_factory.mktemp("download") / "device").start()
    try:
        device.activate()
        format_card(device)
        track = device.get(TRACK).text.replace(
            "<segmentSeconds>60</segmentSeconds>", "<segmentSeconds>10</segmentSeconds>"
        )
        reply = device.put(TRACK, track.encode())
        assert reply.status_code == 200, reply.text
        # The recorder restarts with the new length: a short 60 s-style segment, then ours.
        wait_for(lambda: len(segments(device)) >= 4, "three 10 s segments", timeout=90)
        yield device
    finally:
        device.stop()


def span_across_two_boundaries(device: Vigild) -> tuple[int, int]:
    """A span over the two boundaries between the last three segments, once those are of one
    recording: on a busy machine the segment ended by the recorder's restart can be among the
    last three when the fixture finds four rows, with the restart's gap after it."""

    def last_three_joined() -> bool:
        rows = segments(device)[-3:]
        return len(rows) == 3 and rows[0][1] == rows[1][0] and rows[1][1] == rows[2][0]

    wait_for(last_three_joined, "three segments of one recording", timeout=40)
    first, second, _ = segments(device)[-3:]
    start_us, end_us = first[1] - 2_345_678, second[1] + 1_234_567
    wait_for(lambda: segments(device)[-1][1] >= end_us, "the span to be recorded", timeout=30)
    return start_us, end_us


def test_download_over_http_lasts_the_span_and_plays(recording: Vigild, tmp_path: Path) -> None:
    device = recording
    start_us, end_us = span_across_two_boundaries(device)
    # Times to the microsecond (ISO 8601), and the name and size Hikvision clients add.
    uri = (
        f"rtsp://127.0.0.1:{device.rtsp_port}/Streaming/tracks/101/"
        f"?starttime={iso(start_us)}&endtime={iso(end_us)}&name=ch01_0800000000001&size=1234"
    )
    with device.session().post(
        f"{device.url}{DOWNLOAD}", data=request_body(uri), stream=True, timeout=30
    ) as reply:
        assert reply.status_code == 200, reply.text
        assert reply.headers["Content-Type"] == "video/mp4"
        assert reply.headers["Transfer-Encoding"] == "chunked"
        assert reply.headers["Content-Disposition"].startswith('attachment; filename="track101_')
        by_requests = tmp_path / "requests.mp4"
        by_requests.write_bytes(b"".join(reply.iter_content(65536)))
    check_download(by_requests, start_us, end_us, within_frames=0.1)  # the sim stream: 25 fps

    body = tmp_path / "body.xml"
    body.write_text(request_body(uri))
    by_curl = tmp_path / "curl.mp4"
    subprocess.run(
        [
            "curl", "-sS", "--fail", "--digest", "-u", f"admin:{ADMIN_PASSWORD}", "-X", "GET",
            "-H", "Content-Type: application/xml", "--data-binary", f"@{body}",
            "-o", str(by_curl), f"{device.url}{DOWNLOAD}",
        ],
        check=True, timeout=30,
    )  # fmt: skip
    assert by_curl.read_bytes() == by_requests.read_bytes()


def iso(at_us: int) -> str:
    """An ISO 8601 time with microseconds and a zone, which the URI may carry too."""
    seconds, micros = divmod(at_us, 1_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{micros:06d}Z"


def test_bad_requests_get_clear_errors(recording: Vigild) -> None:
    device = recording

    def uri(track: int, start: str, end: str) -> str:
        return f"rtsp://127.0.0.1/Streaming/tracks/{track}/?starttime={start}&endtime={end}"

    cases = [
        (uri(101, "20261121T104000Z", "20261121T103000Z"), 400, "badParameters"),  # inverted
        (uri(101, "20261001T000000Z", "20261121T000000Z"), 400, "badParameters"),  # 51 days
        (uri(101, "19991231T000000Z", "19991231T001000Z"), 400, "badParameters"),  # before 2000
        (uri(101, "yesterday", "20261121T103000Z"), 400, "badParameters"),
        ("http://127.0.0.1/Streaming/tracks/101/?starttime=20261121T103000Z", 400, "badParameters"),
        (uri(999, "20261121T103000Z", "20261121T104000Z"), 404, "notSupport"),  # no such track
        (uri(101, "20010101T000000Z", "20010101T001000Z"), 404, "noRecord"),  # no footage
    ]
    for playback, status, sub_status in cases:
        reply = device.post(DOWNLOAD, request_body(playback))
        assert (reply.status_code, sub_status_of(reply)) == (status, sub_status), playback
        assert reply.headers["Content-Type"].startswith("application/xml")
    malformed = device.post(DOWNLOAD, "<downloadRequest><playbackURI>rtsp://")
    assert (malformed.status_code, sub_status_of(malformed)) == (400, "badXmlFormat")
    unknown = device.post(DOWNLOAD, "<downloadRequest><size>1</size></downloadRequest>")
    assert (unknown.status_code, sub_status_of(unknown)) == (400, "badXmlContent")
    anonymous = requests.post(f"{device.url}{DOWNLOAD}", data=request_body(cases[0][0]), timeout=5)
    assert anonymous.status_code == 401


def sub_status_of(reply: requests.Response) -> str:
    return ET.fromstring(reply.content).findtext(f"{NS}subStatusCode") or ""


def test_a_client_that_hangs_up_stops_the_download(recording: Vigild) -> None:
    device = recording
    rows = segments(device)
    uri = playback_uri("127.0.0.1", 554, 101, rows[0][0], rows[-1][1])
    with device.session().post(
        f"{device.url}{DOWNLOAD}", data=request_body(uri), stream=True, timeout=30
    ) as reply:
        assert reply.status_code == 200
        assert reply.raw.read(1000)
        reply.close()  # gone mid-file, without reading on
    wait_for(lambda: "download ended by the client" in device.output(), "the download to stop", 15)
    assert device.get("/ISAPI/System/deviceInfo").status_code == 200


def test_without_a_card_the_answer_says_so(device: Vigild) -> None:
    """A device whose card was never formatted takes no recordings: hddNotExist."""
    playback = "rtsp://127.0.0.1/Streaming/tracks/101/?starttime=20261121T103000Z"
    reply = device.post(DOWNLOAD, request_body(playback + "&endtime=20261121T104000Z"))
    assert (reply.status_code, sub_status_of(reply)) == (403, "hddNotExist")
