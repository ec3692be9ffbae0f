"""RTP packet headers and the per-stream packet state (RFC 3550), and RTCP reports.

`RtpPacketizer` is the base of every payload format: it owns the SSRC, the sequence numbers and
the packet/octet counts, and turns a payload format's fragments into complete packets in one
place (`_emit`). The RTP timestamp of an access unit is its `pts` modulo 2^32 with no random
offset, so whoever writes `RTP-Info: rtptime=` or calls `sender_report()` computes it from the
pts the same way.
"""

from __future__ import annotations

import collections
import math
import secrets
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

from vigil.media.frames import RTP_CLOCK, AccessUnit

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
DEFAULT_MAX_PACKET_SIZE = 1400  # whole RTP packet; leaves room for IP/UDP and a VPN on 1500 MTU
MAX_PACKET_SIZE = 65_507  # the largest UDP payload over IPv4
MARKER = 0x80

# Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_OFFSET = 2_208_988_800

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204
SDES_CNAME = 1

_RTP_HEADER = struct.Struct("!BBHII")
_RTCP_SR = struct.Struct("!BBHIIIIII")
_RTCP_HEADER = struct.Struct("!BBH")
_SSRC = struct.Struct("!I")

# One fragment of a payload format: (payload header bytes, payload body). They are joined with
# the RTP header in a single copy, so a payload format never copies the body on its own.
Fragment = tuple[bytes, bytes | memoryview]


