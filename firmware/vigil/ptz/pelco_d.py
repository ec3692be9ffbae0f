"""Pelco-D frames: `FF addr cmd1 cmd2 data1 data2 sum`, sum = (addr+cmd1+cmd2+data1+data2) mod 256.

Standard commands: cmd1 focus near 0x01, iris open 0x02, iris close 0x04; cmd2 pan right 0x02,
left 0x04, tilt up 0x08, down 0x10, zoom tele 0x20, wide 0x40, focus far 0x80; data1 the pan
speed 0x00-0x3F or 0xFF turbo, data2 the tilt speed 0x00-0x3F. Extended commands (cmd1 0, odd
cmd2): set/clear/go to preset 0x03/0x05/0x07 and aux on/off 0x09/0x0B (number in data2), zoom
speed 0x25 (0-3), set pan/tilt/zoom position 0x4B/0x4D/0x4F, query 0x51/0x53/0x55 and the
dome's replies 0x59/0x5B/0x5D (value in data1:data2, big-endian). Address 1..255 on the wire
as is. See `commands` for the shared payload.
"""

from __future__ import annotations

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

SYNC = 0xFF
LENGTH = 7
LAYOUT = Layout(
    bits={
        ("focus", -1): (0, 0x01),
        ("iris", 1): (0, 0x02),
        ("iris", -1): (0, 0x04),
        ("pan", 1): (1, 0x02),
        ("pan", -1): (1, 0x04),
        ("tilt", 1): (1, 0x08),
        ("tilt", -1): (1, 0x10),
        ("zoom", 1): (1, 0x20),
        ("zoom", -1): (1, 0x40),
        ("focus", 1): (1, 0x80),
    },
    turbo=0xFF,
)


def checksum(body: bytes) -> int:
    """Sum of address, commands and data, mod 256."""
    return sum(body) & 0xFF


def encode(address: int, command: Command) -> bytes:
    check_address(address)
    body = bytes((address,)) + encode_payload(command, LAYOUT)
    return bytes((SYNC,)) + body + bytes((checksum(body),))


def decode(frame: bytes, address: int | None = None) -> Frame:
    """The frame's address and command; PelcoError if it is malformed or for another address."""
    raw = frame_bytes(frame, LENGTH)
    if raw[0] != SYNC:
        raise FramingError(f"Pelco-D starts with 0xff, not {raw[0]:#04x}")
    if checksum(raw[1:6]) != raw[6]:
        raise FramingError(f"Pelco-D checksum {raw[6]:#04x}, expected {checksum(raw[1:6]):#04x}")
    if raw[1] == 0:
        raise PelcoError("Pelco-D address 0")
    return check_recipient(Frame(raw[1], decode_payload(raw[2:6], LAYOUT)), address)


CODEC = Codec("pelco-d", SYNC, LENGTH, encode, decode)

__all__ = ["CODEC", "LAYOUT", "PelcoError", "checksum", "decode", "encode"]
