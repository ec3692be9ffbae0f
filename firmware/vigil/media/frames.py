"""What flows through the media plane: encoded access units, and what is known of a stream."""

from __future__ import annotations

from dataclasses import dataclass

CODECS = ("H264", "H265", "MJPEG")
RTP_CLOCK = 90_000  # video RTP clock (RFC 3551)


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One encoded picture.

    `data` is Annex B (start-code prefixed NAL units) for H.264/H.265 and a complete JFIF image
    for MJPEG. A keyframe of H.264/H.265 carries its parameter sets in band (SPS/PPS, and VPS
    for H.265), so a client can start on it without the SDP.
    """

    stream_id: int
    codec: str
    data: bytes
    pts: int  # in RTP_CLOCK units, monotonic per stream
    keyframe: bool
    captured_at: float  # time.monotonic() when the sensor delivered the frame
    width: int
    height: int
