"""Rules: arming schedules (across midnight and the week's end), engaged events, linkage, and
the action runner's bounded retries that never hold up other actions."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from vigil.config.events import ArmingPeriod, EventSettings, EventTrigger, default_triggers
from vigil.events.alerts import AlertDevice, AlertHub
from vigil.events.bus import Event, EventBus
from vigil.events.linkage import ActionFailed, ActionRunner
from vigil.events.rules import LinkageHooks, Rules

# Sunday 21 November... 2027-11-21 is a Sunday.
SUNDAY_LATE = datetime(2027, 11, 21, 23, 30)
NIGHT = [
    ArmingPeriod(day="sunday", start="22:00", end="24:00"),
    ArmingPeriod(day="monday", start="00:00", end="06:00"),
]


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class Recorder:
    """An action that records its runs, and fails its first `failures` attempts."""

    def __init__(self, name: str, failures: int = 0, delay: float = 0.0) -> None:
        self.name, self.failures, self.delay = name, failures, delay
        self.runs: list[tuple[str, bool]] = []
        self.attempts = 0

    def wanted(self, trigger: EventTrigger, event: Event) -> bool:
        return trigger.email and event.active  # as the mail action: on activations

    async def run(self, event: Event) -> None:
        self.attempts += 1
        await asyncio.sleep(self.delay)
        if self.attempts <= self.failures:
            raise ActionFailed("the peer said no")
        self.runs.append((event.type, event.active))


class Rig:
    def __init__(self, triggers: list[EventTrigger], at: datetime = SUNDAY_LATE) -> None:
        self.clock = Clock(at)
        self.bus = EventBus(lambda: self.clock.at.astimezone(), hold_off_s=0.01)
        self.settings = EventSettings(triggers=triggers)
        self.alerts: list[tuple[str, bool]] = []
        self.hub = AlertHub(lambda: AlertDevice("0.0.0.0", 80, "HTTP", "", "UTC+0:00:00", ""))
        self.hub.publish = lambda e: self.alerts.append((e.type, e.active))  # type: ignore[method-assign]
        self.recorded: list[tuple[int, str, bool]] = []
        self.outputs: list[int] = []
        self.action = Recorder("email")
        self.rules = Rules(
            self.bus, lambda: self.settings, self.clock, self.hub,
            ActionRunner(retry_delays_s=(0.01, 0.01), attempt_timeout_s=1), [self.action],
            LinkageHooks(record=self._record, output=self.outputs.append),
        )  # fmt: skip

    async def _record(self, channel: int, kind: str, active: bool) -> None:
        self.recorded.append((channel, kind, active))

    async def event(self, type: str, source: int) -> None:
        self.bus.publish(type, source, True)
        await asyncio.sleep(0.01)
        self.bus.publish(type, source, False)
        await asyncio.sleep(0.05)


def vmd(**changes: object) -> EventTrigger:
    return replace(EventTrigger(event="vmd", source=1, schedule=NIGHT), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("at", "armed"),
    [
        (SUNDAY_LATE, True),
        (SUNDAY_LATE + timedelta(hours=1), True),  # Monday 00:30: past midnight, past the week
        (SUNDAY_LATE + timedelta(hours=6, minutes=29), True),  # Monday 05:59
        (SUNDAY_LATE + timedelta(hours=6, minutes=30), False),  # Monday 06:00
        (SUNDAY_LATE - timedelta(hours=2), False),  # Sunday 21:30
        (SUNDAY_LATE - timedelta(days=1), False),  # Saturday 23:30
    ],
)
async def test_the_arming_schedule_crosses_midnight_and_the_week(at: datetime, armed: bool) -> None:
    rig = Rig([vmd(center=True, record=[1], outputs=[1])], at)
    await rig.event("vmd", 1)
    expected = [("vmd", True), ("vmd", False)] if armed else []
    assert rig.alerts == expected
    assert rig.recorded == ([(1, "motion", True), (1, "motion", False)] if armed else [])
    assert rig.outputs == ([1] if armed else [])


async def test_an_event_armed_at_its_start_ends_through_the_same_linkage() -> None:
    rig = Rig([vmd(record=[1])], at=datetime(2027, 11, 22, 5, 59))
    rig.bus.publish("vmd", 1, True)
    rig.clock.at = datetime(2027, 11, 22, 6, 30)  # the schedule closed meanwhile
    rig.bus.publish("vmd", 1, False)
    await asyncio.sleep(0.05)
    assert rig.recorded == [(1, "motion", True), (1, "motion", False)]


async def test_disabled_and_unknown_triggers_do_nothing_and_exceptions_are_always_armed() -> None:
    triggers = [vmd(enabled=False), EventTrigger(event="diskfull", source=0, schedule=[])]
    rig = Rig(triggers, at=datetime(2027, 11, 24, 12, 0))
    await rig.event("vmd", 1)
    await rig.event("tamperdetection", 1)  # no trigger for it
    await rig.event("diskfull", 0)
    assert rig.alerts == [("diskfull", True), ("diskfull", False)]


async def test_io_records_as_alarm_and_others_as_their_type() -> None:
    triggers = [
        EventTrigger(event="io", source=1, record=[1]),
        EventTrigger(event="tamperdetection", source=1, record=[1]),
    ]
    rig = Rig(triggers)
    await rig.event("io", 1)
    await rig.event("tamperdetection", 1)
    assert [(k, a) for _, k, a in rig.recorded] == [
        ("alarm", True), ("alarm", False), ("tamperdetection", True), ("tamperdetection", False)
    ]  # fmt: skip


async def test_a_failing_action_is_retried_a_bounded_number_of_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig([vmd(email=True)])
    rig.action.failures = 10
    with caplog.at_level(logging.INFO, "vigil.linkage"):
        await rig.event("vmd", 1)
        await asyncio.sleep(0.1)
    assert rig.action.attempts == 3 and rig.action.runs == []
    assert "email for vmd 1 active failed after 3 attempts: the peer said no" in caplog.text


async def test_a_dead_peer_does_not_hold_up_other_actions() -> None:
    runner = ActionRunner(retry_delays_s=(0.01,), attempt_timeout_s=0.2)
    dead, alive = Recorder("dead", delay=10), Recorder("alive")
    event = Event("vmd", 1, True, datetime.now().astimezone())
    runner.start(dead, event)
    runner.start(alive, event)
    await asyncio.sleep(0.05)
    assert alive.runs == [("vmd", True)] and dead.runs == []
    await asyncio.sleep(0.5)
    assert dead.attempts == 2  # timed out twice, then given up
    await runner.stop()


def test_the_default_triggers_notify_the_center_for_every_event() -> None:
    triggers = default_triggers(inputs=2)
    assert {t.key for t in triggers} >= {("vmd", 1), ("io", 1), ("io", 2), ("illaccess", 0)}
    assert all(t.center and not t.email and not t.record for t in triggers)
