"""Fragmented MP4 (ISO BMFF) boxes for recordings: the init segment, one fragment, and the parser.

A recording is `ftyp`, a `uuid` box with what the index needs to rebuild its row (stream,
codec, start time, record type), `moov` (one video track, 90 kHz, an `avc1`/`hvc1` sample entry
whose `avcC`/`hvcC` is built from the stream's in-band parameter sets), then `moof`+`mdat`
pairs. Samples are length-prefixed NAL units (4 bytes), without the parameter sets and access
unit delimiters, which the sample entry carries. Each fragment's `tfdt` is its exact start on
the segment's own timeline (the first fragment starts at 0), so a fragment can be dropped,
or a hole left, without the others moving.

The boxes are written here rather than by FFmpeg's muxer because the recorder has to decide
where a fragment ends, write it in one piece and fsync it before telling the index, and PyAV's
muxer only offers `av_interleaved_write_frame`: no explicit fragment flush, and its output
comes through AVIO buffers that do not line up with fragments. The parser reads back exactly
this layout, which is what makes start-up reconciliation exact.
"""

from __future__ import annotations

import json
import os
import re
import struct
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import BinaryIO

from vigil.media.frames import RTP_CLOCK
from vigil.media.sps import BitReader, rbsp

TIMESCALE = RTP_CLOCK  # the track's clock is the stream's pts clock: no rounding anywhere
TRACK_ID = 1
# Marks the `uuid` box that carries a SegmentInfo (a random UUID, fixed for this format).
INFO_UUID = uuid.UUID("b45227a3-ed48-4d3d-930c-a86514df3b39").bytes
INFO_LIMIT = 4096
MOOF_LIMIT = 1 << 20  # a 1 s fragment at 60 fps is about 800 bytes of moof
BOX_HEADER = 8
RECORD_CODECS = ("H264", "H265")

START_CODE = b"\x00\x00\x01"
START_CODES = re.compile(re.escape(START_CODE))
SAMPLE_FLAGS_SYNC = 0x02000000  # sample_depends_on = 2 (an I picture)
SAMPLE_FLAGS_DELTA = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400  # data offset, duration, size, flags
# NAL unit types: parameter sets (carried by the sample entry) and access unit delimiters.
PARAMETER_SET_TYPES = {"H264": (7, 8), "H265": (32, 33, 34)}
DROPPED_FROM_SAMPLES = {"H264": frozenset({7, 8, 9}), "H265": frozenset({32, 33, 34, 35})}
# H.264 profiles whose SPS carries chroma format and bit depths (and whose avcC then does too).
AVC_PROFILES_WITH_CHROMA = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134})


