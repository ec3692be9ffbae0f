"""H.265 over RTP (RFC 7798): single NAL unit packets, aggregation packets and fragmentation units.

No DONL fields: the stream is sent in decoding order (sprop-max-don-diff is 0, the default).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

from vigil.media.frames import AccessUnit
from vigil.media.rtp.h264 import DYNAMIC_PAYLOAD_TYPE, split_annex_b
from vigil.media.rtp.packet import Fragment, NalPacketizer, fragment_nal

NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35
AGGREGATION_PACKET = 48
FRAGMENTATION_UNIT = 49
AP_HEADER = 2  # the aggregation packet's payload header

_SIZE = struct.Struct("!H")


def _aggregate(group: list[memoryview]) -> Fragment:
    """One NAL unit as it is, or several in an AP (RFC 7798 §4.4.2)."""
    if len(group) == 1:
        return b"", group[0]
    forbidden = 0
    layer = 63
    tid = 7
    pieces: list[bytes | memoryview] = [b""]
    for nal in group:
        first, second = nal[0], nal[1]
        forbidden |= first & 0x80
        layer = min(layer, ((first & 0x01) << 5) | (second >> 3))
        tid = min(tid, second & 0x07)
        pieces.append(_SIZE.pack(len(nal)))
        pieces.append(nal)
    # The AP header: F if any unit has it, the lowest LayerId and TID of the units.
    pieces[0] = bytes(
        (forbidden | (AGGREGATION_PACKET << 1) | (layer >> 5), ((layer & 0x1F) << 3) | tid)
    )
    return b"", b"".join(pieces)


def _fragment(nal: memoryview, limit: int, fragments: list[Fragment]) -> None:
    """FUs of one NAL unit (RFC 7798 §4.4.3): its header, retyped 49, then an FU header."""
    first = (nal[0] & 0x81) | (FRAGMENTATION_UNIT << 1)
    nal_type = (nal[0] >> 1) & 0x3F
    fragment_nal(
        nal, limit, fragments, prefix=bytes((first, nal[1])), nal_type=nal_type, header_size=2
    )


class H265Packetizer(NalPacketizer):
    """RFC 7798 for one H.265 stream.

    NAL units that fit are aggregated into APs while they fit together; larger ones are split
    into FUs; access unit delimiters are dropped as for H.264. The latest VPS, SPS and PPS seen
    are kept for the SDP.
    """

    payload_type = DYNAMIC_PAYLOAD_TYPE
    encoding_name = "H265"
    aggregate_header = AP_HEADER
    _aggregate = staticmethod(_aggregate)
    _fragment = staticmethod(_fragment)
    min_payload_size = 4  # an FU: payload header, FU header, one byte
    vps: bytes | None = None  # set on the instance when the stream carries one
    sps: bytes | None = None
    pps: bytes | None = None

    def _units(self, au: AccessUnit) -> Iterator[memoryview]:
        """The NAL units to send, remembering the parameter sets for the SDP."""
        for nal in split_annex_b(au.data):
            if len(nal) < 2:  # shorter than a NAL unit header: junk, not a unit
                continue
            nal_type = (nal[0] >> 1) & 0x3F
            if nal_type == NAL_AUD:
                continue
            if NAL_VPS <= nal_type <= NAL_PPS:
                self._keep_parameter_set(nal_type, nal)
            yield nal

    def _keep_parameter_set(self, nal_type: int, nal: memoryview) -> None:
        if nal_type == NAL_VPS:
            if nal != self.vps:
                self.vps = nal.tobytes()
        elif nal_type == NAL_SPS:
            if nal != self.sps:
                self.sps = nal.tobytes()
        elif nal != self.pps:
            self.pps = nal.tobytes()

    def fmtp(self) -> str | None:
        parts = [
            f"{name}={base64.b64encode(value).decode()}"
            for name, value in (
                ("sprop-vps", self.vps),
                ("sprop-sps", self.sps),
                ("sprop-pps", self.pps),
            )
            if value is not None
        ]
        return ";".join(parts) or None
