"""H.264 over RTP (RFC 6184, packetization-mode=1): single NAL units, STAP-A and FU-A.

Also the Annex B splitter the H.265 payload format shares.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

from vigil.media.frames import AccessUnit
from vigil.media.rtp.packet import Fragment, NalPacketizer, fragment_nal

START_CODE = b"\x00\x00\x01"
DYNAMIC_PAYLOAD_TYPE = 96

NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
STAP_A = 24
FU_A = 28
STAP_A_HEADER = 1  # the STAP-A NAL header byte

_SIZE = struct.Struct("!H")


def split_annex_b(data: bytes) -> list[memoryview]:
    """The NAL units of an Annex B byte stream, as views into `data` (no copies).

    Start codes are found with `bytes.find`; the zero byte that makes a start code four bytes
    long (or trailing_zero_8bits) is not part of the NAL unit before it.
    """
    view = memoryview(data)
    find = data.find
    units: list[memoryview] = []
    start = find(START_CODE)
    while start >= 0:
        begin = start + 3
        start = find(START_CODE, begin)
        end = len(data) if start < 0 else start
        if end > begin and data[end - 1] == 0:
            end -= 1
            if end > begin and data[end - 1] == 0:
                # More than one zero: rare padding; strip the run in C rather than byte by byte.
                end = begin + len(data[begin:end].rstrip(b"\x00"))
        if end > begin:
            units.append(view[begin:end])
    return units


def _aggregate(group: list[memoryview]) -> Fragment:
    """One NAL unit as it is, or several in a STAP-A (RFC 6184 §5.7.1)."""
    if len(group) == 1:
        return b"", group[0]
    forbidden = 0
    nri = 0
    pieces: list[bytes | memoryview] = [b""]
    for nal in group:
        header = nal[0]
        forbidden |= header & 0x80
        nri = max(nri, header & 0x60)
        pieces.append(_SIZE.pack(len(nal)))
        pieces.append(nal)
    # The STAP-A header: F if any unit has it, the highest NRI of the units (§5.7).
    pieces[0] = bytes((forbidden | nri | STAP_A,))
    return b"", b"".join(pieces)


def _fragment(nal: memoryview, limit: int, fragments: list[Fragment]) -> None:
    """FU-A fragments of one NAL unit (RFC 6184 §5.8); its header byte becomes the FU bytes."""
    indicator = bytes(((nal[0] & 0xE0) | FU_A,))
    fragment_nal(nal, limit, fragments, prefix=indicator, nal_type=nal[0] & 0x1F, header_size=1)


class H264Packetizer(NalPacketizer):
    """RFC 6184 packetization-mode=1 for one H.264 stream.

    NAL units that fit are aggregated into STAP-A packets while they fit together (the SPS, PPS
    and SEI before an IDR slice travel in one packet); a NAL unit larger than a packet is split
    into FU-A fragments; access unit delimiters are dropped (RFC 6184 §5.3 leaves them to the
    marker bit). The latest SPS and PPS seen are kept for the SDP.
    """

    payload_type = DYNAMIC_PAYLOAD_TYPE
    encoding_name = "H264"
    aggregate_header = STAP_A_HEADER
    _aggregate = staticmethod(_aggregate)
    _fragment = staticmethod(_fragment)
    min_payload_size = 3  # an FU-A: indicator, header, one byte
    sps: bytes | None = None  # set on the instance when the stream carries one
    pps: bytes | None = None

    def _units(self, au: AccessUnit) -> Iterator[memoryview]:
        """The NAL units to send, remembering the parameter sets for the SDP."""
        for nal in split_annex_b(au.data):
            nal_type = nal[0] & 0x1F
            if nal_type == NAL_AUD:
                continue
            if nal_type == NAL_SPS:
                if nal != self.sps:
                    self.sps = nal.tobytes()
            elif nal_type == NAL_PPS and nal != self.pps:
                self.pps = nal.tobytes()
            yield nal

    def fmtp(self) -> str:
        parts = ["packetization-mode=1"]
        if self.sps is not None and len(self.sps) >= 4:
            # profile_idc, the constraint flags and level_idc: the three bytes after the header.
            parts.append(f"profile-level-id={self.sps[1:4].hex().upper()}")
            sets = [base64.b64encode(self.sps).decode()]
            if self.pps is not None:
                sets.append(base64.b64encode(self.pps).decode())
            parts.append("sprop-parameter-sets=" + ",".join(sets))
        return ";".join(parts)