class FormatError(ValueError):
    """The bytes are not (a usable part of) a Vigil recording."""


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What a recording says about itself, so that its index row can be rebuilt from the file."""

    stream_id: int
    codec: str
    width: int
    height: int
    start_pts: int  # the stream's pts (90 kHz) of the first sample
    start_us: int  # UTC microseconds of the first sample
    record_type: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SegmentInfo:
        try:
            raw = json.loads(data)
            info = cls(
                stream_id=int(raw["stream_id"]),
                codec=str(raw["codec"]),
                width=int(raw["width"]),
                height=int(raw["height"]),
                start_pts=int(raw["start_pts"]),
                start_us=int(raw["start_us"]),
                record_type=str(raw["record_type"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise FormatError(f"bad segment info: {exc}") from exc
        return info


# -- Annex B ------------------------------------------------------------------------------------
def iter_nal_units(data: bytes) -> Iterator[bytes]:
    """The NAL units of Annex B data, without start codes.

    The start codes are found by a regular expression: its scan jumps from zero byte to zero
    byte (memchr), about twice as fast on coded video as `bytes.find`, which the recorder
    would otherwise spend on every byte it records."""
    starts = [match.end() for match in START_CODES.finditer(data)]
    for n, start in enumerate(starts):
        end = starts[n + 1] - len(START_CODE) if n + 1 < len(starts) else len(data)
        # The zero before a 4-byte start code (and trailing_zero_8bits) is in no NAL unit; a
        # NAL unit itself never ends in a zero byte (its last byte holds the stop bit).
        while end > start and data[end - 1] == 0:
            end -= 1
        if end > start:
            yield data[start:end]


def nal_type(codec: str, unit: bytes) -> int:
    return unit[0] & 0x1F if codec == "H264" else (unit[0] >> 1) & 0x3F


def to_sample(codec: str, data: bytes) -> bytes:
    """An access unit as an MP4 sample: 4-byte length prefixes, no parameter sets or AUDs."""
    dropped = DROPPED_FROM_SAMPLES[codec]
    parts: list[bytes] = []
    for unit in iter_nal_units(data):
        if nal_type(codec, unit) not in dropped:
            parts.append(struct.pack(">I", len(unit)))
            parts.append(unit)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class ParameterSets:
    codec: str
    vps: tuple[bytes, ...]
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]


def parameter_sets(codec: str, data: bytes) -> ParameterSets | None:
    """The parameter sets in front of a keyframe, or None if one kind is missing."""
    if codec not in PARAMETER_SET_TYPES:
        raise FormatError(f"{codec} cannot be recorded")
    found: dict[int, list[bytes]] = {kind: [] for kind in PARAMETER_SET_TYPES[codec]}
    for unit in iter_nal_units(data):
        kind = nal_type(codec, unit)
        if kind in found:
            found[kind].append(unit)
        elif (codec == "H264" and 1 <= kind <= 5) or (codec == "H265" and kind <= 31):
            break  # parameter sets come before the first slice
    if not all(found.values()):
        return None
    if codec == "H264":
        return ParameterSets(codec, (), tuple(found[7]), tuple(found[8]))
    return ParameterSets(codec, tuple(found[32]), tuple(found[33]), tuple(found[34]))


# -- decoder configuration records ---------------------------------------------------------------
def avc_config(sets: ParameterSets) -> bytes:
    """The `avcC` payload (ISO/IEC 14496-15 5.3.3.1)."""
    sps = sets.sps[0]
    if len(sps) < 4:
        raise FormatError("SPS too short")
    profile = sps[1]
    out = [bytes([1, profile, sps[2], sps[3], 0xFC | 3, 0xE0 | len(sets.sps)])]
    out += [struct.pack(">H", len(unit)) + unit for unit in sets.sps]
    out.append(bytes([len(sets.pps)]))
    out += [struct.pack(">H", len(unit)) + unit for unit in sets.pps]
    if profile in AVC_PROFILES_WITH_CHROMA:
        bits = BitReader(rbsp(sps, 4), FormatError)
        bits.ue()  # seq_parameter_set_id
        chroma_format = bits.ue()
        if chroma_format == 3:
            bits.u(1)  # separate_colour_plane_flag
        depth_luma, depth_chroma = bits.ue(), bits.ue()
        out.append(bytes([0xFC | chroma_format, 0xF8 | depth_luma, 0xF8 | depth_chroma, 0]))
    return b"".join(out)


def hevc_config(sets: ParameterSets) -> bytes:
    """The `hvcC` payload (ISO/IEC 14496-15 8.3.3.1), from the SPS's profile, tier and level."""
    bits = BitReader(rbsp(sets.sps[0], 2), FormatError)
    bits.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = bits.u(3)
    temporal_id_nesting = bits.u(1)
    general = bits.u(96)  # profile space, tier, profile, compatibility, constraints, level
    profile_present, level_present = [], []
    for _ in range(max_sub_layers_minus1):
        profile_present.append(bits.u(1))
        level_present.append(bits.u(1))
    if max_sub_layers_minus1:
        bits.u(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for layer in range(max_sub_layers_minus1):
        bits.u(88 if profile_present[layer] else 0)
        bits.u(8 if level_present[layer] else 0)
    bits.ue()  # sps_seq_parameter_set_id
    chroma_format = bits.ue()
    if chroma_format == 3:
        bits.u(1)
    bits.ue()  # pic_width_in_luma_samples
    bits.ue()  # pic_height_in_luma_samples
    if bits.u(1):  # conformance_window_flag
        for _ in range(4):
            bits.ue()
    depth_luma, depth_chroma = bits.ue(), bits.ue()
    out = [
        bytes([1]),
        general.to_bytes(12, "big"),
        struct.pack(">HB", 0xF000, 0xFC),  # min_spatial_segmentation 0, parallelismType 0
        bytes([0xFC | chroma_format, 0xF8 | depth_luma, 0xF8 | depth_chroma]),
        struct.pack(">H", 0),  # avgFrameRate: unknown
        # constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3
        bytes([((max_sub_layers_minus1 + 1) << 3) | (temporal_id_nesting << 2) | 3]),
        bytes([3]),
    ]
    for kind, units in ((32, sets.vps), (33, sets.sps), (34, sets.pps)):
        out.append(struct.pack(">BH", 0x80 | kind, len(units)))  # array_completeness = 1
        out += [struct.pack(">H", len(unit)) + unit for unit in units]
    return b"".join(out)


# -- box writing ---------------------------------------------------------------------------------
def box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I4s", BOX_HEADER + len(payload), kind) + payload


def full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *parts)


