"""The controller's pure parts: pattern recording, the patrol approach, and the position units."""

from __future__ import annotations

import pytest

from vigil.config.ptz import MAX_PATTERN_MS, MAX_PATTERN_STEPS, PatternStep, PtzPosition
from vigil.ptz.commands import STOP, Axis, Move, Preset, PresetAction, SetPosition
from vigil.ptz.position import (
    Dome,
    Position,
    from_isapi,
    from_wire,
    set_position_commands,
    to_isapi,
    to_wire,
)
from vigil.ptz.tours import PatternRecorder, approach


def test_a_recording_keeps_moves_and_pauses_between_them_only() -> None:
    recorder = PatternRecorder(1, start=10.0)
    recorder.move((0, 0, 0), 10.5)  # a stop before the first move: nothing to replay
    recorder.move((50, 0, 0), 11.0)
    recorder.move((0, 0, 0), 11.25)
    recorder.move((0, -20, 10), 11.75)
    recorder.move((0, 0, 0), 12.0)
    assert recorder.finish(14.0) == [
        PatternStep(50, 0, 0, 250),
        PatternStep(0, 0, 0, 500),
        PatternStep(0, -20, 10, 250),
    ]


def test_a_recording_ends_full_at_256_steps_or_ten_minutes() -> None:
    recorder = PatternRecorder(2, start=0.0)
    for i in range(MAX_PATTERN_STEPS + 1):
        assert not recorder.full
        recorder.move((10 if i % 2 else -10, 0, 0), i * 0.1)
    assert recorder.full and len(recorder.finish(1000.0)) == MAX_PATTERN_STEPS
    long = PatternRecorder(3, start=0.0)
    long.move((10, 0, 0), 0.0)
    long.move((-10, 0, 0), 500.0)
    assert not long.full
    long.move((0, 10, 0), 700.0)  # the second step is cut to fit
    assert long.full
    steps = long.finish(800.0)
    assert [s.duration_ms for s in steps] == [500_000, MAX_PATTERN_MS - 500_000]


def test_the_patrol_approach_runs_at_the_patrol_speed() -> None:
    here, there = Position(350.0, -10.0, 1.0), Position(20.0, -25.0, 3.0)
    move, seconds = approach(here, there, 20) or pytest.fail("no approach")
    # 30 degrees the short way round (right) and 15 down, at protocol speed 32 (20.3 deg/s)
    assert move == Move(pan=1, tilt=-1, pan_speed=32, tilt_speed=16)
    assert seconds == pytest.approx(30 / (40 * 32 / 63))
    assert approach(here, there, 40) is None  # the top speed: the preset recall alone
    assert approach(here, Position(350.5, -10.0, 1.0), 20) is None  # too short to matter


def test_isapi_units_and_wire_units() -> None:
    position = PtzPosition(azimuth=900, elevation=450, zoom=300)
    assert set_position_commands(position) == [
        SetPosition(Axis.PAN, 9000),
        SetPosition(Axis.TILT, 4500),
        SetPosition(Axis.ZOOM, 65535),
    ]
    assert from_isapi(position) == Position(90.0, -45.0, 30.0)
    assert to_isapi(Position(359.97, -90.2, 0.99)) == PtzPosition(0, 900, 10)
    for axis, value in ((Axis.PAN, 35999), (Axis.TILT, 9000), (Axis.ZOOM, 12345)):
        assert to_wire(axis, from_wire(axis, value)) == value


def test_the_model_places_a_reported_position_and_times_its_way() -> None:
    dome = Dome(now=0.0)
    dome.apply(Preset(PresetAction.SET, 1), 0.0)
    dome.apply(SetPosition(Axis.PAN, 5000), 0.0)  # 50 degrees at 100 deg/s
    assert dome.settle_time() == pytest.approx(0.5)
    dome.place(Position(40.0, 0.0, 1.0), 0.1)  # the dome said it is further than estimated
    assert dome.settle_time() == pytest.approx(0.1)
    dome.place(Position(50.0, 0.0, 1.0), 0.2)  # there: the target is done
    assert dome.targets == {} and dome.position(1.0) == Position(50.0, 0.0, 1.0)
    dome.apply(Preset(PresetAction.GOTO, 1), 1.0)
    dome.apply(STOP, 1.2)  # a stop ends the way where it is
    assert dome.position(5.0).pan == pytest.approx(30.0)
