"""Alarm inputs and relays on gpiozero's real mock pin factory, publishing to a real EventBus.

Contacts are driven on the mock lines as the wiring would (a closed contact pulls its pulled-up
line low), from a thread when they bounce, as gpiozero calls back from its own threads. Relay
hold times run on a clock the tests fire by hand; debounce runs on the event loop's clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from vigil.board.description import BoardAlarmIO, BoardDayNight, BoardError
from vigil.board.gpio import chip_board_info, make_pin_factory
from vigil.config.events import AlarmInput, AlarmIOSettings, AlarmOutput, EventSettings
from vigil.events.alarm_io import AlarmIO
from vigil.events.bus import Event, EventBus

BOARD = BoardAlarmIO(inputs=["GPIO17", "GPIO27"], outputs=["GPIO22"])
DEBOUNCE_MS = 40
INPUTS = [AlarmInput(id=1, debounce_ms=DEBOUNCE_MS), AlarmInput(id=2, debounce_ms=DEBOUNCE_MS)]
OUTPUTS = [AlarmOutput(id=1, hold_s=30)]


@dataclass
class FakeTimer:
    delay: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class HoldClock:
    """Stands in for `loop.call_later` for the relay holds: the test says when time is up."""

    timers: list[FakeTimer] = field(default_factory=list)

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(delay, callback)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[FakeTimer]:
        return [t for t in self.timers if not t.cancelled]

    def elapse(self) -> None:
        (timer,) = self.pending()
        timer.cancelled = True
        timer.callback()


@dataclass
class Rig:
    alarm: AlarmIO
    factory: MockFactory
    clock: HoldClock
    settings: AlarmIOSettings
    events: list[Event] = field(default_factory=list)

    def pin(self, name: str) -> MockPin:
        pin = self.factory.pin(name)
        assert isinstance(pin, MockPin)
        return pin

    def io_events(self) -> list[tuple[int, bool]]:
        return [(e.source, e.active) for e in self.events if e.type == "io"]

    def change(self, **changes: object) -> None:
        """A configuration change, as the store hands it to the subscriber."""
        old = self.settings
        self.settings = dataclasses.replace(old, **changes)  # type: ignore[arg-type]
        self.alarm.apply(EventSettings(alarm_io=old), EventSettings(alarm_io=self.settings))


@asynccontextmanager
async def running(
    inputs: list[AlarmInput] = INPUTS, outputs: list[AlarmOutput] = OUTPUTS, linked: bool = False
) -> AsyncIterator[Rig]:
    """AlarmIO started on mock pins; `linked`: every io alarm triggers relay 1, as a rule would."""
    factory = MockFactory()
    bus = EventBus(lambda: datetime.now(UTC), hold_off_s=0)
    clock = HoldClock()
    holder: list[Rig] = []
    alarm = AlarmIO(BOARD, lambda: holder[0].settings, bus, factory, clock.call_later)
    rig = Rig(alarm, factory, clock, AlarmIOSettings(inputs=inputs, outputs=outputs))
    holder.append(rig)
    bus.subscribe(rig.events.append)
    if linked:
        bus.subscribe(lambda event: alarm.trigger(1) if event.active else None)
    await alarm.start()
    try:
        yield rig
    finally:
        await alarm.stop()


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def settled() -> None:
    """Long enough for any debounce under way to end, and its event to be out."""
    await asyncio.sleep(3 * DEBOUNCE_MS / 1000)


def bounce(pin: MockPin, edges: int, ends_closed: bool, gap_s: float = 0.003) -> None:
    """A contact chattering `edges` times, from another thread, ending closed or open."""
    for n in range(edges):
        closed = ((edges - 1 - n) % 2 == 0) == ends_closed
        if closed:
            pin.drive_low()
        else:
            pin.drive_high()
        time.sleep(gap_s)


# -- inputs ------------------------------------------------------------------------------------
async def test_normally_open_input_alarms_while_its_contact_is_closed() -> None:
    async with running() as rig:
        assert not rig.alarm.input_active(1)
        rig.pin("GPIO17").drive_low()  # the contact closes: the pulled-up line goes low
        await until(lambda: rig.io_events() == [(1, True)])
        assert rig.alarm.input_active(1) and not rig.alarm.input_active(2)
        rig.pin("GPIO17").drive_high()
        await until(lambda: rig.io_events() == [(1, True), (1, False)])
        assert not rig.alarm.input_active(1)


async def test_normally_closed_input_alarms_while_its_contact_is_open() -> None:
    nc = [dataclasses.replace(INPUTS[0], normally="closed"), INPUTS[1]]
    async with running(inputs=nc) as rig:
        # Nothing closes the contact yet (a cut wire): in alarm from the start.
        assert rig.io_events() == [(1, True)] and rig.alarm.input_active(1)
        rig.pin("GPIO17").drive_low()
        await until(lambda: rig.io_events() == [(1, True), (1, False)])
        assert not rig.alarm.input_active(1)


async def test_an_input_in_alarm_at_start_can_trigger_a_relay_at_once() -> None:
    nc = [dataclasses.replace(INPUTS[0], normally="closed")]
    async with running(inputs=nc, linked=True) as rig:
        assert rig.io_events() == [(1, True)] and rig.alarm.output_active(1)


async def test_a_bouncing_contact_makes_one_event_in_the_state_it_settles_in() -> None:
    async with running() as rig:
        pin = rig.pin("GPIO17")
        await asyncio.to_thread(bounce, pin, 9, ends_closed=True)
        await until(lambda: rig.io_events() != [])
        await settled()
        assert rig.io_events() == [(1, True)]
        await asyncio.to_thread(bounce, pin, 9, ends_closed=False)
        await settled()
        assert rig.io_events() == [(1, True), (1, False)]


async def test_a_glitch_shorter_than_the_debounce_makes_no_event() -> None:
    async with running() as rig:
        await asyncio.to_thread(bounce, rig.pin("GPIO17"), 6, ends_closed=False)
        await settled()
        assert rig.io_events() == []


async def test_debounce_is_the_inputs_own_and_changes_live() -> None:
    async with running() as rig:
        slow = dataclasses.replace(INPUTS[0], debounce_ms=400)
        rig.change(inputs=[slow, INPUTS[1]])
        rig.pin("GPIO17").drive_low()
        await asyncio.sleep(0.2)
        assert rig.io_events() == []  # still within its 400 ms
        await until(lambda: rig.io_events() == [(1, True)])


async def test_a_disabled_input_publishes_nothing_and_enabling_it_applies_at_once() -> None:
    disabled = [dataclasses.replace(INPUTS[0], enabled=False), INPUTS[1]]
    async with running(inputs=disabled) as rig:
        rig.pin("GPIO17").drive_low()
        await settled()
        assert rig.io_events() == [] and not rig.alarm.input_active(1)
        rig.change(inputs=INPUTS)  # enabled while its contact is closed: the alarm starts
        assert rig.alarm.input_active(1)
        rig.change(inputs=disabled)  # disabled in alarm: the event ends
        await until(lambda: rig.io_events() == [(1, True), (1, False)])
        rig.pin("GPIO17").drive_high()
        rig.pin("GPIO17").drive_low()
        await settled()
        assert rig.io_events() == [(1, True), (1, False)]


async def test_switching_no_to_nc_re_evaluates_the_contact() -> None:
    async with running() as rig:
        rig.change(inputs=[dataclasses.replace(INPUTS[0], normally="closed"), INPUTS[1]])
        await until(lambda: rig.io_events() == [(1, True)])  # the open contact is now an alarm


async def test_an_input_removed_from_the_configuration_ends_its_event_and_line() -> None:
    async with running() as rig:
        rig.pin("GPIO27").drive_low()
        await until(lambda: rig.io_events() == [(2, True)])
        rig.change(inputs=INPUTS[:1])
        await until(lambda: rig.io_events() == [(2, True), (2, False)])
        with pytest.raises(LookupError):
            rig.alarm.input_active(2)
        rig.change(inputs=INPUTS)  # back, on a line opened afresh (the mock's is pulled up)
        assert not rig.alarm.input_active(2)
        rig.pin("GPIO27").drive_low()
        await until(lambda: rig.io_events() == [(2, True), (2, False), (2, True)])


# -- relays ------------------------------------------------------------------------------------
async def test_a_trigger_holds_the_relay_for_its_hold_time_and_a_new_one_restarts_it() -> None:
    async with running() as rig:
        relay = rig.pin("GPIO22")
        assert relay.state is False and not rig.alarm.output_active(1)
        rig.alarm.trigger(1)
        assert relay.state is True and rig.alarm.output_active(1)
        assert [t.delay for t in rig.clock.pending()] == [30]
        rig.alarm.trigger(1)  # again before it ends: a fresh 30 s
        assert [t.delay for t in rig.clock.pending()] == [30] and len(rig.clock.timers) == 2
        rig.clock.elapse()
        assert relay.state is False and not rig.alarm.output_active(1)


async def test_a_latched_relay_stays_until_cleared() -> None:
    async with running(outputs=[AlarmOutput(id=1, latch=True)]) as rig:
        rig.alarm.trigger(1)
        assert rig.clock.pending() == [] and rig.pin("GPIO22").state is True
        await rig.alarm.set_output(1, False)
        assert rig.pin("GPIO22").state is False and not rig.alarm.output_active(1)


async def test_unlatching_an_active_relay_starts_its_hold() -> None:
    async with running(outputs=[AlarmOutput(id=1, latch=True, hold_s=8)]) as rig:
        rig.alarm.trigger(1)
        rig.change(outputs=[AlarmOutput(id=1, latch=False, hold_s=8)])
        assert [t.delay for t in rig.clock.pending()] == [8]
        rig.change(outputs=[AlarmOutput(id=1, latch=True, hold_s=8)])
        assert rig.clock.pending() == [] and rig.alarm.output_active(1)


async def test_a_manual_trigger_lasts_until_cleared_by_hand() -> None:
    async with running() as rig:
        await rig.alarm.set_output(1, True)
        rig.alarm.trigger(1)  # a rule meanwhile does not put an end to it
        assert rig.clock.pending() == [] and rig.alarm.output_active(1)
        await rig.alarm.set_output(1, False)
        assert not rig.alarm.output_active(1)
        rig.alarm.trigger(1)  # once cleared, rules hold it again
        assert [t.delay for t in rig.clock.pending()] == [30]
        await rig.alarm.set_output(1, False)  # clearing by hand also ends a rule's hold
        assert rig.clock.pending() == [] and rig.pin("GPIO22").state is False


async def test_an_active_low_relay_drives_its_line_low_and_can_be_inverted_live() -> None:
    async with running(outputs=[AlarmOutput(id=1, active_level="low")]) as rig:
        relay = rig.pin("GPIO22")
        assert relay.state is True  # inactive: high
        rig.alarm.trigger(1)
        assert relay.state is False and rig.alarm.output_active(1)
        rig.change(outputs=[AlarmOutput(id=1, active_level="high")])
        assert relay.state is True and rig.alarm.output_active(1)  # still active, other level


async def test_unknown_ids_are_lookup_errors() -> None:
    async with running() as rig:
        for call in (lambda: rig.alarm.input_active(3), lambda: rig.alarm.output_active(2)):
            with pytest.raises(LookupError):
                call()
        with pytest.raises(LookupError):
            rig.alarm.trigger(2)
        with pytest.raises(LookupError):
            await rig.alarm.set_output(0, True)


async def test_configured_ids_without_a_board_line_are_left_out() -> None:
    extra = [*INPUTS, AlarmInput(id=3)]
    async with running(inputs=extra, outputs=[*OUTPUTS, AlarmOutput(id=2)]) as rig:
        with pytest.raises(LookupError):
            rig.alarm.input_active(3)
        with pytest.raises(LookupError):
            rig.alarm.output_active(2)


async def test_stop_switches_relays_off_and_closes_every_line() -> None:
    async with running() as rig:
        await rig.alarm.set_output(1, True)
        devices = [*rig.alarm._inputs.values(), *rig.alarm._outputs.values()]
    assert rig.pin("GPIO22").state is False
    assert [d.closed for d in devices] == [True, True, True]


# -- the simulator's control -------------------------------------------------------------------
async def test_the_sim_input_part_drives_the_contact() -> None:
    async with running() as rig:
        rig.alarm.sim_input({"id": 2, "closed": True})
        assert rig.pin("GPIO27").state is False
        await until(lambda: rig.io_events() == [(2, True)])
        rig.alarm.sim_input({"id": 2, "closed": False})
        await until(lambda: rig.io_events() == [(2, True), (2, False)])


@pytest.mark.parametrize(
    "request_",
    [
        None,
        [1, True],
        {"id": 1},
        {"id": 1, "closed": True, "extra": 1},
        {"id": "1", "closed": True},
        {"id": True, "closed": True},
        {"id": 1, "closed": 1},
        {"id": 3, "closed": True},
        {"id": 0, "closed": True},
    ],
)
async def test_the_sim_input_part_refuses_bad_requests(request_: object) -> None:
    async with running() as rig:
        with pytest.raises(ValueError):
            rig.alarm.sim_input(request_)
        assert [rig.pin(p).state for p in BOARD.inputs] == [True, True]


# -- the pin factory ---------------------------------------------------------------------------
def test_the_sim_board_gets_gpiozeros_mock_factory() -> None:
    factory = make_pin_factory(BoardAlarmIO(driver="sim"))
    assert isinstance(factory, MockFactory)
    factory.close()


def test_a_gpio_factory_that_cannot_start_is_a_board_error() -> None:
    # This host is no Raspberry Pi: gpiozero's native factory refuses to start.
    with pytest.raises(BoardError, match=r"\[alarm_io\] pin_factory: native cannot start"):
        make_pin_factory(BoardAlarmIO(driver="gpio", pin_factory="native"))


def test_the_chip_factory_without_its_chip_is_a_board_error() -> None:
    # This host has no /dev/gpiochip7 (nor, in its venv, lgpio): the daemon stops, naming it.
    # The chip factory driving real lines is tested in the QEMU rig (tests/rig, gpio-sim).
    with pytest.raises(BoardError, match=r"\[day_night\] pin_factory: chip 7 cannot start"):
        make_pin_factory(BoardDayNight(driver="gpio", pin_factory="chip", chip=7))


@pytest.mark.parametrize(("name", "line"), [("GPIO0", 0), ("GPIO7", 7), (5, 5), ("3", 3)])
def test_chip_pins_are_named_by_their_line(name: object, line: int) -> None:
    board = chip_board_info(8, "gpiochip0 (gpio-sim.0-node0)")
    ((_, pin),) = board.find_pin(name)
    assert (pin.name, pin.number, "gpio" in pin.interfaces) == (f"GPIO{line}", line, True)


@pytest.mark.parametrize("name", ["GPIO8", "BOARD11", "GPIO", "gpio3", "J8:11", ""])
def test_other_pin_names_are_not_on_the_chip(name: str) -> None:
    assert list(chip_board_info(8, "gpiochip0").find_pin(name)) == []
