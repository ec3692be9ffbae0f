"""The PTZ controller against the dome simulator over a real PTY pair.

The simulator (`DomeSimulator` on a `PtyMaster`) is the dome; the controller drives it through a
real `SerialLine` on the PTY slave. Frames are checked as the simulator received them, positions
as the simulator's model has them. Moves are kept short (turbo and preset speeds, 1 s dwells).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

import pytest

from vigil.config.ptz import (
    ParkAction,
    Patrol,
    PatrolStep,
    Pattern,
    PatternStep,
    PtzPosition,
    PtzSettings,
)
from vigil.config.schema import ConfigError
from vigil.config.serial import SerialPortSettings
from vigil.ptz.commands import (
    STOP,
    Axis,
    Command,
    Move,
    Preset,
    PresetAction,
    QueryPosition,
    SetPosition,
)
from vigil.ptz.controller import PtzController, PtzError
from vigil.ptz.line import SerialLine
from vigil.ptz.position import to_isapi
from vigil.ptz.simdome import DomeSimulator, PtyMaster, ReceivedFrame


class Clock:
    """The monotonic clock, with time that can be skipped (the idle time before park)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def skip(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Rig:
    simulator: DomeSimulator
    controller: PtzController
    clock: Clock
    saved: list[PtzSettings] = field(default_factory=list)

    def sent(self) -> list[ReceivedFrame]:
        """What reached the dome, position queries left out."""
        return [
            r
            for r in self.simulator.received
            if r.frame is None or not isinstance(r.frame.command, QueryPosition)
        ]

    def commands(self, since: int = 0) -> list[Command]:
        return [r.frame.command for r in self.sent()[since:] if r.frame is not None]

    def hex(self, since: int = 0) -> list[str]:
        return [r.raw.hex(" ").upper() for r in self.sent()[since:]]

    def at(self) -> PtzPosition:
        return to_isapi(self.simulator.position())

    async def arrived(self, position: PtzPosition) -> None:
        await eventually(lambda: near(self.at(), position))
        await asyncio.sleep(0.05)  # the last tenth of a degree (or of a zoom step)

    async def last_is(self, command: Command) -> None:
        await eventually(lambda: self.commands()[-1:] == [command])


async def eventually(done: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """The dome and the controller; `settings` by indirect parametrization, or the defaults."""
    settings: PtzSettings = getattr(request, "param", PtzSettings())
    master = PtyMaster()
    simulator = DomeSimulator(master, settings.protocol, settings.address)
    simulator.start()
    line = SerialLine(master.path, SerialPortSettings(), rs485=False)
    rig: Rig

    async def save(new: PtzSettings) -> None:
        rig.saved.append(new)

    clock = Clock()
    rig = Rig(simulator, PtzController(line, settings, save, clock=clock), clock)
    await rig.controller.start()
    try:
        yield rig
    finally:
        await rig.controller.stop()
        simulator.stop()
        master.close()


def near(a: PtzPosition, b: PtzPosition, tolerance: int = 1) -> bool:
    pan = abs((a.azimuth - b.azimuth + 1800) % 3600 - 1800)
    return max(pan, abs(a.elevation - b.elevation), abs(a.zoom - b.zoom)) <= tolerance


# --- frames ----------------------------------------------------------------------------------


async def test_pelco_d_frames_of_moves_stop_and_presets(rig: Rig) -> None:
    ctl = rig.controller
    await ctl.continuous(0, 100, 0)  # tilt up at 0x3F
    await ctl.continuous(100, 0, 0)  # pan right, turbo
    await ctl.continuous(-51, 0, 0)  # pan left at 0x20
    await ctl.continuous(0, 0, 0)
    await ctl.set_preset(5, "door")
    await ctl.goto_preset(5)
    await ctl.clear_preset(5)
    await eventually(lambda: len(rig.sent()) == 7)
    assert rig.hex() == [
        "FF 01 00 08 00 3F 48",
        "FF 01 00 02 FF 00 02",
        "FF 01 00 04 20 00 25",
        "FF 01 00 00 00 00 01",  # the published stop
        "FF 01 00 03 00 05 09",
        "FF 01 00 07 00 05 0D",
        "FF 01 00 05 00 05 0B",
    ]
    assert all(r.error is None for r in rig.simulator.received)


@pytest.mark.parametrize("rig", [PtzSettings(protocol="pelco-p", address=1)], indirect=True)
async def test_pelco_p_frames_and_dome_status(rig: Rig) -> None:
    await rig.controller.continuous(-51, 0, 0)
    await asyncio.sleep(0.1)
    await rig.controller.stop_moving()
    await eventually(lambda: len(rig.sent()) == 2)
    assert rig.hex() == ["A0 00 00 04 20 00 AF 2B", "A0 00 00 00 00 00 AF 0F"]
    status = await rig.controller.status()
    assert status.source == "dome" and near(status.position, rig.at())
    assert status.position.azimuth != 0  # it moved left a little


async def test_momentary_stops_after_its_duration(rig: Rig) -> None:
    await rig.controller.momentary(100, 0, 0, 200)
    assert (await rig.controller.status()).activity == "manual"
    await eventually(lambda: len(rig.sent()) == 2)
    move, stop = rig.sent()
    assert rig.commands() == [Move(pan=1, pan_speed=0x40), STOP]
    assert 0.18 < stop.at - move.at < 0.4
    assert (await rig.controller.status()).activity == "idle"


# --- presets, home, absolute, status -------------------------------------------------------


async def test_preset_set_stores_the_position_and_goto_returns_there(rig: Rig) -> None:
    ctl = rig.controller
    await ctl.continuous(100, -100, 0)  # right and down, fast
    await asyncio.sleep(0.3)
    await ctl.stop_moving()
    preset = await ctl.set_preset(7, "gate")
    assert preset.position.azimuth > 150 and preset.position.elevation > 100
    assert near(preset.position, rig.at())
    assert rig.saved[-1].preset(7) == preset
    await eventually(lambda: 7 in rig.simulator.presets())
    await ctl.absolute(PtzPosition(azimuth=3300, elevation=50, zoom=20))
    await eventually(lambda: near(rig.at(), PtzPosition(3300, 50, 20)))
    assert rig.commands()[-3:] == [
        SetPosition(Axis.PAN, 33000),
        SetPosition(Axis.TILT, 500),
        SetPosition(Axis.ZOOM, round(65535 / 29)),
    ]
    await ctl.linkage_preset(1, 7)  # an event rule's "go to preset"
    assert (await ctl.status()).activity == "preset"
    await rig.last_is(Preset(PresetAction.GOTO, 7))
    await rig.arrived(preset.position)
    status = await ctl.status()
    assert status.source == "dome" and near(status.position, preset.position)
    assert status.activity == "idle"


async def test_home_and_relative_moves(rig: Rig) -> None:
    ctl = rig.controller
    await ctl.absolute(PtzPosition(azimuth=100, elevation=200, zoom=50))
    await rig.arrived(PtzPosition(100, 200, 50))
    await ctl.set_home()
    assert rig.saved[-1].home == PtzPosition(100, 200, 50)
    await ctl.relative(-300, 100, 10)  # wraps round past north
    await eventually(lambda: near(rig.at(), PtzPosition(3400, 300, 60)))
    await ctl.goto_home()
    await eventually(lambda: near(rig.at(), PtzPosition(100, 200, 50)))
    assert isinstance(rig.commands()[-1], SetPosition)


async def test_status_is_estimated_when_the_dome_is_silent(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    ctl = rig.controller
    await ctl.absolute(PtzPosition(azimuth=900, elevation=100, zoom=10))
    await eventually(lambda: near(rig.at(), PtzPosition(900, 100, 10)))
    assert (await ctl.status()).source == "dome"
    rig.simulator.stop()  # the dome no longer reads the line
    caplog.set_level(logging.INFO, "vigil.ptz.controller")
    status = await ctl.status()
    assert status.source == "estimated" and near(status.position, PtzPosition(900, 100, 10))
    last_known = status.position  # the dome's last answer: within a step of the target
    await ctl.continuous(0, -100, 0)  # down at 40 deg/s
    await asyncio.sleep(0.5)
    await ctl.stop_moving()
    status = await ctl.status()
    assert status.source == "estimated"
    assert abs(status.position.elevation - last_known.elevation - 200) < 40
    assert status.position.azimuth == last_known.azimuth  # no pan: the azimuth stays
    silent = [r for r in caplog.records if "estimating" in r.getMessage()]
    assert len(silent) == 1  # one line for the change, none per status


# --- patrols, patterns, park -----------------------------------------------------------------


async def place_presets(ctl: PtzController, rig: Rig, positions: dict[int, PtzPosition]) -> None:
    for number, position in positions.items():
        await ctl.absolute(position)
        await rig.arrived(position)
        await ctl.set_preset(number, f"p{number}")
        await eventually(lambda number=number: number in rig.simulator.presets())


async def test_patrol_visits_its_presets_in_order_with_dwell(rig: Rig) -> None:
    ctl = rig.controller
    spots = {1: PtzPosition(0, 100, 10), 2: PtzPosition(300, 100, 10)}
    await place_presets(ctl, rig, spots)
    patrol = Patrol(1, "round", [PatrolStep(1, 1, 40), PatrolStep(2, 1, 20)])
    await ctl.apply(replace(rig.saved[-1], patrols=[patrol]))
    start = len(rig.sent())
    await ctl.start_patrol(1)
    assert (await ctl.status()).activity == "patrol"
    await eventually(lambda: len([c for c in rig.commands(start) if isinstance(c, Preset)]) >= 3, 8)
    frames = [r for r in rig.sent()[start:] if r.frame is not None]
    gotos = [r for r in frames if isinstance(r.frame.command, Preset)]
    assert all(r.frame.command.action is PresetAction.GOTO for r in gotos)  # no SET in between
    assert [r.frame.command.number for r in gotos[:3]] == [1, 2, 1]
    # step 2 runs at speed 20: a continuous approach at protocol speed 32 before its recall
    approach = [r for r in frames if isinstance(r.frame.command, Move)]
    assert approach[0].frame.command == Move(pan=1, pan_speed=32)
    assert gotos[0].at < approach[0].at < gotos[1].at
    assert approach[0].at - gotos[0].at >= 1.0  # the dwell at preset 1
    assert gotos[1].at - approach[0].at == pytest.approx(1.5, abs=0.2)  # 30 deg at 20 deg/s
    await eventually(lambda: near(rig.at(), spots[1]))
    await ctl.stop_patrol(1)
    await rig.last_is(STOP)
    assert (await ctl.status()).activity == "idle"


async def test_a_manual_command_ends_a_patrol(rig: Rig) -> None:
    ctl = rig.controller
    await place_presets(ctl, rig, {3: PtzPosition(0, 0, 10)})
    await ctl.apply(replace(rig.saved[-1], patrols=[Patrol(2, steps=[PatrolStep(3, 1, 40)])]))
    await ctl.start_patrol(2)
    await ctl.continuous(100, 0, 0)
    assert (await ctl.status()).activity == "manual"
    count = len(rig.sent())
    await asyncio.sleep(1.2)
    assert len(rig.sent()) == count  # no further recall


def lasted(seconds: float, expected: float) -> bool:
    """Whether a timed step took `expected` seconds: a timer fires late on a busy machine (the
    suite runs on several workers), never early."""
    return expected - 0.06 <= seconds <= expected + 0.25


async def test_pattern_records_and_replays_its_moves(rig: Rig) -> None:
    ctl = rig.controller
    await ctl.start_pattern_recording(2)
    assert (await ctl.status()).activity == "recording"
    with pytest.raises(PtzError, match="recording"):
        await ctl.absolute(PtzPosition())
    await asyncio.sleep(0.1)  # a pause before the first move is not recorded
    await ctl.continuous(100, 0, 0)
    await asyncio.sleep(0.3)
    await ctl.momentary(0, -100, 0, 200)
    await asyncio.sleep(0.4)
    await ctl.stop_pattern_recording(2)
    (pattern,) = rig.saved[-1].patterns
    assert [(s.pan, s.tilt, s.zoom) for s in pattern.steps] == [(100, 0, 0), (0, -100, 0)]
    first_ms, second_ms = (step.duration_ms for step in pattern.steps)
    assert lasted(first_ms / 1000, 0.3) and lasted(second_ms / 1000, 0.2), pattern.steps
    recorded_at = rig.at()
    await ctl.absolute(PtzPosition(0, 0, 10))
    await eventually(lambda: near(rig.at(), PtzPosition(0, 0, 10)))
    start = len(rig.sent())
    await ctl.run_pattern(2)
    assert (await ctl.status()).activity == "pattern"
    await eventually(lambda: len(rig.sent()) >= start + 2)
    first, second = rig.sent()[start : start + 2]
    assert rig.commands(start)[:2] == [Move(pan=1, pan_speed=0x40), Move(tilt=-1, tilt_speed=63)]
    assert lasted(second.at - first.at, first_ms / 1000)
    await asyncio.sleep(0.1)
    await ctl.stop_pattern(2)
    await rig.last_is(STOP)
    # One pass moved the dome as the recording did: 300 ms right at 80 deg/s, 200 ms down. A
    # replayed step may end a little late on a busy machine; a dome that had not moved would
    # be at least 19 degrees off (the first step lasted 240 ms or more).
    assert near(rig.at(), recorded_at, tolerance=120)
    await ctl.delete_pattern(2)
    assert rig.saved[-1].patterns == []


PARK = ParkAction(enabled=True, idle_s=5, action="preset", target=4)


@pytest.mark.parametrize("rig", [PtzSettings(park=PARK)], indirect=True)
async def test_park_action_runs_after_the_idle_time(rig: Rig) -> None:
    ctl = rig.controller
    await place_presets(ctl, rig, {4: PtzPosition(450, 200, 10)})
    await ctl.absolute(PtzPosition(0, 0, 10))
    moved = time.monotonic()
    rig.clock.skip(4)  # four of the five idle seconds pass at once
    await ctl.apply(ctl.settings)  # and the park watcher looks again
    await eventually(lambda: Preset(PresetAction.GOTO, 4) in rig.commands()[-1:], timeout=3)
    assert 0.9 < time.monotonic() - moved < 1.5
    await rig.arrived(PtzPosition(450, 200, 10))
    assert (await ctl.status()).activity == "park"
    count = len(rig.sent())
    await asyncio.sleep(0.3)
    assert len(rig.sent()) == count  # once, not again and again


# --- refusals --------------------------------------------------------------------------------


async def test_lock_refuses_moves_until_it_runs_out(rig: Rig) -> None:
    ctl = rig.controller
    await ctl.lock(60)
    for move in (
        ctl.continuous(10, 0, 0),
        ctl.momentary(10, 0, 0, 100),
        ctl.absolute(PtzPosition()),
        ctl.relative(10, 0, 0),
        ctl.start_pattern_recording(1),
    ):
        with pytest.raises(PtzError, match="locked"):
            await move
    assert rig.sent() == []
    assert (await ctl.status()).locked_s == 60
    await ctl.stop_moving()  # a stop is always taken
    await ctl.lock(0)
    await ctl.continuous(10, 0, 0)
    await rig.last_is(Move(pan=1, pan_speed=6))
    assert rig.commands() == [STOP, Move(pan=1, pan_speed=6)]
    assert (await ctl.status()).locked_s == 0


async def test_bad_values_are_refused_with_nothing_sent(rig: Rig) -> None:
    ctl = rig.controller
    settings = PtzSettings(
        patrols=[Patrol(1, steps=[PatrolStep(9)])],
        patterns=[Pattern(1, [PatternStep(10, 0, 0, 100)])],
    )
    await ctl.apply(settings)
    refused: list[tuple[object, type[Exception], str]] = [
        (ctl.continuous(101, 0, 0), PtzError, "pan speed"),
        (ctl.continuous(0, True, 0), PtzError, "tilt speed"),
        (ctl.momentary(0, 0, 50, 0), PtzError, "duration"),
        (ctl.goto_preset(256), PtzError, "preset 256"),
        (ctl.goto_preset(9), PtzError, "not set"),
        (ctl.clear_preset(9), PtzError, "not set"),
        (ctl.set_preset(0, "x"), PtzError, "preset 0"),
        (ctl.set_preset(1, "<b>"), ConfigError, "name"),
        (ctl.absolute(PtzPosition(3600, 0, 10)), ConfigError, "azimuth"),
        (ctl.relative(0, 901, 0), PtzError, "relative tilt"),
        (ctl.start_patrol(9), PtzError, "patrol 9"),
        (ctl.start_patrol(1), PtzError, "preset 9"),
        (ctl.start_patrol(2), PtzError, "no steps"),
        (ctl.run_pattern(2), PtzError, "not recorded"),
        (ctl.stop_pattern_recording(1), PtzError, "not recording"),
        (ctl.delete_pattern(3), PtzError, "not recorded"),
        (ctl.lock(-1), PtzError, "lock time"),
        (ctl.goto_home(), PtzError, "home"),
        (ctl.linkage_preset(2, 1), PtzError, "channel"),
    ]
    for call, error, message in refused:
        with pytest.raises(error, match=message):
            await call  # type: ignore[misc]
    with pytest.raises(ConfigError):
        await ctl.apply(PtzSettings(address=0))
    assert rig.simulator.received == [] and rig.saved == []
    assert ctl.settings == settings


PARK_PATTERN = PtzSettings(
    patterns=[Pattern(3, [PatternStep(100, 0, 0, 150), PatternStep(-100, 0, 0, 150)])],
    park=ParkAction(enabled=True, idle_s=30, action="pattern", target=3),
)


@pytest.mark.parametrize("rig", [PARK_PATTERN], indirect=True)
async def test_park_runs_a_pattern_until_the_next_command(rig: Rig) -> None:
    ctl = rig.controller
    await ctl.stop_moving()  # the last command: idle from now
    rig.clock.skip(29)
    await ctl.apply(ctl.settings)  # the watcher looks again: one second to go
    await asyncio.sleep(0.5)
    assert rig.commands() == [STOP]
    await eventually(lambda: len(rig.commands()) >= 3, timeout=1.5)
    assert rig.commands()[1:3] == [Move(pan=1, pan_speed=0x40), Move(pan=-1, pan_speed=0x40)]
    assert (await ctl.status()).activity == "park"
    await ctl.continuous(0, 0, 0)
    assert (await ctl.status()).activity == "idle"
    await rig.last_is(STOP)
    count = len(rig.sent())
    await asyncio.sleep(0.4)
    assert len(rig.sent()) == count


async def test_a_line_that_cannot_open_is_a_ptz_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "vigil.ptz.controller")
    line = SerialLine("/dev/vigil-no-such-line", SerialPortSettings(), rs485=False)

    async def save(new: PtzSettings) -> None:
        raise AssertionError("nothing to save")

    controller = PtzController(line, PtzSettings(), save)
    await controller.start()
    try:
        for _ in range(2):
            with pytest.raises(PtzError, match="cannot open"):
                await controller.continuous(10, 0, 0)
        status = await controller.status()
        assert status.source == "estimated" and status.position == PtzPosition()
    finally:
        await controller.stop()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "no-such-line" in errors[0].getMessage()
