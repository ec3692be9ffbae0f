"""JPEG over RTP (RFC 2435): a baseline JFIF frame sent as fragments of its scan, tables in band.

RFC 2435 carries no JPEG headers: the receiver rebuilds them from the type (sampling), the size
in 8-pixel blocks, the quantization tables (sent with every frame, Q=255) and the restart
interval, and it always assumes the standard Huffman tables of T.81 Annex K.3. So a frame this
packetizer accepts must be baseline, three components Y/Cb/Cr with 4:2:2 or 4:2:0 sampling, at
most 2040x2040 pixels, and coded with the standard Huffman tables. FFmpeg's `mjpeg` encoder
gives that with `huffman=default` (its default, `optimal`, is turned off by PyAV's default
slice threading, but not with one thread); anything else raises ValueError rather than send
pictures no receiver can decode.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vigil.media.frames import AccessUnit
from vigil.media.rtp.packet import Fragment, RtpPacketizer

JPEG_PAYLOAD_TYPE = 26  # static (RFC 3551)
MAX_DIMENSION = 2040  # 255 blocks of 8 pixels: the width and height fields are one byte each
DYNAMIC_TABLES_Q = 255  # Q 128-255: tables in band; 255: a receiver must not cache them
MAX_FRAGMENT_OFFSET = 0xFFFFFF

TYPE_422 = 0  # luma sampled 2x1 (RFC 2435 §4.1)
TYPE_420 = 1  # luma sampled 2x2
TYPE_RESTART = 64  # added to the type when the restart marker header is present

SOI = 0xD8
EOI = 0xD9
SOS = 0xDA
DQT = 0xDB
DRI = 0xDD
DHT = 0xC4
SOF0 = 0xC0
# Other start-of-frame markers: progressive, lossless, extended, arithmetic. Not baseline.
OTHER_SOF = frozenset((0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
# Markers that stand alone, without a length: TEM, RSTn, SOI.
STANDALONE = frozenset((0x01, *range(0xD0, 0xD8), SOI))

# T.81 Annex K.3, as a DHT segment codes them (16 code-length counts, then the symbols), keyed
# by table class << 4 | table id. The receiver rebuilds exactly these.
STANDARD_HUFFMAN_TABLES: dict[int, bytes] = {
    0x00: bytes.fromhex("00010501010101010100000000000000000102030405060708090a0b"),
    0x01: bytes.fromhex("00030101010101010101010000000000000102030405060708090a0b"),
    0x10: bytes.fromhex(
        "0002010303020403050504040000017d"
        "01020300041105122131410613516107227114328191a1082342b1c11552d1f024336272820"
        "90a161718191a25262728292a3435363738393a434445464748494a535455565758595a6364"
        "65666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a"
        "8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8"
        "e9eaf1f2f3f4f5f6f7f8f9fa"
    ),
    0x11: bytes.fromhex(
        "00020102040403040705040400010277"
        "000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a1"
        "62434e125f11718191a262728292a35363738393a434445464748494a535455565758595a63"
        "6465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a"
        "6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7"
        "e8e9eaf2f3f4f5f6f7f8f9fa"
    ),
}
# The scan's Huffman table selectors the receiver writes: Y uses tables 0, Cb and Cr tables 1.
STANDARD_SCAN_SELECTORS = (0x00, 0x11, 0x11)

# The main header (RFC 2435 §3.1) is type-specific (0) and the fragment offset in one 32-bit
# word, then type, Q, width, height; the restart marker header (§3.1.7) is interval, F/L/count.
_U32 = struct.Struct("!I")
_MAIN_SIZE = 8
_RESTART = struct.Struct("!HH")
_QUANT_HEADER = struct.Struct("!BBH")  # MBZ, precision, length
_U16 = struct.Struct("!H")
# F=1, L=1, count 0x3FFF: fragments are not aligned to restart intervals (RFC 2435 §3.1.7).
_UNALIGNED_RESTART = 0xFFFF


@dataclass(frozen=True, slots=True)
class JpegLayout:
    """What RFC 2435 needs from one frame's headers."""

    type: int  # TYPE_422 or TYPE_420, plus TYPE_RESTART with a restart interval
    width: int  # pixels
    height: int
    restart_interval: int  # MCUs between restart markers; 0 for none
    precision: int  # bit 0: the luma table has 16-bit entries; bit 1: the chroma table does
    quantization_tables: bytes  # luma table then chroma table, zigzag order as in DQT
    scan_start: int  # offset of the entropy-coded data in the frame