FTYP = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6isommp41")


_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def _sample_entry(info: SegmentInfo, sets: ParameterSets) -> bytes:
    if sets.codec == "H264":
        kind, config = b"avc1", box(b"avcC", avc_config(sets))
    else:
        kind, config = b"hvc1", box(b"hvcC", hevc_config(sets))
    compressor = b"\x05Vigil".ljust(32, b"\x00")
    return box(
        kind,
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),
        struct.pack(">HHIIIH", info.width, info.height, 0x00480000, 0x00480000, 0, 1),
        compressor,
        struct.pack(">Hh", 0x0018, -1),
        config,
    )


def init_segment(info: SegmentInfo, sets: ParameterSets) -> bytes:
    """`ftyp`, the info `uuid` box and an empty `moov` with `mvex`: the head of every recording."""
    return FTYP + box(b"uuid", INFO_UUID, info.to_json()) + movie(info, sets)


def movie(info: SegmentInfo, sets: ParameterSets, edit: tuple[int, int] | None = None) -> bytes:
    """An empty `moov` with `mvex` for fragments of one track. `edit`: (media time, duration)
    of the one edit that presents a part of the track (an `elst`; the duration 0 means to the
    end of the fragments), e.g. to skip the lead-in from a keyframe to where a file starts."""
    if info.codec != sets.codec:
        raise FormatError("the parameter sets are not of the segment's codec")
    empty_table = full_box(b"stts", 0, 0, struct.pack(">I", 0))
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(info, sets)),
        empty_table,
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = box(
        b"minf",
        full_box(b"vmhd", 0, 1, bytes(8)),
        box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1))),
        stbl,
    )
    mdia = box(
        b"mdia",
        full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, 0, 0x55C4, 0)),  # und
        full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00"),
        minf,
    )
    tkhd = full_box(
        b"tkhd",
        0,
        3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0),
        _MATRIX,
        struct.pack(">II", info.width << 16, info.height << 16),
    )
    mvhd = full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIIIIH", 0, 0, TIMESCALE, 0, 0x00010000, 0x0100),
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", TRACK_ID + 1),
    )
    mvex = box(b"mvex", full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0)))
    edts = b""
    if edit is not None:
        media_time, duration = edit
        entry = struct.pack(">QqHH", duration, media_time, 1, 0)  # rate 1.0
        edts = box(b"edts", full_box(b"elst", 1, 0, struct.pack(">I", 1), entry))
    return box(b"moov", mvhd, box(b"trak", tkhd, edts, mdia), mvex)


def fragment(
    sequence: int,
    base_time: int,
    durations: Sequence[int],
    samples: Sequence[bytes],
    keyframes: Sequence[bool],
) -> bytes:
    """One `moof`+`mdat`: `base_time` on the segment's timeline, one duration per sample."""
    count = len(samples)
    table: list[int] = []
    for duration, sample, key in zip(durations, samples, keyframes, strict=True):
        table += (duration, len(sample), SAMPLE_FLAGS_SYNC if key else SAMPLE_FLAGS_DELTA)
    # moof = 8 + mfhd 16 + traf(8 + tfhd 16 + tfdt 20 + trun 20 + 12 per sample)
    moof_size = 8 + 16 + 8 + 16 + 20 + 20 + 12 * count
    traf = box(
        b"traf",
        full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", TRACK_ID)),
        full_box(b"tfdt", 1, 0, struct.pack(">Q", base_time)),
        full_box(
            b"trun",
            0,
            TRUN_FLAGS,
            struct.pack(f">Ii{3 * count}I", count, moof_size + BOX_HEADER, *table),
        ),
    )
    moof = box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)), traf)
    assert len(moof) == moof_size
    payload = sum(len(sample) for sample in samples)
    return b"".join([moof, struct.pack(">I4s", BOX_HEADER + payload, b"mdat"), *samples])


