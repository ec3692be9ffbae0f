"""The dome simulator over a real PTY pair, driven by pyserial with frames from the codecs.

The simulator holds the PTY master (`PtyMaster`, from `os.openpty()`); the test opens the slave
with pyserial, as the PTZ controller will. The model is also checked on its own with a manual
clock (exact speeds, limits, the short way round), and the CLI as a subprocess.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import serial

from vigil.ptz import codec
from vigil.ptz.commands import (
    PAN_TURBO,
    STOP,
    Axis,
    Codec,
    Command,
    Frame,
    Move,
    PositionReply,
    Preset,
    PresetAction,
    QueryPosition,
    SetPosition,
    ZoomSpeed,
)
from vigil.ptz.position import Dome, Position
from vigil.ptz.simdome import READ_TIMEOUT, DomeSimulator, PtyMaster

ADDRESS = 3


@dataclass
class Line:
    simulator: DomeSimulator
    client: serial.Serial
    codec: Codec

    def send(self, command: Command, address: int = ADDRESS) -> None:
        self.client.write(self.codec.encode(address, command))

    def query(self, axis: Axis) -> int:
        self.send(QueryPosition(axis))
        reply = self.codec.decode(self.client.read(self.codec.length), ADDRESS)
        assert isinstance(reply.command, PositionReply)
        assert reply.command.axis is axis
        return reply.command.value

    def wait_for(self, done: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)

    def handled(self, count: int) -> None:
        """Wait until the simulator has taken `count` frames off the line."""
        self.wait_for(lambda: len(self.simulator.received) >= count)


@pytest.fixture(params=["pelco-d", "pelco-p"])
def line(request: pytest.FixtureRequest) -> Iterator[Line]:
    master = PtyMaster()
    simulator = DomeSimulator(master, request.param, ADDRESS)
    simulator.start()
    client = serial.Serial(master.path, 9600, timeout=2)
    try:
        yield Line(simulator, client, codec(request.param))
    finally:
        client.close()
        simulator.stop()
        master.close()


def test_pan_right_for_a_second_moves_at_the_modelled_speed(line: Line) -> None:
    line.send(Move(pan=1, pan_speed=0x3F))
    time.sleep(1.0)
    line.send(STOP)
    line.handled(2)
    start, stop = line.simulator.received
    elapsed = stop.at - start.at
    assert 0.95 < elapsed < 1.5
    assert line.simulator.position().pan == pytest.approx(40.0 * elapsed, abs=0.01)
    assert [r.frame for r in line.simulator.received] == [
        Frame(ADDRESS, Move(pan=1, pan_speed=0x3F)),
        Frame(ADDRESS, STOP),
    ]
    assert line.query(Axis.PAN) == round(line.simulator.position().pan * 100)


def test_preset_set_and_go_returns_to_the_stored_position(line: Line) -> None:
    line.send(SetPosition(Axis.PAN, 12000))
    line.send(SetPosition(Axis.TILT, 3000))
    line.send(SetPosition(Axis.ZOOM, 0x2000))
    line.wait_for(lambda: line.simulator.position().pan == pytest.approx(120.0))
    assert [line.query(axis) for axis in Axis] == [12000, 3000, 0x2000]
    stored = line.simulator.position()
    assert stored.pan == pytest.approx(120.0)
    assert stored.tilt == pytest.approx(-30.0)
    assert stored.zoom == pytest.approx(1 + 29 * 0x2000 / 0xFFFF)
    line.send(Preset(PresetAction.SET, 7))

    line.send(Move(pan=-1, tilt=1, zoom=-1, pan_speed=PAN_TURBO, tilt_speed=0x3F))
    time.sleep(0.5)
    line.send(STOP)
    line.wait_for(lambda: line.simulator.position().pan < 90)
    moved = line.simulator.position()
    assert moved.tilt > -15 and moved.zoom < stored.zoom

    line.send(Preset(PresetAction.GOTO, 7))
    line.wait_for(lambda: line.simulator.position() == stored)
    assert (line.query(Axis.PAN), line.query(Axis.TILT)) == (12000, 3000)

    line.send(Preset(PresetAction.CLEAR, 7))
    line.send(Preset(PresetAction.GOTO, 7))
    line.wait_for(lambda: line.simulator.received[-1].error is not None)
    assert line.simulator.received[-1].error == "preset 7 is not set"
    assert line.simulator.presets() == {}


def test_queries_are_answered_and_decode(line: Line) -> None:
    assert (line.query(Axis.PAN), line.query(Axis.TILT), line.query(Axis.ZOOM)) == (0, 0, 0)
    line.send(SetPosition(Axis.PAN, 35000))  # 10 degrees the short way, through 0
    line.send(SetPosition(Axis.TILT, 1000))
    line.wait_for(lambda: line.query(Axis.PAN) == 35000 and line.query(Axis.TILT) == 1000)
    line.send(ZoomSpeed(1))
    line.send(Move(zoom=1))
    time.sleep(0.4)
    line.send(STOP)
    line.wait_for(lambda: line.simulator.received[-1].frame == Frame(ADDRESS, STOP))
    zoom = line.simulator.position().zoom
    assert zoom == pytest.approx(1 + 0.4 * 29 * 2 / 16, abs=0.2)
    assert line.query(Axis.ZOOM) == round((zoom - 1) / 29 * 0xFFFF)


def test_junk_on_the_line_is_skipped(line: Line) -> None:
    sync = bytes((line.codec.sync,))
    junk = b"\x00noise\x0d\x0a" + sync + b"\x00\x01" + sync * 2
    line.client.write(junk)
    line.send(Preset(PresetAction.SET, 1))
    line.client.write(junk[:5])
    line.send(QueryPosition(Axis.PAN))
    reply = line.codec.decode(line.client.read(line.codec.length), ADDRESS)
    assert reply.command == PositionReply(Axis.PAN, 0)
    assert [r.frame.command for r in line.simulator.received if r.frame] == [
        Preset(PresetAction.SET, 1),
        QueryPosition(Axis.PAN),
    ]
    assert line.simulator.skipped == len(junk) + 5


def test_frames_for_another_dome_are_ignored(line: Line) -> None:
    line.send(Move(pan=1, pan_speed=0x3F), address=ADDRESS + 1)
    line.send(QueryPosition(Axis.PAN), address=ADDRESS + 1)
    line.handled(2)
    time.sleep(0.2)
    assert line.client.in_waiting == 0  # no answer for someone else
    assert [r.error for r in line.simulator.received] == [f"for dome {ADDRESS + 1}"] * 2
    assert line.simulator.position() == Position(0.0, 0.0, 1.0)


def test_refused_frames_change_nothing(line: Line) -> None:
    line.send(SetPosition(Axis.TILT, 9001))  # below the floor
    line.send(SetPosition(Axis.PAN, 36000))
    line.send(PositionReply(Axis.PAN, 1))
    line.handled(3)
    errors = [r.error for r in line.simulator.received]
    assert errors == [
        "tilt position 9001 is beyond 9000",
        "pan position 36000 is beyond 35999",
        "a position reply is for the controller, not for a dome",
    ]
    assert line.simulator.position() == Position(0.0, 0.0, 1.0)


def test_on_a_serial_device_until_the_line_fails(caplog: pytest.LogCaptureFixture) -> None:
    """The simulator on pyserial (as with --port), the test on the PTY master; then a hang-up."""
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), 9600, timeout=READ_TIMEOUT)
    simulator = DomeSimulator(port, "pelco-d", ADDRESS)
    simulator.start()
    pelco_d = codec("pelco-d")
    try:
        os.write(master, b"junk" + pelco_d.encode(ADDRESS, QueryPosition(Axis.TILT)))
        ready, _, _ = select.select([master], [], [], 5)
        assert ready
        reply = pelco_d.decode(os.read(master, 64), ADDRESS)
        assert reply.command == PositionReply(Axis.TILT, 0)
        assert simulator.skipped == 4
        os.close(slave)
        os.close(master)
        deadline = time.monotonic() + 5
        while simulator.running:
            assert time.monotonic() < deadline, "the simulator did not notice the hang-up"
            time.sleep(0.02)
        assert "the line failed, the dome stops listening" in caplog.text
    finally:
        simulator.stop()
        port.close()


# --- the model with a manual clock ----------------------------------------------------------


def test_speeds_are_linear_and_turbo_is_faster() -> None:
    dome = Dome(now=0.0)
    dome.apply(Move(pan=1, pan_speed=0x20), 0.0)
    assert dome.position(2.0).pan == pytest.approx(2 * 40 * 0x20 / 0x3F)
    dome.apply(Move(pan=-1, pan_speed=PAN_TURBO), 2.0)
    assert dome.position(3.0).pan == pytest.approx((2 * 40 * 0x20 / 0x3F - 80) % 360)


def test_tilt_and_zoom_stop_at_their_ends_and_pan_wraps() -> None:
    dome = Dome(now=0.0)
    dome.apply(Move(pan=-1, tilt=1, zoom=-1, pan_speed=0x3F, tilt_speed=0x3F), 0.0)
    assert dome.position(1.0) == Position(320.0, 0.0, 1.0)
    dome.apply(Move(tilt=-1, zoom=1, tilt_speed=0x3F), 1.0)
    assert dome.position(10.0) == Position(320.0, -90.0, 30.0)


def test_presets_go_the_short_way_round() -> None:
    dome = Dome(now=0.0, pan=350.0)
    dome.apply(Preset(PresetAction.SET, 1), 0.0)
    dome.pan = 10.0
    dome.apply(Preset(PresetAction.GOTO, 1), 0.0)
    assert dome.position(0.1).pan == pytest.approx(0.0)  # 100 deg/s, through 0 not 180
    assert dome.position(0.2).pan == pytest.approx(350.0)
    assert dome.targets == {}


# --- the command line -----------------------------------------------------------------------


def test_cli_on_a_pty_answers_a_query() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "vigil_tools.cli", "ptz-sim", "--pty"]
    args = ["--protocol", "pelco-p", "--address", str(ADDRESS)]
    with subprocess.Popen(
        command + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            assert process.stdout is not None
            path = process.stdout.readline().strip()
            assert path.startswith("/dev/pts/")
            pelco_p = codec("pelco-p")
            with serial.Serial(path, 9600, timeout=5) as client:
                client.write(pelco_p.encode(ADDRESS, SetPosition(Axis.PAN, 500)))
                time.sleep(0.3)
                client.write(pelco_p.encode(ADDRESS, QueryPosition(Axis.PAN)))
                reply = pelco_p.decode(client.read(pelco_p.length), ADDRESS)
            assert reply.command == PositionReply(Axis.PAN, 500)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "rx a0 02 00 4b 01 f4 af" in stderr
    assert "stopped; 2 frames, 0 junk bytes" in stderr


def test_cli_refuses_a_missing_device() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "vigil_tools.cli", "ptz-sim", "--port", "/dev/nonexistent-tty"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 1
    assert "cannot open the line" in result.stderr
    assert "Traceback" not in result.stderr
