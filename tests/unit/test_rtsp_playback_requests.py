"""RTSP playback requests: the URLs, Range and Scale as clients write them, and what is refused."""

from __future__ import annotations

import pytest

from vigil.media.rtsp.messages import RtspError
from vigil.media.rtsp.playback import (
    PlayRange,
    format_range,
    is_playback_uri,
    parse_playback_target,
    parse_range,
    parse_scale,
)
from vigil.record.footage import parse_time

START = parse_time("20261121T101500Z")
END = parse_time("20261121T102000Z")
QUERY = "starttime=20261121T101500Z&endtime=20261121T102000Z"


def status(call: object, *args: object) -> int:
    with pytest.raises(RtspError) as error:
        call(*args)  # type: ignore[operator]
    return error.value.status


@pytest.mark.parametrize(
    "uri",
    [
        f"rtsp://cam/Streaming/tracks/101?{QUERY}",
        f"rtsp://cam:554/Streaming/tracks/101/?{QUERY}",
        f"rtsp://cam/streaming/TRACKS/101/?{QUERY}&name=00010000000000000&size=1234",
        f"rtsp://cam/ISAPI/Streaming/tracks/101?{QUERY}",
        f"/Streaming/tracks/101?{QUERY}",
    ],
)
def test_playback_urls(uri: str) -> None:
    assert is_playback_uri(uri)
    target = parse_playback_target(uri)
    assert (target.track_id, target.start_us, target.end_us, target.track) == (
        101,
        START,
        END,
        None,
    )
    assert target.base.endswith("/101/") and "?" not in target.base
    assert target.control == f"trackID=1?{QUERY}"


def test_setup_url_names_the_track_and_keeps_the_span() -> None:
    target = parse_playback_target(f"rtsp://cam/Streaming/tracks/201/trackID=1?{QUERY}")
    assert (target.track_id, target.track, target.start_us) == (201, 1, START)
    assert target.base == "rtsp://cam/Streaming/tracks/201/"


def test_an_open_end_and_live_urls() -> None:
    target = parse_playback_target("rtsp://cam/Streaming/tracks/101?starttime=20261121T101500Z")
    assert target.end_us > target.start_us == START
    assert target.control == "trackID=1?starttime=20261121T101500Z"
    assert not is_playback_uri("rtsp://cam/Streaming/Channels/101")
    assert not is_playback_uri("rtsp://cam/Streaming/tracksXYZ")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("rtsp://cam/Streaming/tracks/101/", 400),  # no starttime
        ("rtsp://cam/Streaming/tracks/101/?starttime=yesterday", 400),
        ("rtsp://cam/Streaming/tracks/101/?starttime=20261121T101500", 400),  # no zone
        (
            "rtsp://cam/Streaming/tracks/101/?starttime=20261121T102000Z&endtime=20261121T101500Z",
            400,
        ),
        (f"rtsp://cam/Streaming/tracks/101/?{QUERY}&starttime=20261121T101600Z", 400),
        (f"rtsp://cam/Streaming/tracks/abc?{QUERY}", 404),
        (f"rtsp://cam/Streaming/tracks/101/trackID=1/x?{QUERY}", 404),
    ],
)
def test_refused_urls(uri: str, expected: int) -> None:
    assert status(parse_playback_target, uri) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("npt=0-", PlayRange(START, None, False)),
        ("npt=0.000-", PlayRange(START, None, False)),
        ("npt=12.5-", PlayRange(START + 12_500_000, None, False)),
        ("npt=0:01:02.25-0:02:00", PlayRange(START + 62_250_000, START + 120_000_000, False)),
        ("npt=now-", PlayRange(None, None, False)),
        ("npt=10-9999", PlayRange(START + 10_000_000, END, False)),  # the end clipped
        ("clock=20261121T101600Z-", PlayRange(START + 60_000_000, None, True)),
        (
            "clock=20261121T101600.5Z-20261121T101700Z",
            PlayRange(START + 60_500_000, START + 120_000_000, True),
        ),
        ("npt=5-;time=19970123T143720Z", PlayRange(START + 5_000_000, None, False)),
    ],
)
def test_ranges(header: str, expected: PlayRange) -> None:
    assert parse_range(header, START, END) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("npt=300-", 457),  # the span is 300 s: its end is outside
        ("clock=20261121T101400Z-", 457),  # before the span
        ("npt=20-10", 457),
        ("smpte=0:10:00-", 501),
        ("npt=-5-", 400),
        ("npt=ten-", 400),
        ("npt=0:61:00-", 400),
        ("clock=tomorrow-", 400),
        ("npt", 400),
        ("npt=5", 400),
    ],
)
def test_refused_ranges(header: str, expected: int) -> None:
    assert status(parse_range, header, START, END) == expected


def test_range_replies_in_the_unit_asked() -> None:
    assert format_range(START + 5_500_000, END, START, clock=False) == "npt=5.500-300.000"
    assert (
        format_range(START + 5_500_000, END, START, clock=True)
        == "clock=20261121T101505.500Z-20261121T102000.000Z"
    )


@pytest.mark.parametrize(
    ("header", "scale"),
    [("1", 1.0), ("2", 2.0), ("4.0", 4.0), ("8", 8.0), ("0.5", 0.5), ("3", 4.0), ("1.3", 1.0)],
)
def test_scales_offered_and_approximated(header: str, scale: float) -> None:
    assert parse_scale(header) == scale


@pytest.mark.parametrize(
    ("header", "expected"),
    [("16", 457), ("-1", 457), ("0", 457), ("0.25", 457), ("fast", 400), ("1e3", 400), ("", 400)],
)
def test_refused_scales(header: str, expected: int) -> None:
    assert status(parse_scale, header) == expected
