"""ISAPI PTZCtrl on a real vigild: without a PTZ line (the sim board's default) every resource
answers 403 `notSupport` and changes nothing."""

from __future__ import annotations

import pytest
import requests

from tests.integration.test_users import add_user
from tests.isapi_xml import refusal
from tests.vigild import Vigild

PTZ = "/ISAPI/PTZCtrl/channels"
ONE = f"{PTZ}/1"
MOVE = "<PTZData><pan>50</pan><tilt>0</tilt><zoom>0</zoom></PTZData>"
PRESET = "<PTZPreset><id>1</id><presetName>gate</presetName></PTZPreset>"
PATROL = "<PTZPatrol><id>1</id><patrolName>round</patrolName></PTZPatrol>"
PARK = "<ParkAction><enabled>true</enabled><Parktime>30</Parktime></ParkAction>"
LOCK = "<PTZLockCfg><enabled>true</enabled><lockTime>30</lockTime></PTZLockCfg>"
CHANNEL = "<PTZChannel><controlProtocol>PELCO-P</controlProtocol></PTZChannel>"

# Every PTZCtrl resource: (method, path, body).
RESOURCES = [
    ("GET", PTZ, ""),
    ("GET", ONE, ""),
    ("PUT", ONE, CHANNEL),
    ("PUT", f"{ONE}/continuous", MOVE),
    ("PUT", f"{ONE}/momentary", MOVE),
    ("PUT", f"{ONE}/absolute", MOVE),
    ("PUT", f"{ONE}/relative", MOVE),
    ("GET", f"{ONE}/presets", ""),
    ("PUT", f"{ONE}/presets", "<PTZPresetList/>"),
    ("GET", f"{ONE}/presets/1", ""),
    ("PUT", f"{ONE}/presets/1", PRESET),
    ("DELETE", f"{ONE}/presets/1", ""),
    ("PUT", f"{ONE}/presets/1/goto", ""),
    ("GET", f"{ONE}/homeposition", ""),
    ("PUT", f"{ONE}/homeposition", ""),
    ("PUT", f"{ONE}/homeposition/goto", ""),
    ("GET", f"{ONE}/patrols", ""),
    ("PUT", f"{ONE}/patrols", "<PTZPatrolList/>"),
    ("GET", f"{ONE}/patrols/1", ""),
    ("PUT", f"{ONE}/patrols/1", PATROL),
    ("DELETE", f"{ONE}/patrols/1", ""),
    ("PUT", f"{ONE}/patrols/1/start", ""),
    ("PUT", f"{ONE}/patrols/1/stop", ""),
    ("GET", f"{ONE}/patterns", ""),
    ("GET", f"{ONE}/patterns/1", ""),
    ("DELETE", f"{ONE}/patterns/1", ""),
    *[("PUT", f"{ONE}/patterns/1/{action}", "") for action in ("recordstart", "recordstop")],
    *[("PUT", f"{ONE}/patterns/1/{action}", "") for action in ("run", "stop")],
    ("GET", f"{ONE}/parkaction", ""),
    ("PUT", f"{ONE}/parkaction", PARK),
    ("GET", f"{ONE}/lockPTZ", ""),
    ("PUT", f"{ONE}/lockPTZ", LOCK),
    ("GET", f"{ONE}/status", ""),
    ("GET", f"{ONE}/capabilities", ""),
]


@pytest.fixture(scope="module")
def camera(module_device: Vigild) -> Vigild:
    return module_device  # conftest: one activated device (the sim board: no PTZ line)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    RESOURCES,
    ids=[f"{m} {p.removeprefix(PTZ)}" for m, p, _ in RESOURCES],
)
def test_without_a_ptz_line_every_resource_is_not_supported(
    camera: Vigild, method: str, path: str, body: str
) -> None:
    config = camera.data_dir / "config.toml"
    before = config.read_bytes()
    reply = camera.session().request(method, f"{camera.url}{path}", data=body, timeout=10)
    code, sub, message = refusal(reply)
    assert (code, sub) == (403, "notSupport"), reply.text
    assert "no PTZ line" in message
    assert config.read_bytes() == before


def test_moves_need_ptz_control_and_settings_parameter_config(camera: Vigild) -> None:
    assert add_user(camera, "ptzviewer", "Viewer", "View-Pass-11").status_code == 200
    assert add_user(camera, "ptzoperator", "Operator", "Oper-Pass-77").status_code == 200
    viewer = camera.session("ptzviewer", "View-Pass-11")
    operator = camera.session("ptzoperator", "Oper-Pass-77")

    def answer(session: requests.Session, path: str, body: str) -> tuple[int, str]:
        code, sub, _ = refusal(session.put(f"{camera.url}{path}", data=body, timeout=10))
        return code, sub

    # the permission is checked first; a user who has it meets the missing line
    assert answer(viewer, f"{ONE}/continuous", MOVE) == (403, "noPermission")
    assert answer(operator, f"{ONE}/continuous", MOVE) == (403, "notSupport")
    assert answer(operator, f"{ONE}/presets/1/goto", "") == (403, "notSupport")
    assert answer(operator, f"{ONE}/presets/1", PRESET) == (403, "noPermission")
    assert answer(operator, f"{ONE}/patrols/1", PATROL) == (403, "noPermission")
