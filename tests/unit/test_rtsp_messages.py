"""RTSP wire format: request parsing and its limits, Transport, stream URLs, SDP, RTSP Digest."""

from __future__ import annotations

import base64
import hashlib
from fractions import Fraction

import av
import pytest

from vigil.media.frames import AccessUnit
from vigil.media.rtp import make_packetizer
from vigil.media.rtsp.auth import RtspDigest, rtsp_challenge_order
from vigil.media.rtsp.messages import (
    MAX_BODY,
    MAX_HEAD,
    MAX_HEADERS,
    RtspError,
    build_response,
    parse_head,
    parse_target,
    parse_transport,
)
from vigil.media.rtsp.sdp import build_sdp
from vigil.security.digest import Outcome, parse_params
from vigil.security.passwords import ha1

URL = "rtsp://192.0.2.10:554/Streaming/Channels/101"


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- requests ---------------------------------------------------------------------------------
def test_parses_a_request() -> None:
    request = parse_head(
        head(f"DESCRIBE {URL} RTSP/1.0", "CSeq: 2", "Accept: application/sdp", "Session: ab12;x=1")
    )
    assert (request.method, request.uri) == ("DESCRIBE", URL)
    assert request.cseq == "2"
    assert request.header("ACCEPT") == "application/sdp"
    assert request.session_id == "ab12"
    assert request.content_length == 0


def test_missing_or_bad_cseq_is_none() -> None:
    assert parse_head(head(f"OPTIONS {URL} RTSP/1.0")).cseq is None
    assert parse_head(head(f"OPTIONS {URL} RTSP/1.0", "CSeq: x1")).cseq is None


def test_repeated_headers_are_joined() -> None:
    request = parse_head(head("OPTIONS * RTSP/1.0", "CSeq: 1", "Require: a", "Require: b"))
    assert request.header("require") == "a, b"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"\x16\x03\x01\x00\xa5\x01\x00\r\n\r\n", 400),  # a TLS hello
        (head("HELLO"), 400),
        (head("OPTIONS  * RTSP/1.0", "CSeq: 1"), 400),  # two spaces: four fields
        (head("OPTIONS * HTTP/1.1", "CSeq: 1"), 505),
        (head("OPTIONS * RTSP/2.0", "CSeq: 1"), 505),
        (head("OPTIONS * RTSP/1.0", "no colon here"), 400),
        (head("OPTIONS * RTSP/1.0", "Bad Name: 1"), 400),
        (head("OPTIONS * RTSP/1.0", "X: a\x01b"), 400),
        (head("OPTIONS * RTSP/1.0", "Content-Length: -1"), 400),
        (head("OPTIONS * RTSP/1.0", "Content-Length: 99999999999"), 400),
        (head("OPTIONS * RTSP/1.0", f"Content-Length: {MAX_BODY + 1}"), 413),
        (head("OPTIONS /" + "a" * 3000 + " RTSP/1.0"), 414),
        (b"OPTIONS * RTSP/1.0\r\nX: \xff\xfe\r\n\r\n", 400),
    ],
)
def test_malformed_requests_close_the_connection(raw: bytes, status: int) -> None:
    with pytest.raises(RtspError) as caught:
        parse_head(raw)
    assert caught.value.status == status
    assert caught.value.close


def test_limits_on_size_and_header_count() -> None:
    many = head("OPTIONS * RTSP/1.0", *(f"X-{i}: {i}" for i in range(MAX_HEADERS + 1)))
    with pytest.raises(RtspError, match="headers"):
        parse_head(many)
    parse_head(head("OPTIONS * RTSP/1.0", *(f"X-{i}: {i}" for i in range(MAX_HEADERS - 1))))
    big = head("OPTIONS * RTSP/1.0", "X: " + "a" * MAX_HEAD)
    with pytest.raises(RtspError, match="too large"):
        parse_head(big)


def test_response_format() -> None:
    raw = build_response(200, "7", [("Public", "OPTIONS")], b"v=0\r\n", "application/sdp")
    text = raw.decode()
    assert text.startswith("RTSP/1.0 200 OK\r\nCSeq: 7\r\n")
    assert "Public: OPTIONS\r\n" in text
    assert "Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n" in text
    assert build_response(453, None).startswith(b"RTSP/1.0 453 Not Enough Bandwidth\r\n")
    assert b"CSeq" not in build_response(400, None)