def ntp_timestamp(unix_seconds: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point, era wrapping) of a Unix time."""
    whole = math.floor(unix_seconds)
    fraction = min(int((unix_seconds - whole) * 4_294_967_296.0), 0xFFFFFFFF)
    return (((whole + NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32) | fraction


def build_sender_report(
    ssrc: int, ntp_seconds: float, rtp_timestamp: int, packet_count: int, octet_count: int
) -> bytes:
    """An RTCP SR without report blocks (RFC 3550 §6.4.1): a sender that receives nothing."""
    ntp = ntp_timestamp(ntp_seconds)
    return _RTCP_SR.pack(
        RTP_VERSION << 6,
        RTCP_SR,
        6,  # length in 32-bit words minus one: 28 bytes
        ssrc,
        ntp >> 32,
        ntp & 0xFFFFFFFF,
        rtp_timestamp & 0xFFFFFFFF,
        packet_count & 0xFFFFFFFF,
        octet_count & 0xFFFFFFFF,
    )


def build_sdes_cname(ssrc: int, cname: str) -> bytes:
    """An RTCP SDES packet with one chunk carrying the CNAME (RFC 3550 §6.5)."""
    text = cname.encode()
    if not 0 < len(text) <= 255:
        raise ValueError("a CNAME is 1 to 255 bytes of UTF-8")
    item = bytes((SDES_CNAME, len(text))) + text
    # The item list ends with at least one null octet, then pads the chunk to 32 bits.
    chunk = _SSRC.pack(ssrc) + item + b"\x00" * (4 - (4 + len(item)) % 4)
    return _RTCP_HEADER.pack(RTP_VERSION << 6 | 1, RTCP_SDES, len(chunk) // 4) + chunk


def build_bye(ssrc: int) -> bytes:
    """An RTCP BYE for one source (RFC 3550 §6.6), without a reason."""
    return _RTCP_HEADER.pack(RTP_VERSION << 6 | 1, RTCP_BYE, 1) + _SSRC.pack(ssrc)


class RtcpPacket(NamedTuple):
    packet_type: int  # RTCP_SR, RTCP_RR, ...
    ssrc: int | None  # the sender of the packet (first SSRC/CSRC for SDES and BYE), if any


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """The packets of a (compound) RTCP datagram: enough to tell a receiver report from noise.

    Raises ValueError on anything that is not well-formed RTCP version 2, so a caller can
    count and drop it.
    """
    packets: list[RtcpPacket] = []
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < 4:
            raise ValueError("truncated RTCP header")
        first, packet_type, length = _RTCP_HEADER.unpack_from(data, pos)
        if first >> 6 != RTP_VERSION:
            raise ValueError("not RTCP version 2")
        if not 192 <= packet_type <= 223:
            raise ValueError(f"not an RTCP packet type: {packet_type}")
        size = (length + 1) * 4
        if pos + size > end:
            raise ValueError("truncated RTCP packet")
        ssrc = _SSRC.unpack_from(data, pos + 4)[0] if size >= 8 else None
        packets.append(RtcpPacket(packet_type, ssrc))
        pos += size
    return packets


class RtpPacketizer(ABC):
    """The state one stream's packets share: SSRC, sequence number, counts for RTCP.

    Subclasses set `payload_type` and `encoding_name`, implement `packetize()` and `fmtp()`,
    and emit packets through `_emit()` so the sequence and the counts stay right.
    """

    payload_type: int
    encoding_name: str
    clock_rate: int = RTP_CLOCK
    min_payload_size: int = 16  # subclasses raise it to what one fragment of theirs needs

    def __init__(
        self,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        ssrc: int | None = None,
        initial_sequence: int | None = None,
        cname: str | None = None,
    ) -> None:
        if not RTP_HEADER_SIZE + self.min_payload_size <= max_packet_size <= MAX_PACKET_SIZE:
            raise ValueError(
                f"max packet size must be {RTP_HEADER_SIZE + self.min_payload_size}"
                f"..{MAX_PACKET_SIZE} bytes, not {max_packet_size}"
            )
        self.max_packet_size = max_packet_size
        self.max_payload_size = max_packet_size - RTP_HEADER_SIZE
        # Random SSRC and first sequence number (RFC 3550 §5.1, §8): a client that saw an earlier
        # stream must not mistake this one's packets for it.
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc & 0xFFFFFFFF
        self._sequence = secrets.randbits(16) if initial_sequence is None else initial_sequence
        self._sequence &= 0xFFFF
        self.cname = cname if cname is not None else f"vigil-{self.ssrc:08x}"
        self._sdes = build_sdes_cname(self.ssrc, self.cname)  # validates the CNAME now
        self.packet_count = 0
        self.octet_count = 0  # payload octets, headers excluded (RFC 3550 §6.4.1)

    def bye(self, ntp_seconds: float, rtp_timestamp: int) -> bytes:
        """The compound RTCP packet that ends the stream for a receiver: SR, SDES, BYE.

        A receiver (FFmpeg's, for one) ends its input on it instead of waiting for a timeout.
        """
        return self.sender_report(ntp_seconds, rtp_timestamp) + build_bye(self.ssrc)

    @abstractmethod
    def packetize(self, au: AccessUnit) -> list[bytes]:
        """Complete RTP packets (12-byte header + payload), marker bit on the last one."""

    @abstractmethod
    def fmtp(self) -> str | None:
        """The SDP `a=fmtp:` value (parameter sets known from the last keyframe), or None."""

    @property
    def next_sequence(self) -> int:
        return self._sequence

    def sender_report(self, ntp_seconds: float, rtp_timestamp: int) -> bytes:
        """A compound RTCP packet: SR with this stream's counts, then SDES with the CNAME.

        `ntp_seconds` is the wall clock as Unix seconds (`time.time()`), `rtp_timestamp` the RTP
        time of that same instant.
        """
        return (
            build_sender_report(
                self.ssrc, ntp_seconds, rtp_timestamp, self.packet_count, self.octet_count
            )
            + self._sdes
        )

    def _emit(self, fragments: Sequence[Fragment], timestamp: int) -> list[bytes]:
        """Complete RTP packets for one access unit's fragments; the marker on the last."""
        count = len(fragments)
        if not count:
            return []
        pack = _RTP_HEADER.pack
        first = RTP_VERSION << 6
        payload_type = self.payload_type
        ssrc = self.ssrc
        timestamp &= 0xFFFFFFFF
        sequence = self._sequence
        packets: list[bytes] = []
        append = packets.append
        last = count - 1
        for index in range(last):
            prefix, body = fragments[index]
            append(b"".join((pack(first, payload_type, sequence, timestamp, ssrc), prefix, body)))
            sequence = (sequence + 1) & 0xFFFF
        prefix, body = fragments[last]
        header = pack(first, payload_type | MARKER, sequence, timestamp, ssrc)
        append(b"".join((header, prefix, body)))
        self._sequence = (sequence + 1) & 0xFFFF
        self.packet_count += count
        self.octet_count += sum(map(len, packets)) - RTP_HEADER_SIZE * count
        return packets


def group_nal_units(
    nals: Iterable[memoryview],
    limit: int,
    aggregate_header: int,
    aggregate: Callable[[list[memoryview]], Fragment],
    fragment: Callable[[memoryview, int, list[Fragment]], None],
) -> list[Fragment]:
    """Payloads for an access unit's NAL units (H.264 and H.265 alike).

    Consecutive NAL units small enough to share one packet go into an aggregation packet
    (STAP-A / AP, `aggregate_header` bytes plus a 2-byte size per unit); a unit larger than
    `limit` is split into fragmentation units; the rest travel alone.
    """
    fragments: list[Fragment] = []
    group: list[memoryview] = []
    group_size = aggregate_header
    for nal in nals:
        size = len(nal)
        if size > limit:
            if group:
                fragments.append(aggregate(group))
                group, group_size = [], aggregate_header
            fragment(nal, limit, fragments)
        elif group_size + 2 + size <= limit:
            group.append(nal)
            group_size += 2 + size
        else:
            if group:
                fragments.append(aggregate(group))
            group, group_size = [nal], aggregate_header + 2 + size
    if group:
        fragments.append(aggregate(group))
    return fragments


def fragment_nal(
    nal: memoryview,
    limit: int,
    fragments: list[Fragment],
    *,
    prefix: bytes,
    nal_type: int,
    header_size: int,
) -> None:
    """Fragmentation units of a NAL unit larger than `limit` (H.264 FU-A, H.265 FU alike):
    each payload is `prefix` (the FU indicator or payload header), an FU header with the start
    and end bits and the unit's type, then a piece of the unit after its `header_size`-byte
    header. The unit is larger than a packet, so there are at least two: never S and E at once."""
    start = prefix + bytes((0x80 | nal_type,))
    middle = prefix + bytes((nal_type,))
    end = prefix + bytes((0x40 | nal_type,))
    step = limit - len(start)
    size = len(nal)
    fragments.append((start, nal[header_size : header_size + step]))
    offset = header_size + step
    while offset + step < size:
        fragments.append((middle, nal[offset : offset + step]))
        offset += step
    fragments.append((end, nal[offset:]))


class NalPacketizer(RtpPacketizer):
    """H.264 and H.265 alike: split the access unit, group its NAL units, emit the packets.

    Subclasses give `_units()` (the NAL units to send), the aggregation header size and the
    codec's aggregation and fragmentation payload builders.
    """

    aggregate_header: int
    _aggregate: Callable[[list[memoryview]], Fragment]
    _fragment: Callable[[memoryview, int, list[Fragment]], None]

    def packetize(self, au: AccessUnit) -> list[bytes]:
        fragments = group_nal_units(
            self._units(au),
            self.max_payload_size,
            self.aggregate_header,
            self._aggregate,
            self._fragment,
        )
        return self._emit(fragments, au.pts)

    def learn(self, au: AccessUnit) -> None:
        # Walking the units is what remembers the parameter sets; nothing is packetized.
        collections.deque(self._units(au), maxlen=0)

    @abstractmethod
    def _units(self, au: AccessUnit) -> Iterator[memoryview]:
        """The NAL units of `au` to send (remembering parameter sets for the SDP)."""
