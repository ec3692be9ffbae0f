"""The event bus: de-duplication, hold-off, pulses, listeners that fail, bounded history; and
the alert hub's bounded subscriptions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from vigil.events import bus as bus_module
from vigil.events.alerts import QUEUE_LIMIT, AlertDevice, AlertHub, TooManySubscribers, alert_xml
from vigil.events.bus import Event, EventBus

HOLD_OFF = 0.05


def now() -> datetime:
    return datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def recording_bus() -> tuple[EventBus, list[tuple[str, int, bool]]]:
    bus = EventBus(now, hold_off_s=HOLD_OFF)
    seen: list[tuple[str, int, bool]] = []
    bus.subscribe(lambda e: seen.append((e.type, e.source, e.active)))
    return bus, seen


async def test_the_same_state_twice_is_one_event() -> None:
    bus, seen = recording_bus()
    bus.publish("vmd", 1, True)
    bus.publish("vmd", 1, True)
    bus.publish("vmd", 2, True)  # another source is another event
    assert seen == [("vmd", 1, True), ("vmd", 2, True)]
    assert bus.is_active("vmd", 1) and not bus.is_active("io", 1)


async def test_a_flicker_within_the_hold_off_is_one_event() -> None:
    bus, seen = recording_bus()
    for _ in range(10):
        bus.publish("io", 1, True)
        bus.publish("io", 1, False)
        await asyncio.sleep(HOLD_OFF / 10)
    assert seen == [("io", 1, True)]
    await asyncio.sleep(HOLD_OFF * 2)
    assert seen == [("io", 1, True), ("io", 1, False)]


async def test_an_inactive_without_an_active_is_nothing() -> None:
    bus, seen = recording_bus()
    bus.publish("vmd", 1, False)
    await asyncio.sleep(HOLD_OFF * 2)
    assert seen == []


async def test_a_pulse_ends_by_itself_and_keeps_its_details() -> None:
    bus, _ = recording_bus()
    events: list[Event] = []
    bus.subscribe(events.append)
    bus.pulse("illaccess", 0, {"ipAddress": "10.0.0.9"})
    await asyncio.sleep(HOLD_OFF * 2)
    assert [(e.state, dict(e.details)) for e in events] == [
        ("active", {"ipAddress": "10.0.0.9"}),
        ("inactive", {"ipAddress": "10.0.0.9"}),
    ]
    assert events[0].id < events[1].id and events[0].description == "Illegal access"


async def test_a_failing_listener_does_not_stop_the_others() -> None:
    bus, seen = recording_bus()

    def broken(_: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(lambda e: seen.append(("after", e.source, e.active)))
    bus.publish("vmd", 1, True)
    assert ("vmd", 1, True) in seen and ("after", 1, True) in seen


async def test_threads_publish_through_the_loop() -> None:
    bus, seen = recording_bus()
    bus.bind(asyncio.get_running_loop())
    await asyncio.to_thread(bus.publish_threadsafe, "videoloss", 1, True)
    await asyncio.sleep(0.01)
    assert seen == [("videoloss", 1, True)]


async def test_the_history_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_module, "HISTORY", 5)
    bus, _ = recording_bus()
    for source in range(8):
        bus.publish("vmd", source, True)
    assert [e.source for e in bus.history()] == [3, 4, 5, 6, 7]


DEVICE = AlertDevice("192.168.1.64", 80, "HTTP", "02:00:00:00:00:01", "CST-8:00:00", "Cam")


def test_an_io_alert_names_its_input_in_local_time() -> None:
    xml = alert_xml(Event("io", 2, True, now()), DEVICE).decode()
    assert "<inputIOPortID>2</inputIOPortID>" in xml and "<channelID>2</channelID>" in xml
    assert "<dateTime>2026-11-21T20:00:00+08:00</dateTime>" in xml
    assert "<eventDescription>IO alarm</eventDescription>" in xml


async def test_a_subscriber_that_falls_behind_is_cut_off() -> None:
    hub = AlertHub(lambda: DEVICE)
    slow, fast = hub.subscribe(), hub.subscribe()
    for i in range(QUEUE_LIMIT + 1):
        hub.publish(Event("vmd", 1, i % 2 == 0, now(), i))
        if not fast.queue.empty():
            await fast.next(0)
    assert slow.cut.is_set() and not fast.cut.is_set()
    with pytest.raises(ConnectionAbortedError):
        await slow.next(1)
    assert await fast.next(0.01) is None  # nothing pending: time for a heartbeat


async def test_subscribers_are_counted_and_closed() -> None:
    hub = AlertHub(lambda: DEVICE)
    subscriptions = [hub.subscribe() for _ in range(16)]
    with pytest.raises(TooManySubscribers):
        hub.subscribe()
    waiting = asyncio.ensure_future(subscriptions[0].next(10))
    await asyncio.sleep(0)
    hub.close()
    with pytest.raises(ConnectionAbortedError):
        await asyncio.wait_for(waiting, 1)
