"""An EventBus for tests: a short hold-off, every event it emitted, and a wait for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from vigil.events.bus import Event, EventBus

HOLD_OFF_S = 0.02


class Recorder:
    """A bus with a short hold-off, and every event it emitted."""

    def __init__(self) -> None:
        self.bus = EventBus(lambda: datetime.now(UTC), hold_off_s=HOLD_OFF_S)
        self.events: list[Event] = []
        self.bus.subscribe(self.events.append)

    def seen(self, type: str) -> list[tuple[bool, dict[str, str]]]:
        return [(e.active, dict(e.details)) for e in self.events if e.type == type]


async def wait_for(check: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
