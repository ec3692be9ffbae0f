"""RTP: payload formats (RFC 6184 H.264, RFC 7798 H.265, RFC 2435 JPEG) and RTCP."""

from __future__ import annotations

from vigil.media.rtp.base import Packetizer
from vigil.media.rtp.h264 import H264Packetizer
from vigil.media.rtp.h265 import H265Packetizer
from vigil.media.rtp.jpeg import JpegPacketizer
from vigil.media.rtp.packet import DEFAULT_MAX_PACKET_SIZE, RtpPacketizer

_PACKETIZERS: dict[str, type[RtpPacketizer]] = {
    "H264": H264Packetizer,
    "H265": H265Packetizer,
    "MJPEG": JpegPacketizer,
}


def make_packetizer(
    codec: str, *, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE, ssrc: int | None = None
) -> Packetizer:
    """A new packetizer (its own SSRC and sequence) for a stream of `codec` ("H264", "H265",
    "MJPEG", as in `vigil.media.frames.CODECS`)."""
    try:
        kind = _PACKETIZERS[codec]
    except KeyError:
        raise ValueError(f"no RTP payload format for codec {codec!r}") from None
    return kind(max_packet_size=max_packet_size, ssrc=ssrc)