# -- parsing -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FragmentSpan:
    offset: int  # file offset of the moof
    end: int  # file offset just past the mdat
    base_time: int  # tfdt, on the segment's timeline
    duration: int  # sum of the sample durations
    samples: int
    starts_with_keyframe: bool


@dataclass(slots=True)
class SegmentLayout:
    """What a recording file holds, as far as it holds complete boxes."""

    size: int  # the file's size when read
    info: SegmentInfo | None = None
    init_end: int = 0  # offset past the moov; 0 if the head is incomplete
    fragments: list[FragmentSpan] = field(default_factory=list)
    problem: str = ""  # why the parse stopped before the end of the file, if it did

    @property
    def valid_end(self) -> int:
        """Offset past the last complete fragment (past the head if there is none)."""
        return self.fragments[-1].end if self.fragments else self.init_end

    @property
    def duration(self) -> int:
        last = self.fragments[-1] if self.fragments else None
        return last.base_time + last.duration if last else 0

    @property
    def torn(self) -> bool:
        return self.valid_end != self.size


def _read_exact(f: BinaryIO, count: int) -> bytes | None:
    data = f.read(count)
    return data if len(data) == count else None


def _parse_moof(data: bytes) -> tuple[int, list[tuple[int, int, int]], int]:
    """(tfdt, [(duration, size, flags)], data offset) of a moof written by `fragment`."""
    moof_end = struct.unpack_from(">I", data)[0]
    if moof_end > len(data):
        raise FormatError("moof cut short")
    position = BOX_HEADER
    base_time = -1
    table: list[tuple[int, int, int]] = []
    data_offset = -1
    while position + BOX_HEADER <= moof_end:
        size, kind = struct.unpack_from(">I4s", data, position)
        if size < BOX_HEADER or position + size > moof_end:
            raise FormatError("bad box inside moof")
        if kind == b"traf":
            end = position + size
            inner = position + BOX_HEADER
            while inner + BOX_HEADER <= end:
                inner_size, inner_kind = struct.unpack_from(">I4s", data, inner)
                if inner_size < BOX_HEADER + 4 or inner + inner_size > end:
                    raise FormatError("bad box inside traf")
                version_flags = struct.unpack_from(">I", data, inner + 8)[0]
                version, flags = version_flags >> 24, version_flags & 0xFFFFFF
                body = inner + 12
                if inner_kind == b"tfdt":
                    base_time = struct.unpack_from(">Q" if version else ">I", data, body)[0]
                elif inner_kind == b"trun":
                    if flags != TRUN_FLAGS:
                        raise FormatError(f"trun flags {flags:#x} are not ours")
                    count, data_offset = struct.unpack_from(">Ii", data, body)
                    if body + 8 + 12 * count > inner + inner_size:
                        raise FormatError("trun shorter than its sample count")
                    values = struct.unpack_from(f">{3 * count}I", data, body + 8)
                    table = list(zip(values[0::3], values[1::3], values[2::3], strict=True))
                inner += inner_size
        position += size
    if base_time < 0 or not table:
        raise FormatError("moof without tfdt or samples")
    return base_time, table, data_offset


def _samples_tile(codec: str, payload: bytes, sizes: list[int]) -> bool:
    """Whether each sample is whole length-prefixed NAL units (catches zero-filled blocks)."""
    position = 0
    for size in sizes:
        end = position + size
        while position < end:
            if position + 5 > end:
                return False
            length = int.from_bytes(payload[position : position + 4], "big")
            if length == 0 or payload[position + 4] & 0x80:  # forbidden_zero_bit
                return False
            position += 4 + length
        if position != end:
            return False
    return position == len(payload)


