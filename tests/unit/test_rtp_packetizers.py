"""RTP packetizers and RTCP: headers, fragmentation, aggregation, SDP fmtp, reports.

Every stream here is real encoder output (libx264, libx265, FFmpeg's mjpeg through PyAV,
libjpeg through GStreamer), and every packet is taken apart again by the depacketizers below,
written from the RFCs, so a packetizer that loses or reorders a byte fails.
"""

from __future__ import annotations

import base64
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import ntplib
import pytest

from tests.media_samples import encode_test_pattern, libjpeg_frames
from vigil.media.frames import AccessUnit
from vigil.media.rtp import make_packetizer
from vigil.media.rtp.base import Packetizer
from vigil.media.rtp.h264 import H264Packetizer, split_annex_b
from vigil.media.rtp.h265 import H265Packetizer
from vigil.media.rtp.jpeg import STANDARD_HUFFMAN_TABLES, JpegPacketizer, parse_jpeg
from vigil.media.rtp.packet import (
    NTP_UNIX_OFFSET,
    RTCP_BYE,
    RTCP_RR,
    RTCP_SDES,
    RTCP_SR,
    RtcpPacket,
    build_sdes_cname,
    ntp_timestamp,
    parse_rtcp,
)

MAX_PACKET = 1400
TICKS_PER_FRAME = 3600  # 25 fps at 90 kHz


# -- real encoder output ----------------------------------------------------------------------
def units(
    codec: str, encoded: list[tuple[bytes, bool]], width: int, height: int
) -> list[AccessUnit]:
    return [
        AccessUnit(101, codec, data, index * TICKS_PER_FRAME, keyframe, 0.0, width, height)
        for index, (data, keyframe) in enumerate(encoded)
    ]


X264 = {"tune": "zerolatency", "preset": "veryfast"}
X265 = {"tune": "zerolatency", "preset": "ultrafast", "x265-params": "log-level=error"}


@pytest.fixture(scope="module")
def h264_small() -> list[AccessUnit]:
    # aud=1 makes x264 write access unit delimiters, which the packetizer must drop.
    encoded = encode_test_pattern("libx264", 320, 240, 30, options={**X264, "x264-params": "aud=1"})
    return units("H264", encoded, 320, 240)


@pytest.fixture(scope="module")
def h264_large() -> list[AccessUnit]:
    return units("H264", encode_test_pattern("libx264", 1280, 720, 3, options=X264), 1280, 720)


@pytest.fixture(scope="module")
def h265_units() -> list[AccessUnit]:
    options = {**X265, "x265-params": "log-level=error:aud=1"}
    return units("H265", encode_test_pattern("libx265", 1280, 720, 3, options=options), 1280, 720)


def mjpeg(width: int = 320, height: int = 240, **kwargs: object) -> list[AccessUnit]:
    options = kwargs.pop("options", {"huffman": "default"})
    pix_fmt = kwargs.pop("pix_fmt", "yuvj420p")
    encoded = encode_test_pattern(
        "mjpeg",
        width,
        height,
        3,
        pix_fmt=pix_fmt,
        options=options,
        **kwargs,  # type: ignore[arg-type]
    )
    return units("MJPEG", encoded, width, height)


# -- depacketizers, from the RFCs ---------------------------------------------------------------
RTP_HEADER = struct.Struct("!BBHII")


def rtp_fields(packet: bytes) -> tuple[int, bool, int, int, int, int, bytes]:
    """(version, marker, payload type, sequence, timestamp, ssrc, payload)."""
    first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(packet)
    assert first & 0x3F == 0, "no padding, extension or CSRCs"
    return first >> 6, bool(second & 0x80), second & 0x7F, sequence, timestamp, ssrc, packet[12:]


def aggregated(payload: bytes, header: int) -> list[bytes]:
    """The NAL units of an aggregation packet (STAP-A, AP): after its `header` bytes, each unit
    behind its 16-bit size, up to the packet's end exactly."""
    nals = []
    pos = header
    while pos < len(payload):
        (size,) = struct.unpack_from("!H", payload, pos)
        nals.append(payload[pos + 2 : pos + 2 + size])
        pos += 2 + size
    assert pos == len(payload)
    return nals


