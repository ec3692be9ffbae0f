"""The surveillance center's view of events: the EventNotificationAlert document, and the hub
that fans alerts out to every `alertStream` subscriber.

What was chosen:

- The document is Hikvision's `EventNotificationAlert` (SPEC §7): `ipAddress, portNo, protocol,
  macAddress, channelID, dateTime, activePostCount, eventType, eventState, eventDescription,
  channelName`. `channelID` is the video channel, the alarm input for `io` (which also carries
  `inputIOPortID`, as Hikvision's do), and 0 for the device's exceptions. `dateTime` is device
  local time with its offset. `activePostCount` is 1 on an activation and 0 on its end. An
  event's details (the address behind an illegal login, the interface whose link broke) are
  added to `eventDescription`, so no client meets an element it does not know.
- The heartbeat is what Hikvision devices send: every 10 s, `videoloss` `inactive` on
  channel 0, `activePostCount` 0. Clients that watch for it know the stream is alive.
- Each subscriber has a bounded queue (`QUEUE_LIMIT` alerts). One that does not read its
  stream fills it and is cut off (its response ends), instead of the device buffering for it
  without bound; at most `MAX_SUBSCRIBERS` streams are open at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vigil.api.xml import render
from vigil.board.clock import local_iso
from vigil.events.bus import Event

log = logging.getLogger("vigil.alerts")

QUEUE_LIMIT = 256
MAX_SUBSCRIBERS = 16
HEARTBEAT_S = 10.0


@dataclass(frozen=True)
class AlertDevice:
    """Who is speaking: what every alert says about the device."""

    ip_address: str
    port: int
    protocol: str  # "HTTP" or "HTTPS"
    mac_address: str  # colon-separated, lower case
    time_zone: str  # the config's POSIX-style zone
    channel_name: str


def alert_xml(event: Event, device: AlertDevice, post_count: int | None = None) -> bytes:
    description = event.description
    if event.details:
        description += " (" + ", ".join(f"{k} {v}" for k, v in event.details.items()) + ")"
    return render(
        "EventNotificationAlert",
        {
            "ipAddress": device.ip_address,
            "portNo": device.port,
            "protocol": device.protocol,
            "macAddress": device.mac_address,
            "channelID": event.source,
            "inputIOPortID": event.source if event.type == "io" else None,
            "dateTime": local_iso(event.at, device.time_zone),
            "activePostCount": (1 if event.active else 0) if post_count is None else post_count,
            "eventType": event.type,
            "eventState": event.state,
            "eventDescription": description,
            "channelName": device.channel_name,
        },
    )


class TooManySubscribers(Exception):
    pass


class Subscription:
    """One alertStream: its queue of alerts; `cut` once it fell behind by QUEUE_LIMIT."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_LIMIT)
        self.cut = asyncio.Event()

    def offer(self, alert: bytes) -> None:
        try:
            self.queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.cut.set()

    async def next(self, timeout: float) -> bytes | None:
        """The next alert, or None after `timeout` s without one (time for a heartbeat).

        ConnectionAbortedError once the subscription is cut (it fell behind, or the device
        is stopping).
        """
        if self.cut.is_set():
            raise ConnectionAbortedError("the alert stream was cut off")
        if not self.queue.empty():
            return self.queue.get_nowait()
        getter = asyncio.ensure_future(self.queue.get())
        cutter = asyncio.ensure_future(self.cut.wait())
        try:
            await asyncio.wait((getter, cutter), timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            cutter.cancel()
            if not getter.done():
                getter.cancel()
        if self.cut.is_set():
            raise ConnectionAbortedError("the alert stream was cut off")
        return getter.result() if getter.done() and not getter.cancelled() else None


class AlertHub:
    def __init__(self, device: Callable[[], AlertDevice]) -> None:
        self.device = device
        self._subscriptions: set[Subscription] = set()

    def publish(self, event: Event) -> None:
        """Rendered once, whatever the number of subscribers."""
        if self._subscriptions:
            alert = self.render(event)
            for subscription in self._subscriptions:
                subscription.offer(alert)

    def subscribe(self) -> Subscription:
        if len(self._subscriptions) >= MAX_SUBSCRIBERS:
            raise TooManySubscribers(f"{MAX_SUBSCRIBERS} alert streams are open")
        subscription = Subscription()
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def close(self) -> None:
        """End every stream (the device is stopping)."""
        for subscription in self._subscriptions:
            subscription.cut.set()

    def render(self, event: Event) -> bytes:
        return alert_xml(event, self.device())

    def heartbeat(self, now: datetime) -> bytes:
        return alert_xml(Event("videoloss", 0, False, now), self.device(), post_count=0)
