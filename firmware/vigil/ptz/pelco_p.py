"""Pelco-P frames: `A0 addr data1 data2 data3 data4 AF xor`, xor of the first seven bytes.

The address on the wire is 0-based (dome 1 is 0x00). data1: focus far 0x01, focus near 0x02,
iris open 0x04, iris close 0x08; data2: pan right 0x02, left 0x04, tilt up 0x08, down 0x10,
zoom tele 0x20, wide 0x40; data3 the pan speed 0x00-0x3F or 0x40 turbo, data4 the tilt speed.
Extended commands use the Pelco-D opcodes in data2 (data1 0) with the argument in data3:data4:
presets, aux, zoom speed, and the absolute positions and position queries, which Pelco-P domes
that support them answer in the same form. Checked against the vectors `A0 00 00 04 20 00 AF 2B`
(pan left) and `A0 00 00 02 20 00 AF 2D` (pan right).
"""

from __future__ import annotations

from functools import reduce
from operator import xor

from vigil.ptz.commands import (
    Codec,
    Command,
    Frame,
    FramingError,
    Layout,
    PelcoError,
    check_address,
    check_recipient,
    decode_payload,
    encode_payload,
    frame_bytes,
)

STX = 0xA0
ETX = 0xAF
LENGTH = 8
LAYOUT = Layout(
    bits={
        ("focus", 1): (0, 0x01),
        ("focus", -1): (0, 0x02),
        ("iris", 1): (0, 0x04),
        ("iris", -1): (0, 0x08),
        ("pan", 1): (1, 0x02),
        ("pan", -1): (1, 0x04),
        ("tilt", 1): (1, 0x08),
        ("tilt", -1): (1, 0x10),
        ("zoom", 1): (1, 0x20),
        ("zoom", -1): (1, 0x40),
    },
    turbo=0x40,
)


def checksum(head: bytes) -> int:
    """XOR of STX, address, the four data bytes and ETX."""
    return reduce(xor, head, 0)


def encode(address: int, command: Command) -> bytes:
    check_address(address)
    head = bytes((STX, address - 1)) + encode_payload(command, LAYOUT) + bytes((ETX,))
    return head + bytes((checksum(head),))


def decode(frame: bytes, address: int | None = None) -> Frame:
    """The frame's address (1-based) and command; PelcoError if malformed or not for us."""
    raw = frame_bytes(frame, LENGTH)
    if raw[0] != STX or raw[6] != ETX:
        raise FramingError(f"Pelco-P is framed by 0xa0 .. 0xaf, not {raw[0]:#04x} .. {raw[6]:#04x}")
    if checksum(raw[:7]) != raw[7]:
        raise FramingError(f"Pelco-P checksum {raw[7]:#04x}, expected {checksum(raw[:7]):#04x}")
    if raw[1] == 0xFF:
        raise PelcoError("Pelco-P address 0xff (dome 256) is out of range")
    return check_recipient(Frame(raw[1] + 1, decode_payload(raw[2:6], LAYOUT)), address)


CODEC = Codec("pelco-p", STX, LENGTH, encode, decode)

__all__ = ["CODEC", "LAYOUT", "PelcoError", "checksum", "decode", "encode"]
