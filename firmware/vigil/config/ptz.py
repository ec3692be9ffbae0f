"""PTZ settings (SPEC §6): the dome's protocol and address, presets, home, patrols, patterns, park.

Positions are in ISAPI units (`PtzPosition`): azimuth and elevation in tenths of a degree
(elevation positive below the horizon, 0..90 degrees, as a ceiling dome looks), zoom ratio x10
over the 1x..30x of the dome. Choices where the issue is silent:

- presets 1..255 (Pelco's numbers) with a name of up to 32 characters; each stores the position
  the dome was at when it was set, so the status and the relative moves work without the dome.
- patrols 1..8 of up to 32 steps; a step names a preset (whether it is set is checked when the
  patrol runs, as a preset may be cleared while a patrol names it), a dwell of 1..120 s and
  Hikvision's patrol speed 1..40.
- patterns 1..4: recorded continuous moves, each `pan`, `tilt`, `zoom` -100..100 held for
  `duration_ms`; a move of 0, 0, 0 is a pause. At most 256 steps and 10 minutes in all.
- the park action's target (a preset, patrol or pattern id) is checked when it fires, for the
  same reason as the patrol steps; the check here is only its range.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.config.schema import setting

PROTOCOLS = ("pelco-d", "pelco-p")
NAME_TEXT = r"[^<>&\"\x00-\x1f\x7f]*"  # printable text that does not break XML
MAX_PRESET = 255
MAX_PATROLS = 8
MAX_PATROL_STEPS = 32
MAX_PATTERNS = 4
MAX_PATTERN_STEPS = 256
MAX_PATTERN_MS = 600_000
PARK_ACTIONS = ("preset", "patrol", "pattern")


@dataclass(frozen=True)
class PtzPosition:
    """A dome position in ISAPI units (`AbsoluteHigh`)."""

    azimuth: int = setting(0, min=0, max=3599)  # degrees x 10
    elevation: int = setting(0, min=0, max=900)  # degrees x 10, positive = down
    zoom: int = setting(10, min=10, max=300)  # zoom ratio x 10


@dataclass(frozen=True)
class PtzPreset:
    id: int = setting(1, min=1, max=MAX_PRESET)
    name: str = setting("", max_len=32, pattern=NAME_TEXT)
    position: PtzPosition = setting(factory=PtzPosition)


@dataclass(frozen=True)
class PatrolStep:
    preset: int = setting(1, min=1, max=MAX_PRESET)
    dwell_s: int = setting(5, min=1, max=120)
    speed: int = setting(30, min=1, max=40)  # Hikvision's patrol speed scale


@dataclass(frozen=True)
class Patrol:
    id: int = setting(1, min=1, max=MAX_PATROLS)
    name: str = setting("", max_len=32, pattern=NAME_TEXT)
    steps: list[PatrolStep] = setting(factory=list, max_items=MAX_PATROL_STEPS)


@dataclass(frozen=True)
class PatternStep:
    """A continuous move (ISAPI speeds -100..100) held for `duration_ms`; 0, 0, 0 is a pause."""

    pan: int = setting(0, min=-100, max=100)
    tilt: int = setting(0, min=-100, max=100)
    zoom: int = setting(0, min=-100, max=100)
    duration_ms: int = setting(1000, min=1, max=MAX_PATTERN_MS)


def _check_pattern_length(steps: list[PatternStep]) -> None:
    total = sum(step.duration_ms for step in steps)
    if total > MAX_PATTERN_MS:
        raise ValueError(f"a pattern lasts at most {MAX_PATTERN_MS // 1000} s, not {total} ms")


@dataclass(frozen=True)
class Pattern:
    id: int = setting(1, min=1, max=MAX_PATTERNS)
    steps: list[PatternStep] = setting(
        factory=list, max_items=MAX_PATTERN_STEPS, check=_check_pattern_length
    )


@dataclass(frozen=True)
class ParkAction:
    """After `idle_s` without a PTZ command, go to a preset or run a patrol or pattern."""

    enabled: bool = False
    idle_s: int = setting(60, min=5, max=720)
    action: str = setting("preset", choices=PARK_ACTIONS)
    target: int = setting(1, min=1, max=MAX_PRESET)  # the preset, patrol or pattern id

    def check(self) -> None:
        limit = {"preset": MAX_PRESET, "patrol": MAX_PATROLS, "pattern": MAX_PATTERNS}[self.action]
        if self.target > limit:
            raise ValueError(f"the park action's {self.action} is 1..{limit}, not {self.target}")


def _unique(kind: str, ids: list[int]) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError(f"{kind} ids must be unique")


@dataclass(frozen=True)
class PtzSettings:
    protocol: str = setting("pelco-d", choices=PROTOCOLS)
    address: int = setting(1, min=1, max=255)
    presets: list[PtzPreset] = setting(factory=list, max_items=MAX_PRESET)
    home: PtzPosition | None = None
    patrols: list[Patrol] = setting(factory=list, max_items=MAX_PATROLS)
    patterns: list[Pattern] = setting(factory=list, max_items=MAX_PATTERNS)
    park: ParkAction = setting(factory=ParkAction)

    def check(self) -> None:
        _unique("preset", [p.id for p in self.presets])
        _unique("patrol", [p.id for p in self.patrols])
        _unique("pattern", [p.id for p in self.patterns])

    def preset(self, preset_id: int) -> PtzPreset | None:
        return next((p for p in self.presets if p.id == preset_id), None)

    def patrol(self, patrol_id: int) -> Patrol | None:
        return next((p for p in self.patrols if p.id == patrol_id), None)

    def pattern(self, pattern_id: int) -> Pattern | None:
        return next((p for p in self.patterns if p.id == pattern_id), None)
