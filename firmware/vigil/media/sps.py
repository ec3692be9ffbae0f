"""H.264 and H.265 parameter sets: an RBSP bit reader and the picture size an SPS gives.

Used where a stream arrives without a decoder in the way: the RTSP pull client (its picture
size) and the fMP4 writer (the `avcC`/`hvcC` fields it copies from the SPS).
"""

from __future__ import annotations


class BitReader:
    """Big-endian bits of an RBSP: fixed-width `u`, Exp-Golomb `ue` and `se`; running past the
    end or a code longer than 32 bits raises `error` (a caller's own ValueError kind)."""

    def __init__(self, data: bytes, error: type[ValueError] = ValueError) -> None:
        self._value = int.from_bytes(data, "big")
        self._left = len(data) * 8
        self._error = error

    def u(self, count: int) -> int:
        if count > self._left:
            raise self._error("parameter set too short")
        self._left -= count
        return (self._value >> self._left) & ((1 << count) - 1)

    def ue(self) -> int:
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise self._error("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def rbsp(nal: bytes, header: int) -> bytes:
    """The NAL unit's payload after its `header` bytes, emulation prevention bytes removed."""
    body = nal[header:]
    return body.replace(b"\x00\x00\x03", b"\x00\x00") if b"\x00\x00\x03" in body else body


HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)


def _skip_scaling_list(bits: BitReader, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last


def h264_size(sps: bytes) -> tuple[int, int]:
    """(width, height) of an H.264 SPS NAL unit (header byte included), cropping applied."""
    bits = BitReader(rbsp(sps, 1))
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma = 1
    separate = 0
    if profile in HIGH_PROFILES:
        chroma = bits.ue()
        if chroma == 3:
            separate = bits.u(1)
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = height_units * 16 * (2 - frame_mbs_only)
    if bits.u(1):  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        if chroma == 0 or separate:
            unit_x, unit_y = 1, 2 - frame_mbs_only
        else:
            unit_x = 2 if chroma in (1, 2) else 1
            unit_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    return width, height


def h265_size(sps: bytes) -> tuple[int, int]:
    """(width, height) of an H.265 SPS NAL unit (2-byte header included), conformance window
    applied."""
    bits = BitReader(rbsp(sps, 2))
    bits.u(4)  # sps_video_parameter_set_id
    sub_layers = bits.u(3)
    bits.u(1)
    bits.u(96)  # general profile, tier, level
    present = [(bits.u(1), bits.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.u(2 * (8 - sub_layers))
    for profile_present, level_present in present:
        bits.u(88 if profile_present else 0)
        bits.u(8 if level_present else 0)
    bits.ue()  # sps_seq_parameter_set_id
    chroma = bits.ue()
    if chroma == 3:
        bits.u(1)
    width, height = bits.ue(), bits.ue()
    if bits.u(1):  # conformance_window_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        unit_x = 2 if chroma in (1, 2) else 1
        unit_y = 2 if chroma == 1 else 1
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    return width, height