# -- Transport --------------------------------------------------------------------------------
def test_transport_tcp_interleaved() -> None:
    (spec,) = parse_transport("RTP/AVP/TCP;unicast;interleaved=0-1")
    assert (spec.lower, spec.interleaved, spec.client_port, spec.multicast) == (
        "TCP",
        (0, 1),
        None,
        False,
    )


@pytest.mark.parametrize("profile", ["RTP/AVP", "RTP/AVP/UDP", "rtp/avp"])
def test_transport_udp(profile: str) -> None:
    (spec,) = parse_transport(f"{profile};unicast;client_port=5000-5001;mode=play")
    assert (spec.lower, spec.client_port, spec.params["mode"]) == ("UDP", (5000, 5001), "play")


def test_transport_offers_in_order_malformed_skipped() -> None:
    specs = parse_transport(
        "RTP/AVP;multicast, RTP/SAVP;unicast;client_port=1-2, RTP/AVP;client_port=9-x,"
        " RTP/AVP;unicast;client_port=0-1, RTP/AVP/TCP;interleaved=4, RAW/RAW/UDP;unicast"
    )
    assert [(s.lower, s.multicast, s.interleaved) for s in specs] == [
        ("UDP", True, None),
        ("TCP", False, (4, 5)),
    ]
    assert parse_transport("") == []
    assert parse_transport("RTP/AVP/TCP;interleaved=300-301") == []


# -- URLs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "stream", "track", "base"),
    [
        (URL, 101, None, URL + "/"),
        (URL + "/", 101, None, URL + "/"),
        (URL + "/trackID=1", 101, 1, URL + "/"),
        ("rtsp://h/streaming/CHANNELS/102?transportmode=unicast", 102, None, "rtsp://h/streaming/CHANNELS/102/"),
        ("rtsp://h/ISAPI/Streaming/channels/201/TRACKID=2", 201, 2, "rtsp://h/ISAPI/Streaming/channels/201/"),
        ("/Streaming/Channels/103", 103, None, "/Streaming/Channels/103/"),
    ],
)  # fmt: skip
def test_live_urls(uri: str, stream: int, track: int | None, base: str) -> None:
    target = parse_target(uri)
    assert (target.stream_id, target.track, target.base) == (stream, track, base)


@pytest.mark.parametrize(
    "uri",
    [
        "rtsp://h/Streaming/tracks/101?starttime=20261121T101500Z&endtime=20261121T102000Z",
        "rtsp://h/Streaming/Channels/",
        "rtsp://h/Streaming/Channels/101/extra",
        "rtsp://h/Streaming/Channels/1234567",
        "rtsp://h/",
        "http://h/Streaming/Channels/101",
        "*",
    ],
)
def test_other_urls_are_not_found(uri: str) -> None:
    with pytest.raises(RtspError) as caught:
        parse_target(uri)
    assert caught.value.status == 404
    assert not caught.value.close