def read_layout(f: BinaryIO, *, check_last: bool = True) -> SegmentLayout:
    """Walk the top-level boxes of a recording; stop at the first incomplete or foreign one.

    `check_last`: also read the last fragment's samples and check that they are whole NAL
    units, so a fragment whose bytes were never written (zeros after a power cut on a
    file system that does not order data before size) counts as torn too.
    """
    size = os.fstat(f.fileno()).st_size
    layout = SegmentLayout(size=size)
    position = 0
    head: set[bytes] = set()
    f.seek(0)
    while position < size:
        header = _read_exact(f, BOX_HEADER)
        if header is None:
            layout.problem = "short box header"
            break
        box_size, kind = struct.unpack(">I4s", header)
        header_size = BOX_HEADER
        if box_size == 1:
            large = _read_exact(f, 8)
            if large is None:
                layout.problem = "short box header"
                break
            box_size, header_size = struct.unpack(">Q", large)[0], 16
        if box_size < header_size or position + box_size > size:
            layout.problem = f"{kind!r} box cut short" if box_size >= header_size else "bad box"
            break
        if kind in (b"ftyp", b"uuid", b"moov"):
            if kind == b"uuid" and box_size <= INFO_LIMIT:
                body = f.read(box_size - header_size)
                if body[:16] == INFO_UUID:
                    try:
                        layout.info = SegmentInfo.from_json(body[16:])
                    except FormatError as exc:
                        layout.problem = str(exc)
                        break
            head.add(kind)
            if kind == b"moov":
                if layout.info is None:
                    layout.problem = "no segment info before moov"
                    break
                layout.init_end = position + box_size
        elif kind == b"moof" and layout.init_end:
            if box_size > MOOF_LIMIT:
                layout.problem = "moof too large"
                break
            moof = header + (f.read(box_size - header_size) or b"")
            try:
                base_time, table, data_offset = _parse_moof(moof)
            except FormatError as exc:
                layout.problem = str(exc)
                break
            mdat_at = position + box_size
            f.seek(mdat_at)
            mdat_header = _read_exact(f, BOX_HEADER)
            if mdat_header is None:
                layout.problem = "moof without its mdat"
                break
            mdat_size, mdat_kind = struct.unpack(">I4s", mdat_header)
            payload = sum(entry[1] for entry in table)
            if mdat_kind != b"mdat" or mdat_size != BOX_HEADER + payload:
                layout.problem = "moof without its mdat"
                break
            if data_offset != box_size + BOX_HEADER:
                layout.problem = "trun data offset is not ours"
                break
            if mdat_at + mdat_size > size:
                layout.problem = "mdat cut short"
                break
            layout.fragments.append(
                FragmentSpan(
                    offset=position,
                    end=mdat_at + mdat_size,
                    base_time=base_time,
                    duration=sum(entry[0] for entry in table),
                    samples=len(table),
                    starts_with_keyframe=table[0][2] == SAMPLE_FLAGS_SYNC,
                )
            )
            box_size = box_size + mdat_size
        else:
            layout.problem = f"unexpected {kind!r} box"
            break
        position += box_size
        f.seek(position)
    if check_last and layout.fragments and layout.info is not None:
        last = layout.fragments[-1]
        f.seek(last.offset)
        moof_and_mdat = f.read(last.end - last.offset)
        _, table, data_offset = _parse_moof(moof_and_mdat)
        payload = moof_and_mdat[data_offset:]
        if not _samples_tile(layout.info.codec, payload, [entry[1] for entry in table]):
            layout.fragments.pop()
            layout.problem = "last fragment's samples are not whole NAL units"
    if {b"ftyp", b"moov"} - head and not layout.problem:
        layout.problem = "incomplete head"
    return layout


# -- reading samples back (footage playback and download) ---------------------------------------
VISUAL_SAMPLE_ENTRY_FIELDS = 78  # the fixed fields of an avc1/hvc1 entry before its boxes
HVCC_ARRAYS_AT = 22  # the fixed part of an hvcC before numOfArrays
PATH_TO_STSD = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")


@dataclass(frozen=True, slots=True)
class Sample:
    duration: int  # on the track's (the stream's) 90 kHz clock
    keyframe: bool
    data: bytes  # length-prefixed NAL units, as `to_sample` made them


