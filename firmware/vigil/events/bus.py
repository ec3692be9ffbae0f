"""The event bus: every source of events publishes here, rules and the alert stream listen.

An event is a state change of one (type, source) pair: `vmd` on channel 1 goes active, then
inactive. The bus keeps the current state of each pair, so publishing the state a pair is
already in does nothing (de-duplication). An inactive is held back for `hold_off_s`: if the
pair goes active again meanwhile, the inactive is dropped and the event simply lasts longer,
so a flickering detector or a bouncing contact makes one event, not a flood. Momentary events
(an illegal login) are published with `pulse`, which is an active followed by its inactive.

The bus runs on the event loop. Listeners are plain callables that must return at once (they
queue work or start tasks); one that raises is logged and does not stop the others. Sources in
threads publish through `publish_threadsafe`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

log = logging.getLogger("vigil.events")

HOLD_OFF_S = 2.0
HISTORY = 1000

# eventDescription as Hikvision devices word it.
DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "vmd": "Motion alarm",
        "tamperdetection": "Shelteralarm",
        "videoloss": "videoloss alarm",
        "defocus": "Defocus detection alarm",
        "scenechangedetection": "Scene change detection alarm",
        "io": "IO alarm",
        "diskfull": "HD full",
        "diskerror": "HD error",
        "nicbroken": "Network disconnected",
        "ipconflict": "IP address conflicted",
        "illaccess": "Illegal access",
    }
)

_NO_DETAILS: Mapping[str, str] = MappingProxyType({})

# What recording and picture names call an event: motion and alarm; any other is its type.
_KINDS: Mapping[str, str] = MappingProxyType({"vmd": "motion", "io": "alarm"})


def kind_of(event_type: str) -> str:
    return _KINDS.get(event_type, event_type)


@dataclass(frozen=True)
class Event:
    """One state change. `source` is the channel, the alarm input, or 0 for the device."""

    type: str
    source: int
    active: bool
    at: datetime  # the device clock, timezone-aware
    id: int = 0  # increasing number of the bus's events
    details: Mapping[str, str] = field(default_factory=lambda: _NO_DETAILS)

    @property
    def key(self) -> tuple[str, int]:
        return self.type, self.source

    @property
    def description(self) -> str:
        return DESCRIPTIONS.get(self.type, self.type)

    @property
    def state(self) -> str:
        return "active" if self.active else "inactive"


Listener = Callable[[Event], None]


class EventBus:
    def __init__(self, now: Callable[[], datetime], hold_off_s: float = HOLD_OFF_S) -> None:
        self._now = now
        self.hold_off_s = hold_off_s
        self._listeners: list[Listener] = []
        self._active: dict[tuple[str, int], Event] = {}
        self._pending_inactive: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._history: collections.deque[Event] = collections.deque(maxlen=HISTORY)
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop that `publish_threadsafe` hands events to."""
        self._loop = loop

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event from now on; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # -- publishing -------------------------------------------------------------------------
    def publish(
        self, type: str, source: int, active: bool, details: Mapping[str, str] | None = None
    ) -> None:
        key = (type, source)
        if active:
            pending = self._pending_inactive.pop(key, None)
            if pending is not None:
                pending.cancel()  # it came back within the hold-off: the same event goes on
            if key not in self._active:
                self._emit(type, source, True, details)
        elif key in self._active and key not in self._pending_inactive:
            loop = asyncio.get_running_loop()
            self._pending_inactive[key] = loop.call_later(self.hold_off_s, self._end, key, details)

    def pulse(self, type: str, source: int, details: Mapping[str, str] | None = None) -> None:
        """A momentary event: active now, inactive after the hold-off."""
        self.publish(type, source, True, details)
        self.publish(type, source, False, details)

    def publish_threadsafe(
        self, type: str, source: int, active: bool, details: Mapping[str, str] | None = None
    ) -> None:
        if self._loop is None:
            raise RuntimeError("the event bus is not bound to a loop")
        self._loop.call_soon_threadsafe(self.publish, type, source, active, details)

    def clear(self) -> None:
        """Forget pending inactives (at stop); states are kept for a last look."""
        for handle in self._pending_inactive.values():
            handle.cancel()
        self._pending_inactive.clear()

    # -- reading ----------------------------------------------------------------------------
    def active(self) -> list[Event]:
        return list(self._active.values())

    def is_active(self, type: str, source: int) -> bool:
        return (type, source) in self._active

    def history(self) -> list[Event]:
        return list(self._history)

    # -- internals --------------------------------------------------------------------------
    def _end(self, key: tuple[str, int], details: Mapping[str, str] | None) -> None:
        self._pending_inactive.pop(key, None)
        self._emit(*key, False, details)

    def _emit(
        self, type: str, source: int, active: bool, details: Mapping[str, str] | None
    ) -> None:
        event = Event(
            type,
            source,
            active,
            self._now(),
            next(self._ids),
            MappingProxyType(dict(details)) if details else _NO_DETAILS,
        )
        if active:
            self._active[event.key] = event
        else:
            self._active.pop(event.key, None)
        self._history.append(event)
        log.info("event %s %s %s", type, source, event.state)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener %r failed on %s", listener, type)