def depacketize_h264(packets: list[bytes]) -> list[bytes]:
    nals: list[bytes] = []
    fragment = b""
    for packet in packets:
        payload = packet[12:]
        kind = payload[0] & 0x1F
        if kind == 24:  # STAP-A
            nals += aggregated(payload, 1)
        elif kind == 28:  # FU-A
            start, end = payload[1] & 0x80, payload[1] & 0x40
            if start:
                fragment = bytes(((payload[0] & 0xE0) | (payload[1] & 0x1F),))
            fragment += payload[2:]
            if end:
                nals.append(fragment)
        else:
            nals.append(payload)
    return nals


def depacketize_h265(packets: list[bytes]) -> list[bytes]:
    nals: list[bytes] = []
    fragment = b""
    for packet in packets:
        payload = packet[12:]
        kind = (payload[0] >> 1) & 0x3F
        if kind == 48:  # AP
            nals += aggregated(payload, 2)
        elif kind == 49:  # FU
            fu_header = payload[2]
            if fu_header & 0x80:
                original = (payload[0] & 0x81) | ((fu_header & 0x3F) << 1)
                fragment = bytes((original, payload[1]))
            fragment += payload[3:]
            if fu_header & 0x40:
                nals.append(fragment)
        else:
            nals.append(payload)
    return nals


def nal_units(au: AccessUnit) -> list[bytes]:
    """NAL units found the slow, obvious way, independently of the packetizer's splitter."""
    parts = au.data.split(b"\x00\x00\x01")[1:]
    return [part.rstrip(b"\x00") for part in parts if part.rstrip(b"\x00")]


def first_fragmented(payloads: list[bytes], is_fragment_of: object, header: int) -> list[bytes]:
    """The fragments of the first NAL unit the predicate picks, from its start to its end bit."""
    picked = [p for p in payloads if is_fragment_of(p)]  # type: ignore[operator]
    start = next(i for i, p in enumerate(picked) if p[header] & 0x80)
    end = next(i for i, p in enumerate(picked) if i >= start and p[header] & 0x40)
    return picked[start : end + 1]


def h264_type(nal: bytes) -> int:
    return nal[0] & 0x1F


def h265_type(nal: bytes) -> int:
    return (nal[0] >> 1) & 0x3F


# -- RTP headers ------------------------------------------------------------------------------
def test_header_fields_sequence_and_timestamp(h264_small: list[AccessUnit]) -> None:
    packetizer = H264Packetizer(ssrc=0x12345678, initial_sequence=100)
    packets = packetizer.packetize(h264_small[0])
    assert len(packets) > 1
    for index, packet in enumerate(packets):
        version, _, payload_type, sequence, timestamp, ssrc, _ = rtp_fields(packet)
        assert (version, payload_type, ssrc) == (2, 96, 0x12345678)
        assert sequence == 100 + index
        assert timestamp == h264_small[0].pts
        assert len(packet) <= MAX_PACKET
    assert packetizer.next_sequence == 100 + len(packets)


def test_sequence_wraps_at_16_bits_and_timestamp_at_32(h264_small: list[AccessUnit]) -> None:
    packetizer = H264Packetizer(initial_sequence=0xFFFE)
    key = h264_small[0]
    late = AccessUnit(101, "H264", key.data, (1 << 32) + 1234, True, 0.0, 320, 240)
    sequences = [rtp_fields(p)[3] for p in packetizer.packetize(late)]
    assert sequences[:3] == [0xFFFE, 0xFFFF, 0]
    assert sequences == [(0xFFFE + i) & 0xFFFF for i in range(len(sequences))]
    assert {rtp_fields(p)[4] for p in packetizer.packetize(late)} == {1234}


def test_marker_only_on_the_last_packet_of_each_access_unit(h264_small: list[AccessUnit]) -> None:
    packetizer = H264Packetizer()
    for au in h264_small:
        packets = packetizer.packetize(au)
        markers = [rtp_fields(p)[1] for p in packets]
        assert markers == [False] * (len(packets) - 1) + [True]


