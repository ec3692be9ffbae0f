"""What the PTZ controller's patrols and patterns are made of, apart from the line and the clock.

- `PatternRecorder` turns the continuous moves made while a pattern records into its steps:
  each move is held until the next command (a stop is a pause of the same kind), leading and
  trailing pauses are dropped, and recording ends by itself when the pattern is full (256 steps
  or 10 minutes; the last step is cut to fit).
- `approach` is how a patrol honours its speed on a protocol whose preset recall has none: a
  step below the top speed (40, the dome's own preset speed) first drives pan and tilt towards
  the preset with one continuous move at the patrol speed (speed 40 is protocol speed 63, the
  axes scaled so both arrive together), for the time the position model says the way takes;
  the preset recall that follows corrects what the nominal speeds got wrong and sets the zoom.
"""

from __future__ import annotations

from vigil.config.ptz import MAX_PATTERN_MS, MAX_PATTERN_STEPS, PatternStep
from vigil.ptz.commands import MAX_SPEED, Move
from vigil.ptz.position import MAX_DEG_PER_S, Position

TOP_PATROL_SPEED = 40
MIN_APPROACH_S = 0.05  # shorter than this, the preset recall alone is as good

Speeds = tuple[int, int, int]


class PatternRecorder:
    """The steps of pattern `pattern_id`, recorded from `start` (monotonic seconds)."""

    def __init__(self, pattern_id: int, start: float) -> None:
        self.pattern_id = pattern_id
        self.steps: list[PatternStep] = []
        self._held: Speeds = (0, 0, 0)
        self._since = start

    @property
    def full(self) -> bool:
        return len(self.steps) >= MAX_PATTERN_STEPS or self._total() >= MAX_PATTERN_MS

    def move(self, speeds: Speeds, now: float) -> None:
        """A continuous move (0, 0, 0: a stop) was made at `now`."""
        self._close(now)
        self._held, self._since = speeds, now

    def finish(self, now: float) -> list[PatternStep]:
        self._close(now)
        self._held = (0, 0, 0)
        steps = list(self.steps)
        while steps and _is_pause(steps[-1]):
            steps.pop()
        return steps

    def _close(self, now: float) -> None:
        room = MAX_PATTERN_MS - self._total()
        held_ms = min(max(1, round((now - self._since) * 1000)), room)
        if held_ms <= 0 or len(self.steps) >= MAX_PATTERN_STEPS:
            return
        if _is_pause_speeds(self._held) and not self.steps:
            return  # before the first move
        self.steps.append(PatternStep(*self._held, duration_ms=held_ms))

    def _total(self) -> int:
        return sum(step.duration_ms for step in self.steps)


def _is_pause_speeds(speeds: Speeds) -> bool:
    return speeds == (0, 0, 0)


def _is_pause(step: PatternStep) -> bool:
    return _is_pause_speeds((step.pan, step.tilt, step.zoom))


def approach(here: Position, there: Position, speed: int) -> tuple[Move, float] | None:
    """The continuous move towards `there` at patrol speed `speed` and how long to hold it;
    None at the top speed or when the way is too short to matter."""
    if speed >= TOP_PATROL_SPEED:
        return None
    pan = (there.pan - here.pan + 180) % 360 - 180
    tilt = there.tilt - here.tilt
    longest = max(abs(pan), abs(tilt))
    protocol_speed = max(1, round(speed * MAX_SPEED / TOP_PATROL_SPEED))
    seconds = longest / (MAX_DEG_PER_S * protocol_speed / MAX_SPEED)
    if seconds < MIN_APPROACH_S:
        return None

    def axis(distance: float) -> tuple[int, int]:
        if abs(distance) * protocol_speed / longest < 0.5:
            return 0, 0
        return (1 if distance > 0 else -1), round(abs(distance) * protocol_speed / longest)

    (pan_dir, pan_speed), (tilt_dir, tilt_speed) = axis(pan), axis(tilt)
    return Move(pan_dir, tilt_dir, pan_speed=pan_speed, tilt_speed=tilt_speed), seconds
