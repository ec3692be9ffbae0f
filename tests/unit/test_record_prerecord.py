"""The pre-record ring keeps the fewest whole GOPs that reach back the pre-record time, and
the recorder starts an event's recording with them."""

from __future__ import annotations

import dataclasses

from vigil.media.frames import AccessUnit
from vigil.record.prerecord import GopRing


def unit(number: int, *, gop: int = 10, fps: int = 10, size: int = 100) -> AccessUnit:
    return AccessUnit(
        stream_id=101,
        codec="H264",
        data=bytes(size),
        pts=number * 9000,
        keyframe=number % gop == 0,
        captured_at=1000.0 + number / fps,
        width=640,
        height=360,
    )


def test_ring_keeps_whole_gops_reaching_back_the_pre_record_time() -> None:
    ring = GopRing(2.5)  # GOPs of 1 s
    for number in range(3, 95):  # starts mid-GOP: those units cannot be decoded, so are dropped
        ring.add(unit(number))
    units = ring.drain()
    assert units[0].keyframe
    newest = units[-1].captured_at
    # The first keyframe is at or before newest - 2.5 s, and the next one is not.
    assert units[0].captured_at <= newest - 2.5 < units[0].captured_at + 1.0
    assert [u.pts for u in units] == [n * 9000 for n in range(units[0].pts // 9000, 95)]
    assert len(ring) == 0 and ring.bytes == 0


def test_zero_seconds_keeps_the_current_gop() -> None:
    ring = GopRing(0)
    for number in range(37):
        ring.add(unit(number))
    assert [u.pts // 9000 for u in ring.drain()] == list(range(30, 37))


def test_byte_cap_bounds_the_ring() -> None:
    ring = GopRing(30, max_bytes=5_000)
    for number in range(200):
        ring.add(unit(number, size=100))  # 1000 bytes a GOP
    assert ring.bytes <= 5_000 + 1_000
    first = ring.drain()[0]
    assert first.keyframe and dataclasses.asdict(first)["pts"] >= 150 * 9000
