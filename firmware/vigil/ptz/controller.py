"""The PTZ controller (SPEC §6): ISAPI-level PTZ operations as Pelco frames on the RS-485 line.

Every frame goes through `codec(settings.protocol)` to `settings.address` and the line's queue.
Chosen where the issue is silent:

- One activity at a time: a patrol, a pattern, the park action or the stop at the end of a
  momentary move runs as one task; any manual command (move, stop, goto, preset set/clear)
  cancels it first. While a pattern records, only continuous and momentary moves and stop are
  taken (they are what it records), with the time each was held; other moves are refused.
- Presets live in the dome *and* in the configuration, which keeps each one's name and the
  position it was set at (queried from the dome, or the estimate): a goto needs a preset the
  configuration has. The home position is only in the configuration and is reached with the
  three absolute moves (0x4B/0x4D/0x4F), as are `absolute` and `relative`.
- Patrols loop through their steps: the preset recall (after an approach at the patrol speed
  below the top speed, see `tours.approach`), then the dome's travel time from the position
  model, then the dwell. Patterns replay their steps in a loop. Both stop on a manual command,
  on `stop_patrol`/`stop_pattern` (which also send a stop) or when their configuration goes.
- Park: once `idle_s` passed since the last command, with nothing running, nothing recording,
  no continuous move going on and no lock, the park action runs once (a preset recall, or a
  patrol or pattern until the next command). Its target is checked then; a missing one is
  logged and skipped.
- Lock (`lock(seconds)`, at most an hour): moves, gotos, patrols, patterns and recording are
  refused with PtzError until it runs out; stop and preset set/clear are still taken.
- Position: each status asks the dome (0x51/0x53/0x55, `QUERY_TIMEOUT_S` per axis). A dome that
  does not answer is asked again after `REQUERY_S` at the earliest, and meanwhile the position
  is the estimate: the same mechanics model as the dome simulator (`position.Dome`) fed with
  every command sent, corrected by every position the dome reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from vigil.config.ptz import (
    MAX_PATROLS,
    MAX_PATTERNS,
    MAX_PRESET,
    Pattern,
    PtzPosition,
    PtzPreset,
    PtzSettings,
)
from vigil.config.schema import checked_replace, validate
from vigil.ptz import codec
from vigil.ptz.commands import (
    STOP,
    Axis,
    Codec,
    Command,
    PelcoError,
    PositionReply,
    Preset,
    PresetAction,
    QueryPosition,
    move_from_percent,
)
from vigil.ptz.line import LineError
from vigil.ptz.position import (
    Dome,
    Position,
    from_isapi,
    from_wire,
    set_position_commands,
    to_isapi,
)
from vigil.ptz.tours import PatternRecorder, Speeds, approach

if TYPE_CHECKING:
    from vigil.ptz.line import SerialLine

__all__ = ["PtzController", "PtzError", "PtzPosition", "PtzPreset", "PtzStatus"]

log = logging.getLogger(__name__)

Body = Callable[[], Coroutine[Any, Any, None]]  # what an activity runs

QUERY_TIMEOUT_S = 0.3
REQUERY_S = 5.0
MAX_LOCK_S = 3600
MAX_MOMENTARY_MS = 60_000
PTZ_CHANNEL = 1


class PtzError(Exception):
    """An invalid operation (unknown preset, locked, no line...): ISAPI 4."""


@dataclass(frozen=True)
class PtzStatus:
    position: PtzPosition
    source: str  # "dome" (queried) or "estimated" (the dome did not answer)
    activity: str  # "idle", "manual", "preset", "patrol", "pattern", "recording", "park"
    locked_s: int  # seconds of PTZ lock left, 0 = unlocked


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PtzError(f"{name} {value!r} is not in {low}..{high}")
    return value


def _speeds(pan: int, tilt: int, zoom: int) -> Speeds:
    return (
        _check_int("pan speed", pan, -100, 100),
        _check_int("tilt speed", tilt, -100, 100),
        _check_int("zoom speed", zoom, -100, 100),
    )


@dataclass
class _Activity:
    """The running task and what it is: kind (activity name) and its (what, id)."""

    kind: str
    what: tuple[str, int]
    task: asyncio.Task[None]


class PtzController:
    """The dome on `line`: ISAPI operations in, Pelco frames out, presets/patterns saved back
    into the configuration through `save` (which the daemon points at the config store)."""

    def __init__(
        self,
        line: SerialLine,
        settings: PtzSettings,
        save: Callable[[PtzSettings], Awaitable[None]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._line = line
        self._settings = settings
        self._codec: Codec = codec(settings.protocol)
        self._save = save
        self._clock = clock
        self._model = Dome(now=clock())
        self._target_kind = "preset"  # what the model's targets came from
        self._activity: _Activity | None = None
        self._recorder: PatternRecorder | None = None
        self._parked = False
        self._locked_until = 0.0
        self._last_command = clock()
        self._commanded = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._silent_until = 0.0
        self._dome_answers: bool | None = None
        self._line_failed = False

    # -- life -------------------------------------------------------------------------------
    @property
    def settings(self) -> PtzSettings:
        return self._settings

    async def start(self) -> None:
        log.info("PTZ: %s dome %d", self._settings.protocol, self._settings.address)
        with contextlib.suppress(PtzError):
            await self._open()  # logged; every command tries again
        self._last_command = self._clock()
        self._watcher = asyncio.create_task(self._watch_idle(), name="ptz-park")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self._cancel_activity()
        self._recorder = None
        await self._line.close()

    async def apply(self, settings: PtzSettings) -> None:
        """Live configuration: protocol and address apply from the next frame."""
        validate(settings)
        old, self._settings = self._settings, settings
        if (old.protocol, old.address) != (settings.protocol, settings.address):
            self._codec = codec(settings.protocol)
            self._silent_until, self._dome_answers = 0.0, None
            log.info("PTZ: now %s dome %d", settings.protocol, settings.address)
        self._commanded.set()

    # -- moves ------------------------------------------------------------------------------
    async def continuous(self, pan: int, tilt: int, zoom: int) -> None:
        """Move at ISAPI speeds -100..100 until the next command; 0, 0, 0 stops."""
        speeds = _speeds(pan, tilt, zoom)
        await self._begin(moves=speeds != (0, 0, 0), recordable=True)
        await self._move(speeds)

    async def momentary(self, pan: int, tilt: int, zoom: int, duration_ms: int) -> None:
        """Move for `duration_ms` (1..60000), then stop; returns once the move is sent."""
        speeds = _speeds(pan, tilt, zoom)
        duration_ms = _check_int("duration", duration_ms, 1, MAX_MOMENTARY_MS)
        await self._begin(moves=True, recordable=True)
        await self._move(speeds)
        self._run("manual", ("momentary", 0), partial(self._stop_after, duration_ms / 1000))

    async def stop_moving(self) -> None:
        await self._begin(moves=False, recordable=True)
        await self._move((0, 0, 0))

    async def absolute(self, position: PtzPosition) -> None:
        if not isinstance(position, PtzPosition):
            raise PtzError(f"a position is a PtzPosition, not {type(position).__name__}")
        validate(position)
        await self._begin(moves=True)
        await self._go_to(position, "manual")

    async def relative(self, pan: int, tilt: int, zoom: int) -> None:
        """Move by deltas in ISAPI units: azimuth (wrapping), elevation and zoom (clamped)."""
        pan = _check_int("relative pan", pan, -3599, 3599)
        tilt = _check_int("relative tilt", tilt, -900, 900)
        zoom = _check_int("relative zoom", zoom, -290, 290)
        await self._begin(moves=True)
        here, _ = await self._where()
        there = PtzPosition(
            azimuth=(here.azimuth + pan) % 3600,
            elevation=min(max(here.elevation + tilt, 0), 900),
            zoom=min(max(here.zoom + zoom, 10), 300),
        )
        await self._go_to(there, "manual")

    # -- presets and home -------------------------------------------------------------------
    async def set_preset(self, preset_id: int, name: str) -> PtzPreset:
        """Store the dome's current position as preset `preset_id`, in the dome and here."""
        _check_int("preset", preset_id, 1, MAX_PRESET)
        validate(PtzPreset(preset_id, name))
        await self._begin(moves=False)
        here, _ = await self._where()
        preset = PtzPreset(preset_id, name, here)
        others = [p for p in self._settings.presets if p.id != preset_id]
        new = checked_replace(
            self._settings, "ptz", presets=sorted([*others, preset], key=lambda p: p.id)
        )
        await self._send(Preset(PresetAction.SET, preset_id))
        await self._store(new)
        log.info("PTZ preset %d %r set at %s", preset_id, name, _describe(here))
        return preset

    async def goto_preset(self, preset_id: int) -> None:
        _check_int("preset", preset_id, 1, MAX_PRESET)
        preset = self._preset(preset_id)
        await self._begin(moves=True)
        await self._recall(preset)

    async def clear_preset(self, preset_id: int) -> None:
        _check_int("preset", preset_id, 1, MAX_PRESET)
        self._preset(preset_id)
        await self._begin(moves=False)
        new = replace(
            self._settings, presets=[p for p in self._settings.presets if p.id != preset_id]
        )
        await self._send(Preset(PresetAction.CLEAR, preset_id))
        await self._store(new)
        log.info("PTZ preset %d cleared", preset_id)

    async def set_home(self) -> None:
        await self._begin(moves=False)
        here, _ = await self._where()
        await self._store(replace(self._settings, home=here))
        log.info("PTZ home position set at %s", _describe(here))

    async def goto_home(self) -> None:
        home = self._settings.home
        if home is None:
            raise PtzError("no home position is set")
        await self._begin(moves=True)
        await self._go_to(home, "preset")

    async def linkage_preset(self, channel: int, preset_id: int) -> None:
        """An event rule's linkage: go to the preset (as a manual goto would)."""
        if channel != PTZ_CHANNEL:
            raise PtzError(f"the dome is on channel {PTZ_CHANNEL}, not {channel}")
        log.info("PTZ linkage: going to preset %d", preset_id)
        await self.goto_preset(preset_id)

    # -- patrols and patterns ---------------------------------------------------------------
    async def start_patrol(self, patrol_id: int) -> None:
        _check_int("patrol", patrol_id, 1, MAX_PATROLS)
        self._check_patrol(patrol_id)
        await self._begin(moves=True)
        self._run("patrol", ("patrol", patrol_id), partial(self._patrol, patrol_id))

    async def stop_patrol(self, patrol_id: int) -> None:
        _check_int("patrol", patrol_id, 1, MAX_PATROLS)
        await self._stop_running(("patrol", patrol_id))

    async def start_pattern_recording(self, pattern_id: int) -> None:
        _check_int("pattern", pattern_id, 1, MAX_PATTERNS)
        if self._recorder is not None:
            raise PtzError(f"pattern {self._recorder.pattern_id} is recording")
        await self._begin(moves=True)
        await self._send(STOP)
        self._recorder = PatternRecorder(pattern_id, self._clock())
        log.info("PTZ pattern %d: recording", pattern_id)

    async def stop_pattern_recording(self, pattern_id: int) -> None:
        _check_int("pattern", pattern_id, 1, MAX_PATTERNS)
        recorder = self._recorder
        if recorder is None or recorder.pattern_id != pattern_id:
            raise PtzError(f"pattern {pattern_id} is not recording")
        self._touch()
        await self._send(STOP)
        await self._finish_recording(recorder)

    async def run_pattern(self, pattern_id: int) -> None:
        _check_int("pattern", pattern_id, 1, MAX_PATTERNS)
        self._check_pattern(pattern_id)
        await self._begin(moves=True)
        self._run("pattern", ("pattern", pattern_id), partial(self._pattern, pattern_id))

    async def stop_pattern(self, pattern_id: int) -> None:
        _check_int("pattern", pattern_id, 1, MAX_PATTERNS)
        await self._stop_running(("pattern", pattern_id))

    async def delete_pattern(self, pattern_id: int) -> None:
        _check_int("pattern", pattern_id, 1, MAX_PATTERNS)
        if self._settings.pattern(pattern_id) is None:
            raise PtzError(f"pattern {pattern_id} is not recorded")
        await self._stop_running(("pattern", pattern_id))
        patterns = [p for p in self._settings.patterns if p.id != pattern_id]
        await self._store(replace(self._settings, patterns=patterns))
        log.info("PTZ pattern %d deleted", pattern_id)

    # -- lock and status --------------------------------------------------------------------
    async def lock(self, seconds: int) -> None:
        """Refuse moves for `seconds` (0..3600); 0 unlocks."""
        _check_int("lock time", seconds, 0, MAX_LOCK_S)
        self._locked_until = self._clock() + seconds
        self._commanded.set()
        if seconds:
            log.info("PTZ locked for %d s", seconds)
        else:
            log.info("PTZ unlocked")

    async def status(self) -> PtzStatus:
        position, source = await self._where()
        return PtzStatus(position, source, self._activity_name(), self._locked_s())

    # -- commands ---------------------------------------------------------------------------
    async def _begin(self, *, moves: bool, recordable: bool = False) -> None:
        """A manual command: refused if locked (a move) or recording (a move it cannot
        record); cancels what runs and restarts the idle time."""
        if moves and self._locked_s():
            raise PtzError(f"PTZ is locked for {self._locked_s()} more s")
        if moves and self._recorder is not None and not recordable:
            raise PtzError(f"pattern {self._recorder.pattern_id} is recording")
        await self._cancel_activity()
        self._touch()

    def _touch(self) -> None:
        self._last_command = self._clock()
        self._parked = False
        self._commanded.set()

    async def _move(self, speeds: Speeds) -> None:
        await self._send(move_from_percent(*speeds))
        recorder = self._recorder
        if recorder is not None:
            recorder.move(speeds, self._clock())
            if recorder.full:
                log.info("PTZ pattern %d is full", recorder.pattern_id)
                await self._send(STOP)
                await self._finish_recording(recorder)

    async def _finish_recording(self, recorder: PatternRecorder) -> None:
        self._recorder = None
        steps = recorder.finish(self._clock())
        if not steps:
            raise PtzError(f"pattern {recorder.pattern_id}: no move was recorded")
        pattern = Pattern(recorder.pattern_id, steps)
        others = [p for p in self._settings.patterns if p.id != pattern.id]
        patterns = sorted([*others, pattern], key=lambda p: p.id)
        await self._store(checked_replace(self._settings, "ptz", patterns=patterns))
        seconds = sum(step.duration_ms for step in steps) / 1000
        log.info("PTZ pattern %d recorded: %d steps, %.1f s", pattern.id, len(steps), seconds)

    async def _recall(self, preset: PtzPreset, kind: str = "preset") -> None:
        self._model.presets[preset.id] = from_isapi(preset.position)
        self._target_kind = kind
        await self._send(Preset(PresetAction.GOTO, preset.id))

    async def _go_to(self, position: PtzPosition, kind: str) -> None:
        self._target_kind = kind
        for command in set_position_commands(position):
            await self._send(command)

    async def _send(self, command: Command) -> None:
        frame = self._codec.encode(self._settings.address, command)
        await self._open()
        self._model.apply(command, self._clock())
        try:
            await self._line.send(frame)
        except LineError as exc:
            raise PtzError(f"the PTZ line failed: {exc}") from exc

    async def _open(self) -> None:
        if self._line.is_open:
            return
        try:
            await self._line.open()
        except LineError as exc:
            if not self._line_failed:
                log.error("PTZ: %s", exc)  # once, until the line opens
            self._line_failed = True
            raise PtzError(str(exc)) from exc
        self._line_failed = False

    async def _store(self, new: PtzSettings) -> None:
        await self._save(new)
        self._settings = new

    def _preset(self, preset_id: int) -> PtzPreset:
        preset = self._settings.preset(preset_id)
        if preset is None:
            raise PtzError(f"preset {preset_id} is not set")
        return preset

    # -- activities -------------------------------------------------------------------------
    def _run(self, kind: str, what: tuple[str, int], body: Body) -> None:
        task = asyncio.create_task(self._guarded(what, body), name=f"ptz-{what[0]}")
        self._activity = _Activity(kind, what, task)
        task.add_done_callback(lambda _: self._ended(task))

    async def _guarded(self, what: tuple[str, int], body: Body) -> None:
        name = f"{what[0]} {what[1]}"
        if what[0] != "momentary":
            log.info("PTZ %s started", name)
        try:
            await body()
        except (PtzError, PelcoError) as exc:
            log.warning("PTZ %s stopped: %s", name, exc)
        except Exception:
            log.exception("PTZ %s failed", name)
        except asyncio.CancelledError:
            if what[0] != "momentary":
                log.info("PTZ %s stopped", name)
            raise

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._activity is not None and self._activity.task is task:
            self._activity = None
            self._commanded.set()  # the park watcher looks again

    async def _cancel_activity(self) -> None:
        activity, self._activity = self._activity, None
        if activity is None or activity.task.done():
            return
        activity.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await activity.task

    async def _stop_running(self, what: tuple[str, int]) -> None:
        if self._activity is None or self._activity.what != what:
            return
        await self._cancel_activity()
        self._touch()
        await self._send(STOP)

    async def _stop_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._move((0, 0, 0))

    def _check_patrol(self, patrol_id: int) -> None:
        patrol = self._settings.patrol(patrol_id)
        if patrol is None or not patrol.steps:
            raise PtzError(f"patrol {patrol_id} has no steps")
        missing = [s.preset for s in patrol.steps if self._settings.preset(s.preset) is None]
        if missing:
            raise PtzError(f"patrol {patrol_id} goes to preset {missing[0]}, which is not set")

    def _check_pattern(self, pattern_id: int) -> None:
        pattern = self._settings.pattern(pattern_id)
        if pattern is None or not pattern.steps:
            raise PtzError(f"pattern {pattern_id} is not recorded")

    async def _patrol(self, patrol_id: int) -> None:
        while True:
            self._check_patrol(patrol_id)
            patrol = self._settings.patrol(patrol_id)
            assert patrol is not None
            for step in patrol.steps:
                preset = self._preset(step.preset)
                here, _ = await self._where()
                way = approach(from_isapi(here), from_isapi(preset.position), step.speed)
                if way is not None:
                    move, seconds = way
                    await self._send(move)
                    await asyncio.sleep(seconds)
                await self._recall(preset, "patrol")
                await asyncio.sleep(self._model.settle_time() + step.dwell_s)

    async def _pattern(self, pattern_id: int) -> None:
        while True:
            self._check_pattern(pattern_id)
            pattern = self._settings.pattern(pattern_id)
            assert pattern is not None
            for step in pattern.steps:
                await self._send(move_from_percent(step.pan, step.tilt, step.zoom))
                await asyncio.sleep(step.duration_ms / 1000)

    # -- park -------------------------------------------------------------------------------
    async def _watch_idle(self) -> None:
        while True:
            park = self._settings.park
            wait: float | None = None
            if park.enabled and not self._parked:
                wait = self._last_command + park.idle_s - self._clock()
                wait = max(wait, self._locked_until - self._clock())
                if wait <= 0 and not self._busy():
                    await self._park()
                    continue
            self._commanded.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._commanded.wait(), wait if wait and wait > 0 else None)

    def _busy(self) -> bool:
        return (
            self._activity is not None or self._recorder is not None or self._model.motion != STOP
        )

    async def _park(self) -> None:
        park = self._settings.park
        self._parked = True
        log.info("PTZ idle for %d s: park action %s %d", park.idle_s, park.action, park.target)
        try:
            if park.action == "preset":
                await self._recall(self._preset(park.target), "park")
            elif park.action == "patrol":
                self._check_patrol(park.target)
                self._run("park", ("patrol", park.target), partial(self._patrol, park.target))
            else:
                self._check_pattern(park.target)
                self._run("park", ("pattern", park.target), partial(self._pattern, park.target))
        except (PtzError, PelcoError) as exc:
            log.warning("PTZ park action skipped: %s", exc)

    # -- position ---------------------------------------------------------------------------
    def _activity_name(self) -> str:
        if self._recorder is not None:
            return "recording"
        if self._activity is not None:
            return self._activity.kind
        now = self._clock()
        self._model.advance(now)
        if self._model.motion != STOP:
            return "manual"
        if self._model.targets:
            return self._target_kind
        return "park" if self._parked else "idle"

    def _locked_s(self) -> int:
        return max(0, math.ceil(self._locked_until - self._clock()))

    async def _where(self) -> tuple[PtzPosition, str]:
        """The dome's position as it answers, or the estimate: (position, source)."""
        answered = await self._query()
        if answered is not None:
            return to_isapi(answered), "dome"
        return to_isapi(self._model.position(self._clock())), "estimated"

    async def _query(self) -> Position | None:
        if self._clock() < self._silent_until:
            return None
        values: list[float] = []
        for axis in Axis:
            try:
                values.append(await self._ask(axis))
            except (TimeoutError, PelcoError, LineError, PtzError) as exc:
                self._silent(exc)
                return None
        position = Position(*values)
        self._model.place(position, self._clock())
        if self._dome_answers is not True:
            log.info("PTZ dome %d answers position queries", self._settings.address)
        self._dome_answers = True
        return position

    async def _ask(self, axis: Axis) -> float:
        await self._open()
        query = self._codec.encode(self._settings.address, QueryPosition(axis))
        raw = await self._line.exchange(query, self._codec.length, QUERY_TIMEOUT_S)
        reply = self._codec.decode(raw, self._settings.address).command
        if not isinstance(reply, PositionReply) or reply.axis is not axis:
            raise PelcoError(f"{reply} is no answer to a {axis.name.lower()} query")
        return from_wire(axis, reply.value)

    def _silent(self, why: Exception) -> None:
        self._silent_until = self._clock() + REQUERY_S
        if self._dome_answers is not False:
            reason = str(why) or "no answer in time"
            log.warning(
                "PTZ dome %d does not answer position queries (%s): estimating",
                self._settings.address,
                reason,
            )
        self._dome_answers = False


def _describe(position: PtzPosition) -> str:
    return (
        f"azimuth {position.azimuth / 10:.1f}, elevation {position.elevation / 10:.1f},"
        f" zoom {position.zoom / 10:.1f}x"
    )
