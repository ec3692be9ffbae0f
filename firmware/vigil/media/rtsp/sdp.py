"""The SDP (RFC 4566) a DESCRIBE answers with: one video track, described by its packetizer."""

from __future__ import annotations

from vigil.media.rtp.base import Packetizer

TRACK_CONTROL = "trackID=1"


def build_sdp(
    packetizer: Packetizer,
    *,
    stream_id: int,
    session_id: int,
    server_address: str,
    width: int = 0,
    height: int = 0,
    frame_rate: float = 0.0,
) -> str:
    """Session-level aggregate control (`a=control:*`) and one media section, `trackID=1`.

    `c=IN IP4 0.0.0.0` because the media address is decided per SETUP: the client's own, or the
    stream's multicast group when the client asks for multicast and it is enabled.
    """
    family = "IP6" if ":" in server_address else "IP4"
    pt = packetizer.payload_type
    lines = [
        "v=0",
        f"o=- {session_id} 1 IN {family} {server_address}",
        f"s=Vigil stream {stream_id}",
        "c=IN IP4 0.0.0.0",
        "t=0 0",
        "a=control:*",
        f"m=video 0 RTP/AVP {pt}",
        f"a=rtpmap:{pt} {packetizer.encoding_name}/{packetizer.clock_rate}",
    ]
    fmtp = packetizer.fmtp()
    if fmtp:
        lines.append(f"a=fmtp:{pt} {fmtp}")
    if frame_rate >= 1:
        lines.append(f"a=framerate:{round(frame_rate)}")
    if width and height:
        lines.append(f"a=x-dimensions:{width},{height}")
    lines.append(f"a=control:{TRACK_CONTROL}")
    return "\r\n".join(lines) + "\r\n"
