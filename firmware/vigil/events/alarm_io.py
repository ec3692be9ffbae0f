"""Alarm inputs and relay outputs (SPEC §5): gpiozero devices on the board's GPIO lines.

Input `i` is the line `board.inputs[i-1]`, output `o` the line `board.outputs[o-1]`; an id that
the configuration has and the board lacks is left out with a warning.

Electrical convention (the issue leaves it open): each input line is pulled up and a closed
contact pulls it low, as the dry-contact alarm inputs of camera boards are wired, so a closed
contact is the gpiozero device's *active* state (`pull_up=True`). Whether that is an alarm is
the input's setting: NO (`normally="open"`) alarms while the contact is closed, NC while it is
open (a cut wire is an alarm too).

Debounce: every edge (re)starts a timer of the input's `debounce_ms`; once the line has been
still that long its level is read and, if the alarm state changed, one `io` event is published
with the input id as source. A bouncing contact thus makes one event, in the state it settled
in. (gpiozero's `bounce_time` drops the edges after the first, which can lose the final level,
and its mock pins ignore it.) gpiozero calls back in its own threads; the edge is handed to the
event loop at once, and all state lives there.

A disabled input publishes nothing and reads inactive; disabling an input in alarm ends its
event, enabling one whose contact is in alarm starts one. Its line stays open meanwhile.

Outputs: `trigger()` (the rules' linkage) makes a relay active for `hold_s`, a new trigger
restarting the hold, or until it is cleared when `latch` is set. `set_output()` is the manual
trigger and clear (ISAPI `outputs/{id}/trigger`): a relay switched on by hand stays on until it
is cleared by hand, as Hikvision's manual alarm output does, and a rule's trigger meanwhile does
not shorten it. `active_level` is the line level of an active relay. Relays are switched off
before their lines are released at stop.

Settings apply live (`apply`, subscribed to the "events" section): NO/NC and enable are
re-evaluated at once and debounce applies from the next edge; a relay whose latch is turned off
starts its hold, one whose level is inverted keeps its state on the new level; inputs and
outputs added to or removed from the configuration are opened or closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from gpiozero import DigitalInputDevice, DigitalOutputDevice, Factory
from gpiozero.pins.mock import MockPin

from vigil.board.description import BoardAlarmIO
from vigil.config.events import AlarmInput, AlarmIOSettings, AlarmOutput, EventSettings
from vigil.events.bus import EventBus

log = logging.getLogger(__name__)


class Timer(Protocol):
    def cancel(self) -> None: ...


# `loop.call_later` by default; tests hand in a clock of their own for the hold times.
Scheduler = Callable[[float, Callable[[], None]], Timer]


def _state(active: bool) -> str:
    return "active" if active else "inactive"


class AlarmIO:
    def __init__(
        self,
        board: BoardAlarmIO,
        settings: Callable[[], AlarmIOSettings],
        bus: EventBus,
        pin_factory: Factory,
        hold_timer: Scheduler | None = None,
    ) -> None:
        self.board = board
        self._settings = settings
        self._bus = bus
        self._factory = pin_factory  # owned: closed at stop
        self._hold_timer = hold_timer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inputs: dict[int, DigitalInputDevice] = {}
        self._closed: dict[int, bool] = {}  # each input's contact, as it last settled
        self._alarm: dict[int, bool] = {}  # each input's alarm state, as published
        self._settling: dict[int, asyncio.TimerHandle] = {}
        self._outputs: dict[int, DigitalOutputDevice] = {}
        self._holds: dict[int, Timer] = {}
        self._manual: set[int] = set()  # relays switched on by hand

    # -- life -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._hold_timer is None:
            self._hold_timer = self._loop.call_later
        settings = self._settings()
        for output in settings.outputs:  # first: an input in alarm at once may trigger them
            self._open_output(output)
        for alarm_input in settings.inputs:
            self._open_input(alarm_input)
        log.info(
            "alarm I/O (%s): inputs %s, outputs %s", self.board.driver,
            sorted(self._inputs) or "none", sorted(self._outputs) or "none",
        )  # fmt: skip

    async def stop(self) -> None:
        for input_id in list(self._inputs):
            self._close_input(input_id, end_event=False)
        for output_id in list(self._outputs):
            self._close_output(output_id)
        self._factory.close()

    # -- reading (AlarmIOControl) -----------------------------------------------------------
    def input_active(self, input_id: int) -> bool:
        if input_id not in self._inputs:
            raise LookupError(f"no alarm input {input_id}")
        return self._alarm.get(input_id, False)

    def output_active(self, output_id: int) -> bool:
        return bool(self._output(output_id).is_active)

    # -- relays -----------------------------------------------------------------------------
    def trigger(self, output_id: int) -> None:
        """A rule's linkage: active for the hold time (restarted), or latched; LookupError."""
        self._output(output_id)
        setting = self._settings().output(output_id)
        if setting is None:  # the board's line without configuration is never opened
            raise LookupError(f"no alarm output {output_id}")
        if output_id in self._manual:
            return  # on by hand until cleared by hand
        if setting.latch:
            self._switch(output_id, True, "triggered, latched until cleared")
            return
        self._switch(output_id, True, f"triggered for {setting.hold_s} s")
        self._start_hold(output_id, setting.hold_s)

    async def set_output(self, output_id: int, active: bool) -> None:
        """By hand: on until cleared by hand, or off now; LookupError for no such output."""
        self._output(output_id)
        self._cancel_hold(output_id)
        if active:
            self._manual.add(output_id)
        else:
            self._manual.discard(output_id)
        self._switch(output_id, active, "by hand")

    # -- the simulator ----------------------------------------------------------------------
    def sim_input(self, request: Any) -> None:
        """SimControl part "input": `{"id": 1, "closed": true}` closes input 1's contact
        (drives its mock line low); ValueError for anything else."""
        if not isinstance(request, dict) or set(request) != {"id", "closed"}:
            raise ValueError('an input request is {"id": <input>, "closed": true|false}')
        input_id, closed = request["id"], request["closed"]
        if type(input_id) is not int or not isinstance(closed, bool):
            raise ValueError("id is an integer, closed is true or false")
        device = self._inputs.get(input_id)
        if device is None:
            raise ValueError(f"no alarm input {input_id}")
        pin = device.pin
        if not isinstance(pin, MockPin):
            raise ValueError("the alarm inputs are GPIO lines, not simulated ones")
        if closed:
            pin.drive_low()
        else:
            pin.drive_high()

    # -- configuration ----------------------------------------------------------------------
    def apply(self, old: EventSettings, new: EventSettings) -> None:
        if old.alarm_io == new.alarm_io:
            return
        self._apply_inputs(old.alarm_io, new.alarm_io)
        self._apply_outputs(old.alarm_io, new.alarm_io)

    def _apply_inputs(self, old: AlarmIOSettings, new: AlarmIOSettings) -> None:
        for setting in new.inputs:
            if setting.id in self._inputs:
                self._evaluate(setting.id, setting)
            elif old.input(setting.id) is None:
                self._open_input(setting)
        for input_id in [i for i in self._inputs if new.input(i) is None]:
            self._close_input(input_id, end_event=True)

    def _apply_outputs(self, old: AlarmIOSettings, new: AlarmIOSettings) -> None:
        for setting in new.outputs:
            if setting.id in self._outputs:
                self._retune(setting)
            elif old.output(setting.id) is None:
                self._open_output(setting)
        for output_id in [o for o in self._outputs if new.output(o) is None]:
            self._close_output(output_id)

    def _retune(self, setting: AlarmOutput) -> None:
        output_id, device = setting.id, self._outputs[setting.id]
        active_high = setting.active_level == "high"
        if device.active_high != active_high:
            active = bool(device.is_active)
            device.active_high = active_high
            device.value = active  # the same state, on the other level
            log.info("alarm output %d: active %s from now on", output_id, setting.active_level)
        if setting.latch:
            self._cancel_hold(output_id)
        elif device.is_active and output_id not in self._manual and output_id not in self._holds:
            self._start_hold(output_id, setting.hold_s)  # was latched: the hold starts now

    # -- inputs -----------------------------------------------------------------------------
    def _line(self, lines: list[str], item_id: int, what: str) -> str | None:
        if item_id > len(lines):
            log.warning("alarm %s %d is configured but the board has no line for it", what,
                        item_id)  # fmt: skip
            return None
        return lines[item_id - 1]

    def _open_input(self, setting: AlarmInput) -> None:
        line = self._line(self.board.inputs, setting.id, "input")
        if line is None:
            return
        device = DigitalInputDevice(line, pull_up=True, pin_factory=self._factory)
        edge = partial(self._edge_from_thread, setting.id)
        device.when_activated = edge
        device.when_deactivated = edge
        self._inputs[setting.id] = device
        self._closed[setting.id] = bool(device.is_active)
        self._evaluate(setting.id, setting)

    def _close_input(self, input_id: int, end_event: bool) -> None:
        pending = self._settling.pop(input_id, None)
        if pending is not None:
            pending.cancel()
        self._inputs.pop(input_id).close()
        self._closed.pop(input_id, None)
        if self._alarm.pop(input_id, False) and end_event:
            log.info("alarm input %d inactive (removed)", input_id)
            self._bus.publish("io", input_id, False)

    def _edge_from_thread(self, input_id: int) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._edge, input_id)

    def _edge(self, input_id: int) -> None:
        """On the loop: the line moved; look again once it has been still for the debounce."""
        if input_id not in self._inputs:
            return  # closed since
        pending = self._settling.pop(input_id, None)
        if pending is not None:
            pending.cancel()
        setting = self._settings().input(input_id)
        debounce_s = (setting.debounce_ms if setting else AlarmInput().debounce_ms) / 1000
        assert self._loop is not None
        self._settling[input_id] = self._loop.call_later(debounce_s, self._settle, input_id)

    def _settle(self, input_id: int) -> None:
        self._settling.pop(input_id, None)
        device = self._inputs.get(input_id)
        if device is None:
            return
        self._closed[input_id] = bool(device.is_active)
        setting = self._settings().input(input_id)
        if setting is not None:
            self._evaluate(input_id, setting)

    def _evaluate(self, input_id: int, setting: AlarmInput) -> None:
        """Publish the input's alarm state if it changed (its contact, NO/NC, enable)."""
        closed = self._closed[input_id]
        alarm = setting.enabled and closed == (setting.normally == "open")
        if alarm == self._alarm.get(input_id, False):
            return
        self._alarm[input_id] = alarm
        name = f" ({setting.name})" if setting.name else ""
        log.info("alarm input %d%s %s: contact %s, normally %s%s", input_id, name,
                 _state(alarm), "closed" if closed else "open", setting.normally,
                 "" if setting.enabled else ", disabled")  # fmt: skip
        self._bus.publish("io", input_id, alarm)

    # -- outputs ----------------------------------------------------------------------------
    def _output(self, output_id: int) -> DigitalOutputDevice:
        device = self._outputs.get(output_id)
        if device is None:
            raise LookupError(f"no alarm output {output_id}")
        return device

    def _open_output(self, setting: AlarmOutput) -> None:
        line = self._line(self.board.outputs, setting.id, "output")
        if line is None:
            return
        self._outputs[setting.id] = DigitalOutputDevice(
            line,
            active_high=setting.active_level == "high",
            initial_value=False,
            pin_factory=self._factory,
        )

    def _close_output(self, output_id: int) -> None:
        self._cancel_hold(output_id)
        self._manual.discard(output_id)
        self._switch(output_id, False, "released")
        self._outputs.pop(output_id).close()

    def _switch(self, output_id: int, active: bool, why: str) -> None:
        device = self._outputs[output_id]
        if bool(device.is_active) == active:
            return
        device.value = active
        log.info("alarm output %d %s (%s)", output_id, _state(active), why)

    def _start_hold(self, output_id: int, hold_s: int) -> None:
        self._cancel_hold(output_id)
        assert self._hold_timer is not None
        self._holds[output_id] = self._hold_timer(hold_s, partial(self._hold_over, output_id))

    def _cancel_hold(self, output_id: int) -> None:
        hold = self._holds.pop(output_id, None)
        if hold is not None:
            hold.cancel()

    def _hold_over(self, output_id: int) -> None:
        self._holds.pop(output_id, None)
        if output_id in self._outputs:
            self._switch(output_id, False, "hold time over")