# -- SDP ----------------------------------------------------------------------------------------
def _keyframe() -> AccessUnit:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
    frame = av.VideoFrame(320, 240, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.pts = 0
    packets = list(encoder.encode(frame)) + list(encoder.encode(None))
    data = bytes(packets[0])
    return AccessUnit(101, "H264", data, 0, True, 0.0, 320, 240)


def test_sdp_describes_the_h264_track() -> None:
    packetizer = make_packetizer("H264")
    packetizer.packetize(_keyframe())
    sdp = build_sdp(
        packetizer,
        stream_id=101,
        session_id=42,
        server_address="192.0.2.10",
        width=320,
        height=240,
        frame_rate=24.9,
    )
    lines = sdp.split("\r\n")
    assert lines[:6] == [
        "v=0",
        "o=- 42 1 IN IP4 192.0.2.10",
        "s=Vigil stream 101",
        "c=IN IP4 0.0.0.0",
        "t=0 0",
        "a=control:*",
    ]
    assert "m=video 0 RTP/AVP 96" in lines
    assert "a=rtpmap:96 H264/90000" in lines
    assert "a=framerate:25" in lines and "a=x-dimensions:320,240" in lines
    assert lines[-2:] == ["a=control:trackID=1", ""]
    (fmtp,) = [line for line in lines if line.startswith("a=fmtp:96 ")]
    params = dict(p.split("=", 1) for p in fmtp[len("a=fmtp:96 ") :].split(";"))
    assert params["packetization-mode"] == "1"
    sps, pps = (base64.b64decode(p) for p in params["sprop-parameter-sets"].split(","))
    assert sps[0] & 0x1F == 7 and pps[0] & 0x1F == 8
    assert params["profile-level-id"].lower() == sps[1:4].hex()


def test_sdp_without_parameter_sets_has_no_fmtp_but_stays_valid() -> None:
    sdp = build_sdp(make_packetizer("MJPEG"), stream_id=103, session_id=1, server_address="::1")
    assert "o=- 1 1 IN IP6 ::1" in sdp
    assert "m=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/90000\r\n" in sdp
    assert "x-dimensions" not in sdp and "framerate" not in sdp


# -- Digest as RTSP clients speak it ------------------------------------------------------------
REALM = "Vigil"
PASSWORD = "Rtsp-Test-2026"


def _digest() -> RtspDigest:
    return RtspDigest(REALM, lambda u, a: ha1(a, u, REALM, PASSWORD) if u == "admin" else None)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _rfc2069(
    nonce: str, method: str, uri: str, password: str = PASSWORD, user: str = "admin"
) -> str:
    response = _md5(f"{_md5(f'{user}:{REALM}:{password}')}:{nonce}:{_md5(f'{method}:{uri}')}")
    return (
        f'Digest username="{user}", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}"'
    )


def test_challenges_put_md5_last() -> None:
    assert rtsp_challenge_order(["MD5", "SHA-256"]) == ["SHA-256", "MD5"]
    assert rtsp_challenge_order(["SHA-256", "MD5"]) == ["SHA-256", "MD5"]
    assert rtsp_challenge_order(["SHA-256"]) == ["SHA-256"]


def test_rfc2069_answer_as_gstreamer_sends_it() -> None:
    digest = _digest()
    nonce = parse_params(digest.challenges(["MD5"], "10.0.0.5")[0][7:])["nonce"]
    good = _rfc2069(nonce, "DESCRIBE", URL)
    both = ["SHA-256", "MD5"]
    assert digest.verify(good, "DESCRIBE", URL, "10.0.0.5", both).outcome is Outcome.OK
    # The same answer for another method, URL or address, or with MD5 switched off: refused.
    assert digest.verify(good, "PLAY", URL, "10.0.0.5", both).outcome is Outcome.BAD_CREDENTIALS
    assert digest.verify(good, "DESCRIBE", URL + "/", "10.0.0.5", both).outcome is Outcome.MALFORMED
    assert digest.verify(good, "DESCRIBE", URL, "10.0.0.6", both).outcome is Outcome.STALE
    assert (
        digest.verify(good, "DESCRIBE", URL, "10.0.0.5", ["SHA-256"]).outcome is Outcome.MALFORMED
    )
    wrong = _rfc2069(nonce, "DESCRIBE", URL, password="Wrong-Pass-1")
    assert (
        digest.verify(wrong, "DESCRIBE", URL, "10.0.0.5", both).outcome is Outcome.BAD_CREDENTIALS
    )
    nobody = _rfc2069(nonce, "DESCRIBE", URL, user="nobody")
    assert (
        digest.verify(nobody, "DESCRIBE", URL, "10.0.0.5", both).outcome is Outcome.BAD_CREDENTIALS
    )


def test_rfc7616_answers_keep_their_checks() -> None:
    digest = _digest()
    nonce = parse_params(digest.challenges(["MD5"], "10.0.0.5")[0][7:])["nonce"]
    ha2 = _md5(f"DESCRIBE:{URL}")
    response = _md5(f"{_md5(f'admin:{REALM}:{PASSWORD}')}:{nonce}:00000001:c0ffee:auth:{ha2}")
    header = (
        f'Digest username="admin", realm="{REALM}", nonce="{nonce}", uri="{URL}", '
        f'response="{response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"'
    )
    both = ["SHA-256", "MD5"]
    assert digest.verify(header, "DESCRIBE", URL, "10.0.0.5", both).outcome is Outcome.OK
    assert digest.verify(header, "DESCRIBE", URL, "10.0.0.5", both).outcome is Outcome.REPLAY
    # A qop answer that is malformed does not fall back to the RFC 2069 rules.
    broken = header.replace("nc=00000001", "nc=1")
    assert digest.verify(broken, "DESCRIBE", URL, "10.0.0.5", both).outcome is Outcome.MALFORMED
