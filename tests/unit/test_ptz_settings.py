"""PTZ settings: ranges, unique ids, patrol steps and park targets, and the TOML round trip."""

from __future__ import annotations

import pytest

from vigil.config.model import Config
from vigil.config.ptz import (
    ParkAction,
    Patrol,
    PatrolStep,
    Pattern,
    PatternStep,
    PtzPosition,
    PtzPreset,
    PtzSettings,
)
from vigil.config.schema import ConfigError, checked_replace, from_dict, to_plain, validate
from vigil.config.store import dump_config, parse_config


def full() -> PtzSettings:
    return PtzSettings(
        protocol="pelco-p",
        address=7,
        presets=[PtzPreset(1, "door", PtzPosition(900, 150, 20)), PtzPreset(255, "gate")],
        home=PtzPosition(10, 20, 30),
        patrols=[Patrol(1, "round", [PatrolStep(1, 2, 40), PatrolStep(255, 120, 1)])],
        patterns=[Pattern(4, [PatternStep(50, -50, 0, 1500), PatternStep(0, 0, 0, 200)])],
        park=ParkAction(enabled=True, idle_s=5, action="pattern", target=4),
    )


def test_defaults_and_a_full_tree_validate_and_survive_toml() -> None:
    validate(Config())
    config = Config(ptz=full())
    assert parse_config(dump_config(config)).ptz == full()
    assert from_dict(PtzSettings, to_plain(PtzSettings())) == PtzSettings()


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"protocol": "visca"}, "protocol"),
        ({"address": 0}, "address"),
        ({"address": 256}, "address"),
        ({"presets": [PtzPreset(1), PtzPreset(1)]}, "preset ids"),
        ({"presets": [PtzPreset(256)]}, "presets[0].id"),
        ({"presets": [PtzPreset(1, "<b>")]}, "presets[0].name"),
        ({"presets": [PtzPreset(1, position=PtzPosition(3600, 0, 10))]}, "azimuth"),
        ({"presets": [PtzPreset(1, position=PtzPosition(0, 901, 10))]}, "elevation"),
        ({"home": PtzPosition(0, 0, 9)}, "home.zoom"),
        ({"patrols": [Patrol(9)]}, "patrols[0].id"),
        ({"patrols": [Patrol(1), Patrol(1)]}, "patrol ids"),
        ({"patrols": [Patrol(1, steps=[PatrolStep(0)])]}, "steps[0].preset"),
        ({"patrols": [Patrol(1, steps=[PatrolStep(1, dwell_s=121)])]}, "dwell_s"),
        ({"patrols": [Patrol(1, steps=[PatrolStep(1, speed=41)])]}, "speed"),
        ({"patrols": [Patrol(1, steps=[PatrolStep(1)] * 33)]}, "more than 32"),
        ({"patterns": [Pattern(5)]}, "patterns[0].id"),
        ({"patterns": [Pattern(1), Pattern(1)]}, "pattern ids"),
        ({"patterns": [Pattern(1, [PatternStep(pan=101)])]}, "pan"),
        ({"patterns": [Pattern(1, [PatternStep()] * 257)]}, "more than 256"),
        ({"patterns": [Pattern(1, [PatternStep(duration_ms=400_000)] * 2)]}, "at most 600 s"),
        ({"park": ParkAction(idle_s=4)}, "idle_s"),
        ({"park": ParkAction(action="scan")}, "action"),
        ({"park": ParkAction(action="patrol", target=9)}, "patrol is 1..8"),
        ({"park": ParkAction(action="pattern", target=5)}, "pattern is 1..4"),
    ],
)
def test_bad_values_are_refused(change: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace("[", r"\[").replace("]", r"\]")):
        checked_replace(PtzSettings(), "ptz", **change)


def test_patrols_and_park_may_name_presets_not_set_yet() -> None:
    """Whether a preset is set is a run-time question: it may be cleared later anyway."""
    settings = checked_replace(
        PtzSettings(),
        patrols=[Patrol(1, steps=[PatrolStep(42)])],
        park=ParkAction(enabled=True, action="preset", target=200),
    )
    assert settings.patrol(1) is not None and settings.preset(42) is None
    assert settings.pattern(1) is None