def test_ssrc_and_first_sequence_are_random() -> None:
    first, second = H264Packetizer(), H264Packetizer()
    assert (first.ssrc, first.next_sequence) != (second.ssrc, second.next_sequence)


def test_packet_size_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        H264Packetizer(max_packet_size=14)
    with pytest.raises(ValueError):
        JpegPacketizer(max_packet_size=200)  # no room for the quantization tables
    with pytest.raises(ValueError):
        H265Packetizer(max_packet_size=70_000)


def test_make_packetizer_per_codec() -> None:
    kinds = {"H264": ("H264", 96), "H265": ("H265", 96), "MJPEG": ("JPEG", 26)}
    for codec, (name, payload_type) in kinds.items():
        packetizer: Packetizer = make_packetizer(codec, max_packet_size=1200, ssrc=7)
        assert (packetizer.encoding_name, packetizer.payload_type) == (name, payload_type)
        assert (packetizer.clock_rate, packetizer.ssrc) == (90_000, 7)
    with pytest.raises(ValueError):
        make_packetizer("VP8")


# -- H.264 --------------------------------------------------------------------------------------
def test_h264_round_trip_drops_only_access_unit_delimiters(h264_small: list[AccessUnit]) -> None:
    packetizer = H264Packetizer()
    saw_delimiter = False
    for au in h264_small:
        original = nal_units(au)
        saw_delimiter |= any(h264_type(nal) == 9 for nal in original)
        received = depacketize_h264(packetizer.packetize(au))
        assert received == [nal for nal in original if h264_type(nal) != 9]
    assert saw_delimiter, "x264 with aud=1 writes delimiters; the test needs them"


def test_splitter_handles_three_and_four_byte_start_codes_and_padding() -> None:
    data = b"\x00\x00\x00\x01\x67\x42\x00\x00\x01\x68\xce\x00\x00\x00\x00\x00\x01\x65\x88\x00\x00"
    assert [bytes(nal) for nal in split_annex_b(data)] == [b"\x67\x42", b"\x68\xce", b"\x65\x88"]
    assert split_annex_b(b"no start code") == []


