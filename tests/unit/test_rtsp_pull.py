"""RtspPull's depacketizer and SDP/SPS readers, against Vigil's own packetizers and encoder:
interleaved RTP in, the same Annex B access units out (H.264 and H.265; single NAL units,
aggregation and fragmentation packets), however the bytes are split across reads."""

from __future__ import annotations

import struct

import pytest

from tests.recording import encode_units
from vigil.media.frames import AccessUnit
from vigil.media.rtp import make_packetizer
from vigil.media.rtsp_pull import RtspPull, parse_sdp
from vigil.media.sps import h264_size, h265_size
from vigil.record.fmp4 import iter_nal_units, nal_type


def interleave(packets: list[bytes], channel: int = 0) -> bytes:
    return b"".join(struct.pack(">BBH", 0x24, channel, len(p)) + p for p in packets)


def nals(codec: str, au: AccessUnit) -> list[bytes]:
    """The NAL units of a unit as sent over RTP (access unit delimiters are not sent)."""
    aud = 9 if codec == "H264" else 35
    return [n for n in iter_nal_units(au.data) if nal_type(codec, n) != aud]


@pytest.mark.parametrize("codec", ["H264", "H265"])
@pytest.mark.parametrize("chunk", [1 << 20, 1000, 7])
def test_units_come_out_as_they_went_in(codec: str, chunk: int) -> None:
    units = encode_units(1.2, codec, gop=10, width=320, height=240)
    packetizer = make_packetizer(codec, max_packet_size=600)  # plenty of FU and aggregates
    stream = interleave([p for au in units for p in packetizer.packetize(au)])
    stream = interleave([b"\x80\xc8" + bytes(26)], channel=1) + stream  # an RTCP packet too
    received: list[tuple[bytes, int, bool]] = []
    pull = RtspPull("rtsp://camera/x", lambda d, ts, key, _t: received.append((d, ts, key)), print)
    pull._payload_type = packetizer.payload_type
    pull._payload = pull._h265_payload if codec == "H265" else pull._h264_payload
    for offset in range(0, len(stream), chunk):
        pull.data_received(stream[offset : offset + chunk])
    assert len(received) == len(units)
    for au, (data, timestamp, key) in zip(units, received, strict=True):
        assert list(iter_nal_units(data)) == nals(codec, au)
        assert timestamp == au.pts & 0xFFFFFFFF and key == au.keyframe


def test_a_lost_packet_drops_only_its_unit() -> None:
    units = encode_units(0.4, gop=5, width=320, height=240)
    packetizer = make_packetizer("H264", max_packet_size=600)
    per_unit = [packetizer.packetize(au) for au in units]
    assert len(per_unit[3]) > 2
    del per_unit[3][1]  # a fragment in the middle of unit 3
    received: list[int] = []
    pull = RtspPull("rtsp://camera/x", lambda _d, ts, _k, _t: received.append(ts), print)
    pull._payload_type = packetizer.payload_type
    pull.data_received(interleave([p for packets in per_unit for p in packets]))
    assert received == [au.pts for n, au in enumerate(units) if n != 3]


@pytest.mark.parametrize(("codec", "size"), [("H264", (640, 360)), ("H265", (320, 240))])
def test_picture_size_from_the_sps(codec: str, size: tuple[int, int]) -> None:
    (au, *_) = encode_units(0.04, codec, width=size[0], height=size[1])
    kind = 7 if codec == "H264" else 33
    sps = next(n for n in iter_nal_units(au.data) if nal_type(codec, n) == kind)
    assert (h264_size if codec == "H264" else h265_size)(sps) == size


def test_sdp_track_and_its_parameter_sets() -> None:
    sdp = (
        "v=0\r\nm=audio 0 RTP/AVP 0\r\na=control:trackID=0\r\n"
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAH5WoFAFuQA==,aM48gA==\r\n"
        "a=control:trackID=1\r\n"
    )
    track = parse_sdp(sdp, "rtsp://camera/Streaming/Channels/101/")
    assert track.codec == "H264" and track.payload_type == 96
    assert track.control == "rtsp://camera/Streaming/Channels/101/trackID=1"
    assert track.parameter_sets.count(b"\x00\x00\x00\x01") == 2