def parse_jpeg(data: bytes) -> JpegLayout:
    """The RFC 2435 layout of a baseline JFIF frame; ValueError if RFC 2435 cannot carry it."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG frame: no SOI marker")
    tables: dict[int, tuple[int, bytes]] = {}  # id -> (precision, entries)
    huffman: dict[int, bytes] = {}
    frame: tuple[int, int, list[tuple[int, int, int]]] | None = None  # height, width, components
    restart_interval = 0
    end = len(data)
    pos = 2
    while True:
        if pos + 2 > end:
            raise ValueError("JPEG frame ends before its scan")
        if data[pos] != 0xFF:
            raise ValueError(f"JPEG marker expected at offset {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in STANDALONE:
            pos += 2
            continue
        if marker == EOI:
            raise ValueError("JPEG frame ends before its scan")
        if pos + 4 > end:
            raise ValueError("truncated JPEG segment")
        length = _U16.unpack_from(data, pos + 2)[0]
        body, body_end = pos + 4, pos + 2 + length
        if length < 2 or body_end > end:
            raise ValueError("truncated JPEG segment")
        if marker == DQT:
            _read_quantization_tables(data, body, body_end, tables)
        elif marker == DHT:
            _read_huffman_tables(data, body, body_end, huffman)
        elif marker == SOF0:
            frame = _read_frame_header(data, body, body_end)
        elif marker in OTHER_SOF:
            raise ValueError("RFC 2435 carries baseline (SOF0) JPEG only")
        elif marker == DRI:
            if length != 4:
                raise ValueError("bad DRI segment")
            restart_interval = _U16.unpack_from(data, body)[0]
        elif marker == SOS:
            _check_scan_header(data, body, body_end)
            scan_start = body_end
            break
        pos = body_end

    if frame is None:
        raise ValueError("JPEG frame has no SOF0 header before its scan")
    height, width, components = frame
    for key, table in huffman.items():
        standard = STANDARD_HUFFMAN_TABLES.get(key)
        if standard is not None and table != standard:
            raise ValueError(
                "RFC 2435 receivers assume the standard Huffman tables (T.81 K.3); "
                "encode with huffman=default"
            )
    (_, luma_sampling, luma_table), (_, cb_sampling, cb_table), (_, cr_sampling, cr_table) = (
        components
    )
    if cb_sampling != 0x11 or cr_sampling != 0x11:
        raise ValueError("RFC 2435 needs chroma sampled 1x1")
    if luma_sampling == 0x21:
        frame_type = TYPE_422
    elif luma_sampling == 0x22:
        frame_type = TYPE_420
    else:
        raise ValueError(
            f"RFC 2435 carries 4:2:2 or 4:2:0 only, not luma sampling {luma_sampling:#x}"
        )
    if cb_table != cr_table:
        raise ValueError("RFC 2435 carries two quantization tables: Cb and Cr must share one")
    try:
        (luma_precision, luma), (chroma_precision, chroma) = tables[luma_table], tables[cb_table]
    except KeyError:
        raise ValueError("JPEG frame uses a quantization table it does not define") from None
    if restart_interval:
        frame_type += TYPE_RESTART
    return JpegLayout(
        type=frame_type,
        width=width,
        height=height,
        restart_interval=restart_interval,
        precision=luma_precision | chroma_precision << 1,
        quantization_tables=luma + chroma,
        scan_start=scan_start,
    )


def _read_quantization_tables(
    data: bytes, pos: int, end: int, tables: dict[int, tuple[int, bytes]]
) -> None:
    while pos < end:
        precision, table_id = data[pos] >> 4, data[pos] & 0x0F
        if precision > 1:
            raise ValueError("bad DQT segment")
        size = 128 if precision else 64
        if pos + 1 + size > end:
            raise ValueError("truncated DQT segment")
        tables[table_id] = (precision, data[pos + 1 : pos + 1 + size])
        pos += 1 + size


def _read_huffman_tables(data: bytes, pos: int, end: int, huffman: dict[int, bytes]) -> None:
    while pos < end:
        if pos + 17 > end:
            raise ValueError("truncated DHT segment")
        size = 16 + sum(data[pos + 1 : pos + 17])
        if pos + 1 + size > end:
            raise ValueError("truncated DHT segment")
        huffman[data[pos]] = data[pos + 1 : pos + 1 + size]
        pos += 1 + size


def _read_frame_header(
    data: bytes, pos: int, end: int
) -> tuple[int, int, list[tuple[int, int, int]]]:
    if end - pos < 6:
        raise ValueError("truncated SOF0 segment")
    sample_precision, height, width, count = struct.unpack_from("!BHHB", data, pos)
    if sample_precision != 8:
        raise ValueError("RFC 2435 carries 8-bit samples only")
    if count != 3 or end - pos != 6 + 3 * count:
        raise ValueError("RFC 2435 carries three-component (Y, Cb, Cr) JPEG only")
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise ValueError(
            f"RFC 2435 carries 1 to {MAX_DIMENSION} pixels a side, not {width}x{height}"
        )
    components = [
        (data[i], data[i + 1], data[i + 2]) for i in range(pos + 6, pos + 6 + 3 * count, 3)
    ]
    return height, width, components


def _check_scan_header(data: bytes, pos: int, end: int) -> None:
    count = data[pos] if pos < end else 0
    if count != 3 or end - pos != 4 + 2 * count:
        raise ValueError("RFC 2435 carries one interleaved scan of Y, Cb and Cr")
    selectors = (data[pos + 2], data[pos + 4], data[pos + 6])
    if selectors != STANDARD_SCAN_SELECTORS:
        raise ValueError("RFC 2435 receivers code Y with Huffman tables 0, Cb and Cr with 1")


class JpegPacketizer(RtpPacketizer):
    """RFC 2435 for one MJPEG stream: the scan in fragments, the tables on every frame's first."""

    payload_type = JPEG_PAYLOAD_TYPE
    encoding_name = "JPEG"
    # Main and restart headers, the quantization header with two 16-bit tables, one data byte.
    min_payload_size = _MAIN_SIZE + _RESTART.size + _QUANT_HEADER.size + 256 + 1
    # An encoder writes the same headers frame after frame (until its quantizer changes), so
    # the last frame's headers and layout are kept and the parse is skipped while they match.
    _headers: bytes = b""
    _layout: JpegLayout | None = None

    def packetize(self, au: AccessUnit) -> list[bytes]:
        data = au.data
        layout = self._layout
        if layout is None or not data.startswith(self._headers):
            layout = parse_jpeg(data)
            self._layout, self._headers = layout, data[: layout.scan_start]
        start = layout.scan_start
        # The receiver appends its own EOI, so the scan ends before ours (and any padding).
        stop = len(data) - 2 if data.endswith(b"\xff\xd9") else data.rfind(b"\xff\xd9", start)
        if stop < 0:
            stop = len(data)
        scan_size = stop - start
        if scan_size <= 0:
            raise ValueError("JPEG frame has no entropy-coded data")
        if scan_size > MAX_FRAGMENT_OFFSET:
            raise ValueError("JPEG frame too large for RFC 2435's 24-bit fragment offset")

        # Only the fragment offset changes from packet to packet.
        fixed = bytes(
            (layout.type, DYNAMIC_TABLES_Q, (layout.width + 7) >> 3, (layout.height + 7) >> 3)
        )
        if layout.restart_interval:
            fixed += _RESTART.pack(layout.restart_interval, _UNALIGNED_RESTART)
        step = self.max_payload_size - _U32.size - len(fixed)
        tables = layout.quantization_tables
        quant = _QUANT_HEADER.pack(0, layout.precision, len(tables)) + tables
        first = step - len(quant)
        scan = memoryview(data)[start:stop]
        offset_of = _U32.pack
        fragments: list[Fragment] = [(offset_of(0) + fixed + quant, scan[:first])]
        for offset in range(first, scan_size, step):
            fragments.append((offset_of(offset) + fixed, scan[offset : offset + step]))
        return self._emit(fragments, au.pts)

    def learn(self, au: AccessUnit) -> None:
        """RFC 2435 has no SDP parameters: every frame carries its own tables."""

    def fmtp(self) -> None:
        return None