def test_h264_fu_a_boundaries(h264_large: list[AccessUnit]) -> None:
    for max_packet in (MAX_PACKET, 300):
        packetizer = H264Packetizer(max_packet_size=max_packet)
        key = h264_large[0]
        idr = next(nal for nal in nal_units(key) if h264_type(nal) == 5)
        assert len(idr) > max_packet, "a 720p IDR slice must need fragmenting"
        packets = packetizer.packetize(key)
        payloads = [p[12:] for p in packets]
        fu = first_fragmented(payloads, lambda p: p[0] & 0x1F == 28 and p[1] & 0x1F == 5, 1)
        assert len(fu) == -(-(len(idr) - 1) // (max_packet - 14))
        starts = [bool(p[1] & 0x80) for p in fu]
        ends = [bool(p[1] & 0x40) for p in fu]
        assert starts == [True] + [False] * (len(fu) - 1)
        assert ends == [False] * (len(fu) - 1) + [True]
        assert all(p[0] & 0x60 == idr[0] & 0x60 for p in fu), "NRI kept in the FU indicator"
        assert all(len(p) + 12 == max_packet for p in fu[:-1]), "fragments fill the packet"
        assert all(len(p) <= max_packet for p in packets)
        assert b"".join(p[2:] for p in fu) == idr[1:]


def test_h264_nal_exactly_one_packet_is_not_fragmented() -> None:
    packetizer = H264Packetizer(max_packet_size=112)
    fits, too_big = b"\x65" + b"\x11" * 99, b"\x65" + b"\x11" * 100
    one = packetizer.packetize(AccessUnit(101, "H264", b"\x00\x00\x01" + fits, 0, True, 0, 8, 8))
    assert [p[12:] for p in one] == [fits]
    two = packetizer.packetize(AccessUnit(101, "H264", b"\x00\x00\x01" + too_big, 0, True, 0, 8, 8))
    assert [(p[12] & 0x1F, p[13] >> 6) for p in two] == [(28, 0b10), (28, 0b01)]


def test_h264_stap_a_carries_the_parameter_sets_before_the_idr(
    h264_large: list[AccessUnit],
) -> None:
    key = h264_large[0]
    original = nal_units(key)
    first = H264Packetizer().packetize(key)[0][12:]
    assert first[0] == 0x60 | 24, "STAP-A with the highest NRI of its units (SPS/PPS: 3)"
    aggregated = depacketize_h264([b"\x00" * 12 + first])
    assert [h264_type(nal) for nal in aggregated[:2]] == [7, 8]
    assert aggregated == original[: len(aggregated)]
    assert 12 + len(first) <= MAX_PACKET


@pytest.mark.parametrize("how", ["packetize", "learn"])  # learn: for the SDP, no packets
def test_h264_fmtp_from_a_real_keyframe(h264_large: list[AccessUnit], how: str) -> None:
    packetizer = H264Packetizer()
    assert packetizer.fmtp() == "packetization-mode=1"
    sequence = packetizer.next_sequence
    getattr(packetizer, how)(h264_large[0])
    assert (packetizer.next_sequence == sequence) == (how == "learn")
    sps = next(nal for nal in nal_units(h264_large[0]) if h264_type(nal) == 7)
    pps = next(nal for nal in nal_units(h264_large[0]) if h264_type(nal) == 8)
    params = dict(part.split("=", 1) for part in packetizer.fmtp().split(";"))
    assert params["packetization-mode"] == "1"
    # x264 at veryfast with yuv420p writes High profile (100), level 3.1 (31) for 720p25.
    assert params["profile-level-id"] == f"{sps[1]:02X}{sps[2]:02X}{sps[3]:02X}"
    assert params["profile-level-id"].startswith("64") and params["profile-level-id"][4:] == "1F"
    encoded = params["sprop-parameter-sets"].split(",")
    assert [base64.b64decode(value) for value in encoded] == [sps, pps]


# -- H.265 --------------------------------------------------------------------------------------
def test_h265_round_trip_fu_and_ap(h265_units: list[AccessUnit]) -> None:
    packetizer = H265Packetizer()
    kinds: set[int] = set()
    for au in h265_units:
        original = nal_units(au)
        assert any(h265_type(nal) == 35 for nal in original), "x265 aud=1 writes delimiters"
        packets = packetizer.packetize(au)
        kinds |= {(p[12] >> 1) & 0x3F for p in packets}
        assert all(len(p) <= MAX_PACKET for p in packets)
        assert depacketize_h265(packets) == [nal for nal in original if h265_type(nal) != 35]
    assert {48, 49} <= kinds


def test_h265_fu_boundaries_and_ap_header(h265_units: list[AccessUnit]) -> None:
    key = h265_units[0]
    packets = H265Packetizer().packetize(key)
    ap = packets[0][12:]
    assert (ap[0] >> 1) & 0x3F == 48
    assert ap[1] & 0x07 == 1, "the lowest TID of the units (TemporalId 0)"
    assert [h265_type(nal) for nal in depacketize_h265([packets[0]])][:3] == [32, 33, 34]
    irap = next(nal for nal in nal_units(key) if 16 <= h265_type(nal) <= 21)
    payloads = [p[12:] for p in packets]
    kind = h265_type(irap)
    fu = first_fragmented(payloads, lambda p: (p[0] >> 1) & 0x3F == 49 and p[2] & 0x3F == kind, 2)
    assert len(fu) == -(-(len(irap) - 2) // (MAX_PACKET - 15))
    assert [p[2] >> 6 for p in fu] == [0b10] + [0b00] * (len(fu) - 2) + [0b01]
    assert all(p[1] == irap[1] and p[0] & 0x81 == irap[0] & 0x81 for p in fu)
    assert all(len(p) + 12 == MAX_PACKET for p in fu[:-1])
    assert b"".join(p[3:] for p in fu) == irap[2:]


@pytest.mark.parametrize("how", ["packetize", "learn"])
def test_h265_fmtp_from_a_real_keyframe(h265_units: list[AccessUnit], how: str) -> None:
    packetizer = H265Packetizer()
    assert packetizer.fmtp() is None
    getattr(packetizer, how)(h265_units[0])
    fmtp = packetizer.fmtp()
    assert fmtp is not None
    params = dict(part.split("=", 1) for part in fmtp.split(";"))
    assert list(params) == ["sprop-vps", "sprop-sps", "sprop-pps"]
    original = nal_units(h265_units[0])
    for name, kind in (("sprop-vps", 32), ("sprop-sps", 33), ("sprop-pps", 34)):
        assert base64.b64decode(params[name]) == next(n for n in original if h265_type(n) == kind)


# -- JPEG ---------------------------------------------------------------------------------------
def jpeg_segments(data: bytes, marker: int) -> list[bytes]:
    """The bodies of the header segments with `marker`, found by a plain search."""
    bodies = []
    scan = data.find(b"\xff\xda")
    pos = data.find(bytes((0xFF, marker)))
    while 0 < pos <= scan:
        (length,) = struct.unpack_from("!H", data, pos + 2)
        bodies.append(data[pos + 4 : pos + 2 + length])
        pos = data.find(bytes((0xFF, marker)), pos + 2 + length)
    return bodies


def jpeg_segment(data: bytes, marker: int) -> bytes:
    (body,) = jpeg_segments(data, marker)
    return body


def jpeg_fields(packet: bytes) -> tuple[int, int, int, int, int, bytes]:
    """(fragment offset, type, Q, width, height, rest) of an RTP/JPEG packet."""
    word, kind, q, width, height = struct.unpack_from("!IBBBB", packet, 12)
    assert word >> 24 == 0, "type-specific is 0: progressive frames"
    return word & 0xFFFFFF, kind, q, width, height, packet[20:]


def test_jpeg_header_fields_and_quantization_tables() -> None:
    au = mjpeg(thread_count=1)[0]
    packets = JpegPacketizer().packetize(au)
    assert len(packets) > 1
    fields = [jpeg_fields(p) for p in packets]
    assert {(kind, q, w, h) for _, kind, q, w, h, _ in fields} == {(1, 255, 40, 30)}
    rest = fields[0][5]
    mbz, precision, length = struct.unpack_from("!BBH", rest)
    dqt = jpeg_segment(au.data, 0xDB)
    assert dqt[0] == 0 and len(dqt) == 65, "FFmpeg writes one 8-bit table, id 0, for all"
    assert (mbz, precision, length) == (0, 0, 128)
    assert rest[4 : 4 + length] == dqt[1:] + dqt[1:]
    # Fragments follow each other with no gap and rebuild the scan exactly.
    scan = rest[4 + length :] + b"".join(f[5] for f in fields[1:])
    offsets = [f[0] for f in fields]
    sizes = [len(rest[4 + length :])] + [len(f[5]) for f in fields[1:]]
    assert offsets == [sum(sizes[:i]) for i in range(len(sizes))]
    sos = au.data.find(b"\xff\xda")
    assert scan == au.data[sos + 2 + struct.unpack_from("!H", au.data, sos + 2)[0] : -2]
    assert all(len(p) <= MAX_PACKET for p in packets)
    assert [rtp_fields(p)[1] for p in packets] == [False] * (len(packets) - 1) + [True]
    assert all(rtp_fields(p)[2] == 26 for p in packets)


def test_jpeg_restart_interval_gives_type_65_and_restart_header() -> None:
    # PyAV encodes with slice threads by default, and FFmpeg's mjpeg then writes a DRI and
    # restart markers between slices.
    au = mjpeg(640, 480, thread_type="SLICE", thread_count=4)[0]
    (interval,) = struct.unpack("!H", jpeg_segment(au.data, 0xDD))
    assert interval > 0
    packets = JpegPacketizer().packetize(au)
    for packet in packets:
        _, kind, _, width, height, rest = jpeg_fields(packet)
        assert (kind, width, height) == (65, 80, 60)
        assert struct.unpack_from("!HH", rest) == (interval, 0xFFFF)
    assert struct.unpack_from("!BBH", jpeg_fields(packets[0])[5], 4) == (0, 0, 128)


@pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="needs GStreamer")
def test_jpeg_type_0_from_libjpeg_422(tmp_path: Path) -> None:
    data = libjpeg_frames(tmp_path, 1, pixel_format="Y42B")[0]
    layout = parse_jpeg(data)
    assert (layout.type, layout.width, layout.height) == (0, 320, 240)
    tables = {body[0]: body[1:65] for body in jpeg_segments(data, 0xDB)}
    assert layout.quantization_tables == tables[0] + tables[1], "libjpeg: luma 0, chroma 1"
    au = AccessUnit(101, "MJPEG", data, 0, True, 0.0, 320, 240)
    assert {jpeg_fields(p)[1:5] for p in JpegPacketizer().packetize(au)} == {(0, 255, 40, 30)}


def test_jpeg_standard_huffman_tables_match_ffmpeg_default() -> None:
    data = mjpeg(thread_count=1)[0].data
    dht = jpeg_segment(data, 0xC4)
    tables: dict[int, bytes] = {}
    pos = 0
    while pos < len(dht):
        size = 16 + sum(dht[pos + 1 : pos + 17])
        tables[dht[pos]] = dht[pos + 1 : pos + 1 + size]
        pos += 1 + size
    assert tables == STANDARD_HUFFMAN_TABLES


def test_jpeg_new_quantization_tables_are_sent_when_they_change() -> None:
    packetizer = JpegPacketizer()
    for quantizer in (2, 20, 2):
        au = mjpeg(qmin=quantizer, qmax=quantizer, thread_count=1)[0]
        dqt = jpeg_segment(au.data, 0xDB)
        rest = jpeg_fields(packetizer.packetize(au)[0])[5]
        assert rest[4:132] == dqt[1:] * 2


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"options": {}, "thread_count": 1}, "Huffman"),  # FFmpeg's default: optimal tables
        ({"pix_fmt": "yuvj422p"}, "chroma"),  # FFmpeg writes 4:2:2 as Y 2x2, C 1x2
        ({"pix_fmt": "yuvj444p"}, "chroma"),
    ],
)
def test_jpeg_that_rfc_2435_cannot_carry_is_refused(kwargs: dict[str, object], reason: str) -> None:
    au = mjpeg(**kwargs)[0]
    with pytest.raises(ValueError, match=reason):
        JpegPacketizer().packetize(au)


