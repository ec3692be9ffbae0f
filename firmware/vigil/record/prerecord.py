"""Pre-record: a RAM ring of the latest whole GOPs of a stream that is not being recorded.

When recording starts (an event, SPEC §4: pre-record 0-30 s), the ring's units go to the
writer first, so the recording begins at a keyframe at or before `now - seconds`. The ring
keeps the fewest whole GOPs that reach back that far: a GOP is dropped once the next one
starts early enough on its own. With 0 s the ring keeps the current GOP, because a recording
can only start on a keyframe. A byte cap bounds it whatever the GOP length or bitrate.
"""

from __future__ import annotations

from collections import deque

from vigil.media.frames import AccessUnit

MAX_RING_BYTES = 64 * 1024 * 1024  # 30 s of a 16 Mbit/s stream, plus a GOP


class GopRing:
    def __init__(self, seconds: float, max_bytes: int = MAX_RING_BYTES) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._gops: deque[list[AccessUnit]] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return sum(len(gop) for gop in self._gops)

    @property
    def bytes(self) -> int:
        return self._bytes

    def add(self, au: AccessUnit) -> None:
        if au.keyframe:
            self._gops.append([au])
        elif self._gops:
            self._gops[-1].append(au)
        else:
            return  # nothing to decode it from
        self._bytes += len(au.data)
        self._trim(au.captured_at - self.seconds)

    def _trim(self, reach_back_to: float) -> None:
        while len(self._gops) > 1 and (
            self._gops[1][0].captured_at <= reach_back_to or self._bytes > self.max_bytes
        ):
            self._bytes -= sum(len(au.data) for au in self._gops.popleft())

    def drain(self) -> list[AccessUnit]:
        """The ring's units in order (starting on a keyframe), leaving it empty."""
        units = [au for gop in self._gops for au in gop]
        self.clear()
        return units

    def clear(self) -> None:
        self._gops.clear()
        self._bytes = 0