def _find_box(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    """(payload start, end) of the first `kind` box among the boxes in data[start:end]."""
    position = start
    while position + BOX_HEADER <= end:
        size, name = struct.unpack_from(">I4s", data, position)
        if size < BOX_HEADER or position + size > end:
            break
        if name == kind:
            return position + BOX_HEADER, position + size
        position += size
    raise FormatError(f"no {kind.decode(errors='replace')} box")


def _length_prefixed(data: bytes, position: int, count: int) -> tuple[list[bytes], int]:
    """`count` units each after a 16-bit length, as in avcC/hvcC; and the offset past them."""
    units: list[bytes] = []
    for _ in range(count):
        if position + 2 > len(data):
            raise FormatError("decoder configuration cut short")
        length = struct.unpack_from(">H", data, position)[0]
        units.append(data[position + 2 : position + 2 + length])
        position += 2 + length
    if position > len(data):
        raise FormatError("decoder configuration cut short")
    return units, position


def _avc_sets(config: bytes) -> ParameterSets:
    if len(config) < 7:
        raise FormatError("avcC too short")
    sps, position = _length_prefixed(config, 6, config[5] & 0x1F)
    if position >= len(config):
        raise FormatError("avcC without PPS")
    pps, _ = _length_prefixed(config, position + 1, config[position])
    return ParameterSets("H264", (), tuple(sps), tuple(pps))


def _hevc_sets(config: bytes) -> ParameterSets:
    if len(config) <= HVCC_ARRAYS_AT:
        raise FormatError("hvcC too short")
    found: dict[int, list[bytes]] = {32: [], 33: [], 34: []}
    position = HVCC_ARRAYS_AT + 1
    for _ in range(config[HVCC_ARRAYS_AT]):
        if position + 3 > len(config):
            raise FormatError("hvcC cut short")
        kind, count = config[position] & 0x3F, struct.unpack_from(">H", config, position + 1)[0]
        units, position = _length_prefixed(config, position + 3, count)
        found.setdefault(kind, []).extend(units)
    return ParameterSets("H265", tuple(found[32]), tuple(found[33]), tuple(found[34]))


def sample_entry_sets(head: bytes) -> ParameterSets:
    """The parameter sets in the `avcC`/`hvcC` of a recording's head (the bytes up to the end
    of its `moov`): what the samples lack and a decoder needs before a keyframe."""
    start, end = 0, len(head)
    for kind in PATH_TO_STSD:
        start, end = _find_box(head, start, end, kind)
    entries = start + 8  # version and flags, entry_count
    for entry, codec in ((b"avc1", "H264"), (b"hvc1", "H265")):
        try:
            body, body_end = _find_box(head, entries, end, entry)
        except FormatError:
            continue
        config = b"avcC" if codec == "H264" else b"hvcC"
        at, config_end = _find_box(head, body + VISUAL_SAMPLE_ENTRY_FIELDS, body_end, config)
        payload = head[at:config_end]
        return _avc_sets(payload) if codec == "H264" else _hevc_sets(payload)
    raise FormatError("no avc1 or hvc1 sample entry")


def read_samples(f: BinaryIO, span: FragmentSpan) -> list[Sample]:
    """The samples of one complete fragment (as `read_layout` found it)."""
    f.seek(span.offset)
    data = _read_exact(f, span.end - span.offset)
    if data is None:
        raise FormatError("fragment cut short")
    _, table, data_offset = _parse_moof(data)
    samples: list[Sample] = []
    position = data_offset
    for duration, size, flags in table:
        samples.append(
            Sample(duration, flags == SAMPLE_FLAGS_SYNC, data[position : position + size])
        )
        position += size
    if position != len(data):
        raise FormatError("samples do not fill the mdat")
    return samples


def to_annex_b(sample: bytes, sets: ParameterSets | None = None) -> bytes:
    """A sample back as an Annex B access unit, with `sets` in front (for a keyframe)."""
    parts: list[bytes] = []
    if sets is not None:
        for unit in (*sets.vps, *sets.sps, *sets.pps):
            parts += (b"\x00\x00\x00\x01", unit)
    position = 0
    while position + 4 <= len(sample):
        length = int.from_bytes(sample[position : position + 4], "big")
        parts += (b"\x00\x00\x00\x01", sample[position + 4 : position + 4 + length])
        position += 4 + length
    if position != len(sample):
        raise FormatError("sample is not whole length-prefixed NAL units")
    return b"".join(parts)
