"""The device's exceptions as events (SPEC §5): `diskfull`, `diskerror`, `nicbroken`,
`ipconflict`, `illaccess`, all with source 0 (the device), as Hikvision devices raise them.

- `diskfull` and `diskerror` come from the storage manager, which reports each card's
  transitions; the event is active while any card is in that state (a count of the cards
  that are), so one card recovering does not end another's error. Details: the manager's
  own words ("card 1: no file system").
- `illaccess` is momentary: an address locked out after failed logins pulses it, with the
  address in the details.
- `nicbroken` and `ipconflict` watch the network interfaces: `link_monitor.LinkMonitor` and
  `ip_conflict.IpConflictMonitor`, built together by `NetworkExceptions` (the conflict probe
  only on a real network driver: the simulated one has no wire).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from vigil.board.network import LinuxNetwork, NetworkDriver
from vigil.events.bus import EventBus
from vigil.events.ip_conflict import PROBE_INTERVAL_S, ArpingProbe, IpConflictMonitor
from vigil.events.link_monitor import ChangeFeed, LinkMonitor

STORAGE_EVENTS = ("diskfull", "diskerror")


class DeviceExceptions:
    """Storage and login-lock exceptions onto the bus."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._cards: Counter[str] = Counter()  # cards in each storage exception

    def storage_event(self, kind: str, active: bool, details: str) -> None:
        """A StorageManager event listener: a card's `diskfull`/`diskerror` turned on or off."""
        if kind not in STORAGE_EVENTS:
            raise ValueError(f"not a storage event: {kind!r}")
        # The manager reports each card's transitions once, so a count is exact.
        self._cards[kind] = max(0, self._cards[kind] + (1 if active else -1))
        self.bus.publish(kind, 0, self._cards[kind] > 0, {"storage": details})

    def address_locked(self, address: str, minutes: int) -> None:
        """The login lock shut `address` out for `minutes`: an illegal access attempt.

        Called on the event loop (the lock is taken in the HTTP, RTSP and SADP handlers)."""
        self.bus.pulse("illaccess", 0, {"ipAddress": address})


class NetworkExceptions:
    """`nicbroken` for every board interface and, on a real network, `ipconflict`."""

    def __init__(
        self,
        network: NetworkDriver,
        interfaces: Sequence[str],
        bus: EventBus,
        *,
        feed: ChangeFeed | None = None,
        probe_interval_s: float = PROBE_INTERVAL_S,
    ) -> None:
        self.links = LinkMonitor(network, interfaces, bus, feed)
        self.conflicts: IpConflictMonitor | None = None
        if isinstance(network, LinuxNetwork):
            self.conflicts = IpConflictMonitor(bus, ArpingProbe(network.netns), probe_interval_s)
            self.links.subscribe(self.conflicts.note)

    async def start(self) -> None:
        await self.links.start()

    async def stop(self) -> None:
        await self.links.stop()
        if self.conflicts is not None:
            await self.conflicts.stop()
