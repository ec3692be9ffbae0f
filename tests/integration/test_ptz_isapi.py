"""ISAPI PTZCtrl on a real vigild.

Without a PTZ line (the sim board's default) every resource answers 403 `notSupport` and
changes nothing, and the permissions are checked first. With one (the sim board with
`[ptz] device` on the slave of a PTY pair whose master the dome simulator of
`vigil_tools.ptz_sim` holds): continuous moves, stop, preset set and recall and a patrol are
exactly the expected Pelco-D frames at the dome and, switched through `PTZChannel`, Pelco-P
frames; the dome ends where the preset was set and the position status over ISAPI says so.
"""

from __future__ import annotations

import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hikvisionapi import Client

from tests.integration.test_serial_api import ptz_board
from tests.integration.test_users import add_user
from tests.isapi_xml import NS, assert_refused_unchanged, bad, put_ok, refusal, text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.config.ptz import PtzPosition
from vigil.ptz import codec
from vigil.ptz.commands import STOP, Preset, PresetAction, QueryPosition, move_from_percent
from vigil.ptz.position import set_position_commands, to_isapi
from vigil.ptz.simdome import DomeSimulator, PtyMaster

HIK = f' xmlns="{NS[1:-1]}"'
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


# -- with a dome on a PTY ----------------------------------------------------------------------
ADDRESS = 1  # the settings' default: the daemon starts speaking to dome 1 in Pelco-D
AT_REST_S = 15.0


@dataclass
class Dome:
    """The dome simulator on the PTY master whose slave is the board's PTZ line."""

    master: PtyMaster
    simulator: DomeSimulator

    def speak(self, protocol: str) -> None:
        """Replace the simulator by one speaking `protocol` (its position starts over)."""
        self.simulator.stop()
        self.simulator = DomeSimulator(self.master, protocol, ADDRESS)
        self.simulator.start()

    def mark(self) -> int:
        return len(self.simulator.received)

    def commands(self, mark: int, count: int, timeout: float = 5.0) -> list[bytes]:
        """The first `count` frames after `mark` that are not position queries (the controller
        asks for the position whenever it reads the status or sets a preset)."""
        deadline = time.monotonic() + timeout
        while True:
            frames = [
                r.raw
                for r in self.simulator.received[mark:]
                if r.frame is not None and not isinstance(r.frame.command, QueryPosition)
            ]
            if len(frames) >= count or time.monotonic() > deadline:
                return frames[:count]
            time.sleep(0.02)

    def at_rest(self) -> PtzPosition:
        """The dome's position once it stopped moving, in ISAPI units."""
        deadline = time.monotonic() + AT_REST_S
        last = to_isapi(self.simulator.position())
        while True:
            time.sleep(0.3)
            now = to_isapi(self.simulator.position())
            if now == last:
                return now
            assert time.monotonic() < deadline, "the dome kept moving"
            last = now


@pytest.fixture(scope="module")
def dome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vigild, Dome]]:
    master = PtyMaster()
    dome = Dome(master, DomeSimulator(master, "pelco-d", ADDRESS))
    dome.simulator.start()
    directory = tmp_path_factory.mktemp("ptz")
    board = ptz_board(directory, master.path)
    daemon = Vigild(data_dir=directory / "device", extra_args=("--board", str(board)))
    try:
        daemon.start().activate()
        yield daemon, dome
    finally:
        daemon.stop()
        dome.simulator.stop()
        master.close()


def saved_ptz(camera: Vigild) -> dict[str, Any]:
    return tomllib.loads((camera.data_dir / "config.toml").read_text())["ptz"]


def move(pan: int, tilt: int = 0, zoom: int = 0) -> str:
    return f"<PTZData{HIK}><pan>{pan}</pan><tilt>{tilt}</tilt><zoom>{zoom}</zoom></PTZData>"


def absolute(position: PtzPosition, elevation: int | None = None) -> str:
    """`PTZData/AbsoluteHigh` for `position` (or with another `elevation`, to be refused)."""
    down = position.elevation if elevation is None else elevation
    high = (
        f"<elevation>{down}</elevation><azimuth>{position.azimuth}</azimuth>"
        f"<absoluteZoom>{position.zoom}</absoluteZoom>"
    )
    return f"<PTZData><AbsoluteHigh>{high}</AbsoluteHigh></PTZData>"


def position_of(document: ET.Element) -> PtzPosition:
    return PtzPosition(
        azimuth=int(text(document, "AbsoluteHigh/azimuth")),
        elevation=int(text(document, "AbsoluteHigh/elevation")),
        zoom=int(text(document, "AbsoluteHigh/absoluteZoom")),
    )


def status(camera: Vigild) -> tuple[PtzPosition, str]:
    document = xml(camera.get(f"{ONE}/status"))
    return position_of(document), text(document, "positionSource")


