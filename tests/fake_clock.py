"""A clock a test sets by hand: `clock.now += 31` instead of waiting. Pass it where the code
takes a `Callable[[], float]` (time.monotonic or time.time)."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