def test_jpeg_larger_than_2040_pixels_is_refused() -> None:
    au = mjpeg(2048, 16)[0]
    with pytest.raises(ValueError, match="2040"):
        JpegPacketizer().packetize(au)
    assert parse_jpeg(mjpeg(2040, 16)[0].data).width == 2040


def test_not_a_jpeg_is_refused() -> None:
    for data in (b"", b"\x00\x00\x01\x65", b"\xff\xd8\xff\xdb\x00\x43\x00", b"\xff\xd8\xff\xd9"):
        with pytest.raises(ValueError):
            JpegPacketizer().packetize(AccessUnit(101, "MJPEG", data, 0, True, 0.0, 8, 8))


# -- RTCP ---------------------------------------------------------------------------------------
def test_ntp_timestamp_matches_ntplib() -> None:
    for unix in (0.0, 1_700_000_000.25, 1_999_999_999.999_999, 2_085_978_496.5):
        ntp = ntplib.system_to_ntp_time(unix)  # the epoch offset from an independent source
        expected = ((int(ntp) & 0xFFFFFFFF) << 32) | int((ntp - int(ntp)) * 2**32)
        assert abs(ntp_timestamp(unix) - expected) <= 1 << 12  # float rounding, < 1 µs
    assert ntp_timestamp(1_700_000_000.25) == ((1_700_000_000 + NTP_UNIX_OFFSET) << 32) | 1 << 30


