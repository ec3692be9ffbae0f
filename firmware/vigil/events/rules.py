"""Rules: an event's trigger, if enabled and armed, runs its linkage.

What was chosen:

- Armed: the trigger is enabled and the device's local time falls in one of its schedule's
  periods when the event goes active (`config.weekly.period_at`; a night shift is two periods,
  one each side of midnight, and Sunday runs into Monday like any other night). The device's
  exceptions are always armed, as on Hikvision devices.
- An event that went active while armed is *engaged*: its end goes to the same linkage (the
  alert stream and alarm servers see it end, recording's post-record starts), even if the
  schedule closed meanwhile. An event that was not armed when it started does nothing at all,
  at its start or at its end.
- Linkage: `center` puts the event on the alert stream; every `Action` (mail, FTP, HTTP hosts)
  whose `wanted()` says yes is started through the ActionRunner (retries, timeouts, never on
  the bus's time); `record` starts (and at the end, stops) event recording on each listed
  channel, as a `motion` event for `vmd`, `alarm` for `io` and the event type otherwise (which
  record schedules read as "event"); `outputs` closes those relays for their hold time;
  `ptz_preset` asks the PTZ hook to go to that preset (the PTZ issue fills the hook; without
  one, a warning is logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from vigil.config.events import EXCEPTION_EVENTS, EventSettings, EventTrigger
from vigil.config.weekly import period_at
from vigil.events.alerts import AlertHub
from vigil.events.bus import Event, EventBus, kind_of
from vigil.events.linkage import Action, ActionRunner

log = logging.getLogger("vigil.rules")


@dataclass
class LinkageHooks:
    """What the rules drive inside the device; the daemon fills these in."""

    record: Callable[[int, str, bool], Awaitable[None]]  # channel, kind, active
    output: Callable[[int], None]  # close relay `id` for its hold time
    ptz_preset: Callable[[int, int], Awaitable[None]] | None = None  # channel, preset


class Rules:
    def __init__(
        self,
        bus: EventBus,
        settings: Callable[[], EventSettings],
        local_now: Callable[[], datetime],
        alerts: AlertHub,
        runner: ActionRunner,
        actions: Sequence[Action],
        hooks: LinkageHooks,
    ) -> None:
        self._settings, self._local_now = settings, local_now
        self.alerts, self.runner, self.actions, self.hooks = alerts, runner, actions, hooks
        self._engaged: dict[tuple[str, int], EventTrigger] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe = bus.subscribe(self.on_event)

    def armed(self, trigger: EventTrigger) -> bool:
        if not trigger.enabled:
            return False
        if trigger.event in EXCEPTION_EVENTS:
            return True
        return period_at(trigger.schedule, self._local_now()) is not None

    def on_event(self, event: Event) -> None:
        if event.active:
            trigger = self._settings().trigger(event.type, event.source)
            if trigger is None or not self.armed(trigger):
                return
            self._engaged[event.key] = trigger
        else:
            engaged = self._engaged.pop(event.key, None)
            if engaged is None:
                return
            trigger = engaged
        self._link(trigger, event)

    def _link(self, trigger: EventTrigger, event: Event) -> None:
        if trigger.center:
            self.alerts.publish(event)
        for action in self.actions:
            if action.wanted(trigger, event):
                self.runner.start(action, event)
        kind = kind_of(event.type)
        for channel in trigger.record:
            self._spawn(self.hooks.record(channel, kind, event.active), "recording")
        if not event.active:
            return
        for output in trigger.outputs:
            self.hooks.output(output)
        if trigger.ptz_preset:
            self._go_to_preset(event, trigger.ptz_preset)

    def _go_to_preset(self, event: Event, preset: int) -> None:
        if self.hooks.ptz_preset is None:
            log.warning("%s %s: no PTZ to send to preset %d", event.type, event.source, preset)
            return
        channel = event.source if event.type not in ("io", *EXCEPTION_EVENTS) else 1
        self._spawn(self.hooks.ptz_preset(channel, preset), "PTZ preset")

    def _spawn(self, work: Awaitable[None], what: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("%s linkage failed", what)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        self._unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.runner.stop()