def near(seen: PtzPosition, expected: PtzPosition) -> bool:
    """Equal to a tenth: the dome reports hundredths of a degree (and its zoom in 65536 steps),
    which are rounded to ISAPI's tenths on their own, the simulator's exact position on its."""
    turn = (seen.azimuth - expected.azimuth) % 3600
    return (
        min(turn, 3600 - turn) <= 1
        and abs(seen.elevation - expected.elevation) <= 1
        and abs(seen.zoom - expected.zoom) <= 1
    )


def set_and_recall(camera: Vigild, dome: Dome, protocol: str, preset: int) -> None:
    """Preset `preset` set where the dome is, the dome sent elsewhere, then the preset
    recalled: exactly the set and goto frames, and the dome ends where the preset was set,
    which the status shows."""
    wire = codec(protocol)
    stored = dome.at_rest()
    mark = dome.mark()
    name = f"<PTZPreset><presetName>p{preset}</presetName></PTZPreset>"
    put_ok(camera, f"{ONE}/presets/{preset}", name)
    assert dome.commands(mark, 1) == [wire.encode(ADDRESS, Preset(PresetAction.SET, preset))]
    saved = xml(camera.get(f"{ONE}/presets/{preset}"))
    assert text(saved, "presetName") == f"p{preset}"
    assert near(position_of(saved), stored)
    kept = {p["id"]: p for p in saved_ptz(camera)["presets"]}
    assert kept[preset]["name"] == f"p{preset}"
    assert near(PtzPosition(**kept[preset]["position"]), stored)

    put_ok(camera, f"{ONE}/absolute", absolute(PtzPosition(azimuth=2700, elevation=600, zoom=50)))
    assert dome.at_rest() != stored
    mark = dome.mark()
    put_ok(camera, f"{ONE}/presets/{preset}/goto")
    assert dome.commands(mark, 1) == [wire.encode(ADDRESS, Preset(PresetAction.GOTO, preset))]
    assert dome.at_rest() == stored
    position, source = status(camera)
    assert near(position, stored)
    assert source == "dome"


def test_continuous_moves_and_stop_are_exactly_the_pelco_d_frames(
    dome: tuple[Vigild, Dome],
) -> None:
    camera, line = dome
    mark = line.mark()
    put_ok(camera, f"{ONE}/continuous", move(50))  # right at half speed
    time.sleep(0.5)
    put_ok(camera, f"{ONE}/continuous", move(0))
    put_ok(camera, f"{ONE}/continuous", "<PTZData><tilt>-100</tilt><zoom>30</zoom></PTZData>")
    put_ok(camera, f"{ONE}/continuous", move(0))
    assert line.commands(mark, 4) == [
        bytes.fromhex("ff 01 00 02 20 00 23"),  # pan right, speed 0x20
        bytes.fromhex("ff 01 00 00 00 00 01"),  # stop
        bytes.fromhex("ff 01 00 30 00 3f 70"),  # tilt down at top speed, zoom tele
        bytes.fromhex("ff 01 00 00 00 00 01"),
    ]
    assert line.at_rest().azimuth > 0  # it turned right for half a second
    position, source = status(camera)
    assert near(position, line.at_rest())
    assert source == "dome"


def test_a_preset_set_and_recalled_is_where_the_dome_ends_in_pelco_d(
    dome: tuple[Vigild, Dome],
) -> None:
    camera, line = dome
    put_ok(camera, f"{ONE}/absolute", absolute(PtzPosition(azimuth=450, elevation=200, zoom=20)))
    set_and_recall(camera, line, "pelco-d", 5)


def test_a_patrol_recalls_its_presets_in_turn(dome: tuple[Vigild, Dome]) -> None:
    camera, line = dome
    put_ok(camera, f"{ONE}/absolute", absolute(PtzPosition(azimuth=100, elevation=100, zoom=10)))
    line.at_rest()
    put_ok(camera, f"{ONE}/presets/6", "<PTZPreset><presetName>six</presetName></PTZPreset>")
    put_ok(camera, f"{ONE}/absolute", absolute(PtzPosition(azimuth=900, elevation=300, zoom=30)))
    line.at_rest()
    put_ok(camera, f"{ONE}/presets/7", "<PTZPreset><presetName>seven</presetName></PTZPreset>")
    steps = "".join(
        f"<PatrolSequence><presetID>{p}</presetID><delay>1</delay><seqSpeed>40</seqSpeed>"
        "</PatrolSequence>"
        for p in (6, 7)
    )
    patrol = f"<PTZPatrol><PatrolSequenceList>{steps}</PatrolSequenceList></PTZPatrol>"
    put_ok(camera, f"{ONE}/patrols/1", patrol)
    assert saved_ptz(camera)["patrols"] == [
        {"id": 1, "name": "", "steps": [{"preset": p, "dwell_s": 1, "speed": 40} for p in (6, 7)]}
    ]
    mark = line.mark()
    put_ok(camera, f"{ONE}/patrols/1/start")
    goto = [codec("pelco-d").encode(ADDRESS, Preset(PresetAction.GOTO, p)) for p in (6, 7, 6)]
    assert line.commands(mark, 3, timeout=10) == goto
    assert text(xml(camera.get(f"{ONE}/status")), "activity") == "patrol"
    put_ok(camera, f"{ONE}/patrols/1/stop")
    assert text(xml(camera.get(f"{ONE}/status")), "activity") == "idle"