def test_sender_report_fields_and_counts(h264_small: list[AccessUnit]) -> None:
    packetizer = H264Packetizer(ssrc=0xCAFEBABE, cname="vigil@192.0.2.7")
    sent = [p for au in h264_small[:5] for p in packetizer.packetize(au)]
    report = packetizer.sender_report(1_700_000_000.5, 123_456)
    assert parse_rtcp(report) == [(RTCP_SR, 0xCAFEBABE), (RTCP_SDES, 0xCAFEBABE)]
    first, kind, length, ssrc, msw, lsw, rtp_time, packets, octets = struct.unpack_from(
        "!BBHIIIIII", report
    )
    assert (first, kind, length, ssrc) == (0x80, 200, 6, 0xCAFEBABE)
    assert (msw, lsw) == (1_700_000_000 + NTP_UNIX_OFFSET, 0x80000000)
    assert (rtp_time, packets) == (123_456, len(sent))
    assert octets == sum(len(p) - 12 for p in sent)
    sdes = report[28:]
    assert sdes[:2] == bytes((0x81, 202)) and len(sdes) % 4 == 0
    assert struct.unpack_from("!H", sdes, 2)[0] == len(sdes) // 4 - 1
    cname = b"vigil@192.0.2.7"
    assert sdes[8:10] == bytes((1, len(cname))) and sdes[10 : 10 + len(cname)] == cname
    assert set(sdes[10 + len(cname) :]) == {0}, "the item list ends with nulls"


