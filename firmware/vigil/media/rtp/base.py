"""The packetizer interface the StreamHub and the RTSP server rely on."""

from __future__ import annotations

from typing import Protocol

from vigil.media.frames import AccessUnit


class Packetizer(Protocol):
    """Turns access units of one stream into RTP packets, once, for every client.

    One instance per stream: it owns the SSRC, the sequence numbers and the packet/octet
    counters that RTCP sender reports need.
    """

    payload_type: int  # 96 for H.264/H.265 (dynamic), 26 for JPEG
    encoding_name: str  # SDP rtpmap name: "H264", "H265", "JPEG"
    clock_rate: int  # 90000
    ssrc: int

    def packetize(self, au: AccessUnit) -> list[bytes]:
        """Complete RTP packets (12-byte header + payload), marker bit on the last one."""
        ...

    def learn(self, au: AccessUnit) -> None:
        """Take what the SDP needs from `au` (its parameter sets), without packetizing it."""
        ...

    def fmtp(self) -> str | None:
        """The SDP `a=fmtp:` value (parameter sets known from the last keyframe), or None."""
        ...

    @property
    def next_sequence(self) -> int:
        """The sequence number the next packet will carry (for RTSP `RTP-Info`)."""
        ...

    def sender_report(self, ntp_seconds: float, rtp_timestamp: int) -> bytes:
        """An RTCP SR for this stream: the wall time <-> RTP time mapping and the counts."""
        ...