def test_a_momentary_move_stops_by_itself(dome: tuple[Vigild, Dome]) -> None:
    camera, line = dome
    mark = line.mark()
    body = "<PTZData><pan>100</pan><Momentary><duration>300</duration></Momentary></PTZData>"
    put_ok(camera, f"{ONE}/momentary", body)
    frames = line.commands(mark, 2)
    assert frames == [
        bytes.fromhex("ff 01 00 02 ff 00 02"),  # pan right, turbo
        bytes.fromhex("ff 01 00 00 00 00 01"),
    ]
    sent = [r.at for r in line.simulator.received[mark:] if r.raw in frames]
    assert 0.25 <= sent[1] - sent[0] < 1.0


def test_refused_requests_send_nothing_to_the_dome(dome: tuple[Vigild, Dome]) -> None:
    camera, line = dome
    mark = line.mark()
    refusals = [
        (f"{ONE}/continuous", move(101), (400, "badParameters")),
        (f"{ONE}/absolute", absolute(PtzPosition(0, 0, 10), elevation=901), (400, "badParameters")),
        (f"{ONE}/presets/200/goto", "", (403, "invalidOperation")),
        (f"{ONE}/patrols/8/start", "", (403, "invalidOperation")),
        (f"{ONE}/presets/256", "<PTZPreset/>", (404, "notSupport")),
    ]
    for path, body, expected in refusals:
        code, sub, message = refusal(camera.put(path, body))
        assert (code, sub) == expected, (path, message)
    put_ok(
        camera,
        f"{ONE}/lockPTZ",
        "<PTZLockCfg><enabled>true</enabled><lockTime>60</lockTime></PTZLockCfg>",
    )
    lock = xml(camera.get(f"{ONE}/lockPTZ"))
    assert text(lock, "enabled") == "true"
    assert 55 <= int(text(lock, "lockTime")) <= 60
    code, sub, message = refusal(camera.put(f"{ONE}/continuous", move(50)))
    assert (code, sub) == (403, "invalidOperation")
    assert "locked" in message
    put_ok(camera, f"{ONE}/lockPTZ", "<PTZLockCfg><enabled>false</enabled></PTZLockCfg>")
    assert line.commands(mark, 1, timeout=0.5) == []


def channel(inner: str) -> str:
    return f"<PTZChannel>{inner}</PTZChannel>"


SETTINGS = (ONE, f"{ONE}/presets", f"{ONE}/patrols", f"{ONE}/parkaction")
STEP = (
    "<PatrolSequence><presetID>1</presetID><delay>5</delay><seqSpeed>{}</seqSpeed></PatrolSequence>"
)
PARK_TARGET = "<Action><ActionType>patrol</ActionType><ActionNum>9</ActionNum></Action>"
BAD_SETTINGS = [
    bad("protocol", ONE, channel("<controlProtocol>VISCA</controlProtocol>"),
        "badParameters", "controlProtocol"),
    bad("address", ONE, channel("<controlAddress><Address>0</Address></controlAddress>"),
        "badParameters", "Address"),
    bad("patrol speed", f"{ONE}/patrols/2",
        f"<PTZPatrol><PatrolSequenceList>{STEP.format(41)}</PatrolSequenceList></PTZPatrol>",
        "badParameters", "seqSpeed"),
    bad("patrol list", f"{ONE}/patrols",
        f"<PTZPatrolList><PTZPatrol><id>2</id><patrolName>ok</patrolName></PTZPatrol>"
        f"<PTZPatrol><id>3</id><PatrolSequenceList>{STEP.format(0)}</PatrolSequenceList>"
        "</PTZPatrol></PTZPatrolList>", "badParameters", "seqSpeed"),
    bad("park time", f"{ONE}/parkaction", "<ParkAction><Parktime>721</Parktime></ParkAction>",
        "badParameters", "Parktime"),
    bad("park target", f"{ONE}/parkaction", f"<ParkAction>{PARK_TARGET}</ParkAction>",
        "badParameters", "patrol is 1..8"),
    bad("preset name", f"{ONE}/presets",
        "<PTZPresetList><PTZPreset><id>99</id></PTZPreset></PTZPresetList>",
        "badParameters", "99 is not set"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "path", "body", "sub", "words"), BAD_SETTINGS,
                         ids=[b[0] for b in BAD_SETTINGS])  # fmt: skip