def test_bye_is_sr_sdes_bye() -> None:
    packetizer = H265Packetizer(ssrc=5)
    assert [p.packet_type for p in parse_rtcp(packetizer.bye(0.0, 0))] == [200, 202, 203]
    assert parse_rtcp(packetizer.bye(0.0, 0))[-1] == RtcpPacket(RTCP_BYE, 5)


def test_sdes_padding_for_every_length() -> None:
    for size in range(1, 12):
        sdes = build_sdes_cname(1, "x" * size)
        assert len(sdes) % 4 == 0 and sdes[10 + size] == 0
        assert parse_rtcp(sdes) == [(RTCP_SDES, 1)]
    with pytest.raises(ValueError):
        build_sdes_cname(1, "x" * 256)


def receiver_report(reporter: int, source: int) -> bytes:
    """An RR with one report block, laid out field by field from RFC 3550 §6.4.2."""
    block = struct.pack("!IIIIII", source, (3 << 24) | 17, 70_000, 12, 0x12345678, 655)
    return struct.pack("!BBHI", 0x81, 201, 7, reporter) + block


def test_parse_receiver_reports() -> None:
    assert parse_rtcp(receiver_report(0xDEAD, 0xBEEF)) == [(RTCP_RR, 0xDEAD)]
    empty_rr = struct.pack("!BBHI", 0x80, 201, 1, 42)  # a keep-alive: no report blocks
    compound = empty_rr + build_sdes_cname(42, "client")
    assert parse_rtcp(compound) == [(RTCP_RR, 42), (RTCP_SDES, 42)]


@pytest.mark.parametrize(
    "data",
    [
        b"\x81\xc9\x00",  # shorter than a header
        b"\x41\xc9\x00\x01\x00\x00\x00\x2a",  # version 1
        b"\x80\x60\x00\x01\x00\x00\x00\x2a",  # an RTP payload type, not RTCP
        b"\x81\xc9\x00\x07\x00\x00\x00\x2a",  # length beyond the datagram
    ],
)
def test_malformed_rtcp_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_rtcp(data)


def iter_packets(packetizer: Packetizer, aus: list[AccessUnit]) -> Iterator[bytes]:
    for au in aus:
        yield from packetizer.packetize(au)


def test_octet_count_excludes_headers_across_access_units(h265_units: list[AccessUnit]) -> None:
    packetizer = H265Packetizer()
    sent = list(iter_packets(packetizer, h265_units))
    assert packetizer.packet_count == len(sent)
    assert packetizer.octet_count == sum(len(p) for p in sent) - 12 * len(sent)
