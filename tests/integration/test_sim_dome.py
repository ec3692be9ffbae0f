"""The simulated PTZ dome board (`--board sim-dome`, `make run RUN_BOARD=sim-dome`): an IPDome
whose dome is simulated in the daemon on a PTY, driven through ISAPI like a real one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_ptz_isapi import ONE, move, status
from tests.isapi_xml import put_ok, text, xml
from tests.vigild import Vigild


@pytest.fixture(scope="module")
def dome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vigild]:
    data_dir: Path = tmp_path_factory.mktemp("sim-dome") / "device"
    daemon = Vigild(data_dir, extra_args=("--board", "sim-dome"))
    try:
        daemon.start().activate()
        yield daemon
    finally:
        daemon.stop()


def moved_for(camera: Vigild, pan: int, seconds: float) -> None:
    put_ok(camera, f"{ONE}/continuous", move(pan))
    time.sleep(seconds)
    put_ok(camera, f"{ONE}/continuous", move(0))


def test_it_is_a_dome_with_one_rs485_port(dome: Vigild) -> None:
    assert text(xml(dome.get("/ISAPI/System/deviceInfo")), "deviceType") == "IPDome"
    ports = xml(dome.get("/ISAPI/System/Serial/ports"))
    assert text(ports, "SerialPort/serialPortType") == "RS485"


@pytest.mark.parametrize("protocol", ["PELCO-D", "PELCO-P"])
def test_the_simulated_dome_turns_answers_and_follows_the_protocol_setting(
    dome: Vigild, protocol: str
) -> None:
    channel = f"<PTZChannel><controlProtocol>{protocol}</controlProtocol></PTZChannel>"
    put_ok(dome, ONE, channel)
    start, source = status(dome)
    assert source == "dome"  # queried over the line: the simulated dome answers
    moved_for(dome, 50, 1.0)  # speed 32 of 63: about 20 degrees a second
    end, source = status(dome)
    assert source == "dome"
    turned = (end.azimuth - start.azimuth) % 3600
    assert 100 <= turned <= 400, (start, end)

    put_ok(dome, f"{ONE}/presets/7", "<PTZPreset><presetName>gate</presetName></PTZPreset>")
    moved_for(dome, -50, 0.5)
    put_ok(dome, f"{ONE}/presets/7/goto")
    time.sleep(1.0)  # the preset move: 100 degrees a second
    back, _ = status(dome)
    assert abs(back.azimuth - end.azimuth) <= 1, (end, back)