def test_refused_settings_change_nothing(
    dome: tuple[Vigild, Dome], what: str, path: str, body: str, sub: str, words: str
) -> None:
    camera, _ = dome
    assert_refused_unchanged(camera, SETTINGS, path, body, sub, words)


def test_relative_moves_and_home_go_by_absolute_positions(dome: tuple[Vigild, Dome]) -> None:
    camera, line = dome
    start = PtzPosition(azimuth=900, elevation=300, zoom=20)
    put_ok(camera, f"{ONE}/absolute", absolute(start))
    assert near(line.at_rest(), start)
    put_ok(camera, f"{ONE}/homeposition")
    home = xml(camera.get(f"{ONE}/homeposition"))
    assert text(home, "enabled") == "true"
    assert near(position_of(home), start)

    relative = "<positionX>100</positionX><positionY>50</positionY><relativeZoom>10</relativeZoom>"
    mark = line.mark()
    put_ok(camera, f"{ONE}/relative", f"<PTZData><Relative>{relative}</Relative></PTZData>")
    there = PtzPosition(azimuth=1000, elevation=250, zoom=30)  # positionY 50 is up: 5 degrees
    wire = codec("pelco-d")
    assert line.commands(mark, 3) == [wire.encode(ADDRESS, c) for c in set_position_commands(there)]
    assert near(line.at_rest(), there)

    put_ok(camera, f"{ONE}/homeposition/goto")
    assert near(line.at_rest(), start)


def test_a_recorded_pattern_replays_its_moves(dome: tuple[Vigild, Dome]) -> None:
    camera, line = dome
    put_ok(camera, f"{ONE}/patterns/2/recordstart")
    put_ok(camera, f"{ONE}/continuous", move(50))
    time.sleep(0.4)
    put_ok(camera, f"{ONE}/continuous", move(0))
    put_ok(camera, f"{ONE}/patterns/2/recordstop")
    pattern = xml(camera.get(f"{ONE}/patterns/2"))
    assert text(pattern, "enabled") == "true"
    assert 350 <= int(text(pattern, "duration")) <= 1000
    mark = line.mark()
    put_ok(camera, f"{ONE}/patterns/2/run")
    assert line.commands(mark, 1) == [bytes.fromhex("ff 01 00 02 20 00 23")]  # its move again
    put_ok(camera, f"{ONE}/patterns/2/stop")
    reply = camera.session().delete(f"{camera.url}{ONE}/patterns/2", timeout=10)
    assert reply.status_code == 200, reply.text
    assert text(xml(camera.get(f"{ONE}/patterns/2")), "enabled") == "false"


def test_hikvisionapi_moves_the_dome_and_reads_its_documents(dome: tuple[Vigild, Dome]) -> None:
    camera, line = dome
    ptz = Client(camera.url, "admin", ADMIN_PASSWORD, timeout=10).PTZCtrl.channels[1]
    mark = line.mark()
    ptz.continuous(method="put", data=move(-50))
    ptz.continuous(method="put", data=move(0))
    assert line.commands(mark, 2) == [
        bytes.fromhex("ff 01 00 04 20 00 25"),  # pan left, speed 0x20
        bytes.fromhex("ff 01 00 00 00 00 01"),
    ]
    capabilities = ptz.capabilities(method="get")["PTZChanelCap"]
    assert capabilities["maxPresetNum"] == "255"
    assert ptz(method="get")["PTZChannel"]["controlProtocol"] == "PELCO-D"
    assert ptz.status(method="get")["PTZStatus"]["positionSource"] == "dome"


def test_switched_to_pelco_p_the_same_requests_are_pelco_p_frames(
    dome: tuple[Vigild, Dome],
) -> None:
    camera, line = dome
    line.speak("pelco-p")
    put_ok(camera, ONE, "<PTZChannel><controlProtocol>PELCO-P</controlProtocol></PTZChannel>")
    assert text(xml(camera.get(ONE)), "controlProtocol") == "PELCO-P"
    wire = codec("pelco-p")
    mark = line.mark()
    put_ok(camera, f"{ONE}/continuous", move(-100, 0, -40))  # turbo left, zoom wide
    put_ok(camera, f"{ONE}/continuous", move(0))
    assert line.commands(mark, 2) == [
        wire.encode(ADDRESS, move_from_percent(-100, 0, -40)),
        wire.encode(ADDRESS, STOP),
    ]
    assert line.commands(mark, 2)[1] == bytes.fromhex("a0 00 00 00 00 00 af 0f")  # stop, dome 1
    set_and_recall(camera, line, "pelco-p", 9)
