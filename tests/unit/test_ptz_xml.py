"""The ISAPI PTZ documents: PTZData moves, PTZChannel, presets, patrols, park action, lock and
status read into the controller's values and settings and shown back, and what is refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from vigil.api import ptz_xml
from vigil.api.errors import IsapiError
from vigil.api.xml import NAMESPACE, XmlIn, parse, render
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
from vigil.ptz.controller import PtzStatus

HIK = f' xmlns="{NAMESPACE}"'


def doc(body: str, root: str) -> XmlIn:
    return parse(body.encode(), root)


def shown(root: str, content: dict[str, object]) -> XmlIn:
    """A document as the device renders it, read back as a client would send it."""
    return parse(render(root, content), root)


def elements(**values: object) -> str:
    return "".join(f"<{tag}>{value}</{tag}>" for tag, value in values.items())


def patrol_body(*steps: str, head: str = "") -> str:
    """A `PTZPatrol` body: `head`, then a sequence of these steps (each the elements of one)."""
    sequence = "".join(f"<PatrolSequence>{inner}</PatrolSequence>" for inner in steps)
    return f"<PTZPatrol>{head}<PatrolSequenceList>{sequence}</PatrolSequenceList></PTZPatrol>"


def step(inner: str) -> str:
    return patrol_body(inner)


def preset_list(*presets: str) -> str:
    items = "".join(f"<PTZPreset>{inner}</PTZPreset>" for inner in presets)
    return f"<PTZPresetList>{items}</PTZPresetList>"


def refused(call: object, sub: str, words: str) -> None:
    with pytest.raises(IsapiError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.sub_status == sub, caught.value.message
    assert words in caught.value.message, caught.value.message


# -- moves -------------------------------------------------------------------------------------
def test_continuous_takes_the_three_speeds_with_or_without_a_namespace() -> None:
    body = "<PTZData{}><pan>-100</pan><tilt>35</tilt><zoom>100</zoom></PTZData>"
    assert ptz_xml.parse_continuous(doc(body.format(""), "PTZData")) == (-100, 35, 100)
    assert ptz_xml.parse_continuous(doc(body.format(HIK), "PTZData")) == (-100, 35, 100)
    assert ptz_xml.parse_continuous(doc("<PTZData><pan>20</pan></PTZData>", "PTZData")) == (
        20,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("body", "sub", "words"),
    [
        ("<PTZData><pan>101</pan></PTZData>", "badParameters", "<pan> 101"),
        ("<PTZData><tilt>-101</tilt></PTZData>", "badParameters", "<tilt> -101"),
        ("<PTZData><zoom>fast</zoom></PTZData>", "badXmlContent", "<zoom> must be an integer"),
        ("<PTZData><pan>1</pan><speed>3</speed></PTZData>", "badXmlContent", "<speed>"),
    ],
)
def test_continuous_refuses_what_is_out_of_range_or_unknown(
    body: str, sub: str, words: str
) -> None:
    refused(lambda: ptz_xml.parse_continuous(doc(body, "PTZData")), sub, words)


def test_momentary_needs_its_duration_in_milliseconds() -> None:
    body = "<PTZData><pan>40</pan><Momentary><duration>300</duration></Momentary></PTZData>"
    assert ptz_xml.parse_momentary(doc(body, "PTZData")) == (40, 0, 0, 300)
    no_duration = "<PTZData><pan>40</pan></PTZData>"
    refused(
        lambda: ptz_xml.parse_momentary(doc(no_duration, "PTZData")), "badXmlContent", "<Momentary>"
    )
    empty = "<PTZData><pan>40</pan><Momentary/></PTZData>"
    refused(lambda: ptz_xml.parse_momentary(doc(empty, "PTZData")), "badXmlContent", "<duration>")
    long = "<PTZData><Momentary><duration>60001</duration></Momentary></PTZData>"
    refused(lambda: ptz_xml.parse_momentary(doc(long, "PTZData")), "badParameters", "60001")


def test_absolute_is_degrees_times_ten_and_comes_back_as_sent() -> None:
    body = (
        "<PTZData><AbsoluteHigh><elevation>450</elevation><azimuth>3599</azimuth>"
        "<absoluteZoom>300</absoluteZoom></AbsoluteHigh></PTZData>"
    )
    position = ptz_xml.parse_absolute(doc(body, "PTZData"))
    assert position == PtzPosition(azimuth=3599, elevation=450, zoom=300)
    again = shown("PTZData", {"AbsoluteHigh": ptz_xml.position_doc(position)})
    assert ptz_xml.parse_absolute(again) == position


def high(elevation: int, azimuth: int, zoom: int | None = None) -> str:
    zoom_element = "" if zoom is None else elements(absoluteZoom=zoom)
    inner = elements(elevation=elevation, azimuth=azimuth) + zoom_element
    return f"<PTZData><AbsoluteHigh>{inner}</AbsoluteHigh></PTZData>"


@pytest.mark.parametrize(
    ("body", "sub", "words"),
    [
        (high(901, 0, 10), "badParameters", "<elevation> 901"),
        (high(-1, 0, 10), "badParameters", "<elevation> -1"),
        (high(0, 3600, 10), "badParameters", "<azimuth> 3600"),
        (high(0, 0, 9), "badParameters", "<absoluteZoom> 9"),
        (high(0, 0, 301), "badParameters", "<absoluteZoom> 301"),
        (high(0, 0), "badXmlContent", "<absoluteZoom> is required"),
        ("<PTZData/>", "badXmlContent", "<AbsoluteHigh>"),
        ("<PTZData><pan>1</pan></PTZData>", "badXmlContent", "unknown element <pan>"),
    ],
)
def test_absolute_refuses_a_position_the_dome_cannot_take(body: str, sub: str, words: str) -> None:
    refused(lambda: ptz_xml.parse_absolute(doc(body, "PTZData")), sub, words)


def test_relative_turns_hikvisions_up_into_the_controllers_down() -> None:
    body = (
        "<PTZData><Relative><positionX>-120</positionX><positionY>60</positionY>"
        "<relativeZoom>-5</relativeZoom></Relative></PTZData>"
    )
    assert ptz_xml.parse_relative(doc(body, "PTZData")) == (-120, -60, -5)
    refused(
        lambda: ptz_xml.parse_relative(doc("<PTZData><pan>1</pan></PTZData>", "PTZData")),
        "badXmlContent",
        "<pan>",
    )


# -- the channel -------------------------------------------------------------------------------
def test_the_channel_shows_hikvisions_protocol_spelling_and_reads_any_case() -> None:
    settings = PtzSettings(protocol="pelco-p", address=7)
    content = ptz_xml.channel_doc(settings)
    assert content["controlProtocol"] == "PELCO-P"
    assert ptz_xml.parse_channel(shown("PTZChannel", content), settings) == {
        "protocol": "pelco-p",
        "address": 7,
    }
    body = "<PTZChannel><controlProtocol>pelco-d</controlProtocol></PTZChannel>"
    assert ptz_xml.parse_channel(doc(body, "PTZChannel"), settings) == {"protocol": "pelco-d"}
    body = "<PTZChannel><controlAddress><Address>255</Address></controlAddress></PTZChannel>"
    assert ptz_xml.parse_channel(doc(body, "PTZChannel"), settings) == {"address": 255}


@pytest.mark.parametrize(
    ("inner", "sub", "words"),
    [
        ("<controlProtocol>VISCA</controlProtocol>", "badParameters", "PELCO-D, PELCO-P"),
        ("<controlAddress><Address>0</Address></controlAddress>", "badParameters", "Address"),
        ("<controlAddress><Address>256</Address></controlAddress>", "badParameters", "Address"),
        ("<id>2</id>", "badParameters", "<id>"),
        ("<enabled>false</enabled>", "badParameters", "cannot be switched off"),
        ("<PTZRs485Para/>", "badXmlContent", "<PTZRs485Para>"),
    ],
)
def test_the_channel_refuses(inner: str, sub: str, words: str) -> None:
    body = f"<PTZChannel>{inner}</PTZChannel>"
    refused(lambda: ptz_xml.parse_channel(doc(body, "PTZChannel"), PtzSettings()), sub, words)


# -- presets -----------------------------------------------------------------------------------
def test_a_preset_shows_its_position_and_is_set_by_its_name() -> None:
    preset = PtzPreset(3, "gate", PtzPosition(900, 150, 20))
    content = ptz_xml.preset_doc(preset)
    assert content["AbsoluteHigh"] == {"elevation": 150, "azimuth": 900, "absoluteZoom": 20}
    # sent back as read (AbsoluteHigh included): the name is what counts
    assert ptz_xml.parse_preset(shown("PTZPreset", content), 3, "") == "gate"
    body = "<PTZPreset><id>3</id><presetName>Back gate</presetName></PTZPreset>"
    assert ptz_xml.parse_preset(doc(body, "PTZPreset"), 3, "gate") == "Back gate"
    assert ptz_xml.parse_preset(doc("<PTZPreset/>", "PTZPreset"), 3, "gate") == "gate"


@pytest.mark.parametrize(
    ("inner", "sub", "words"),
    [
        ("<id>4</id>", "badParameters", "<id>"),
        ("<presetName>" + "x" * 33 + "</presetName>", "badParameters", "<presetName>"),
        ("<presetName>a&lt;b</presetName>", "badParameters", "<presetName>"),
        ("<enabled>false</enabled>", "badParameters", "DELETE"),
    ],
)
def test_a_preset_refuses(inner: str, sub: str, words: str) -> None:
    body = f"<PTZPreset>{inner}</PTZPreset>"
    refused(lambda: ptz_xml.parse_preset(doc(body, "PTZPreset"), 3, ""), sub, words)


def test_the_preset_list_renames_presets_that_are_set_only() -> None:
    presets = [PtzPreset(1, "a"), PtzPreset(2, "b", PtzPosition(1, 2, 30))]
    body = preset_list(elements(id=2, presetName="drive"))
    renamed = ptz_xml.parse_preset_names(doc(body, "PTZPresetList"), presets)
    assert renamed == [PtzPreset(1, "a"), PtzPreset(2, "drive", PtzPosition(1, 2, 30))]
    unset = (
        "<PTZPresetList><PTZPreset><id>9</id><presetName>x</presetName></PTZPreset></PTZPresetList>"
    )
    refused(
        lambda: ptz_xml.parse_preset_names(doc(unset, "PTZPresetList"), presets),
        "badParameters",
        "9 is not set",
    )


# -- patrols -----------------------------------------------------------------------------------
def test_a_patrol_comes_back_as_shown() -> None:
    patrol = Patrol(2, "round", [PatrolStep(1, 10, 30), PatrolStep(255, 120, 40)])
    content = ptz_xml.patrol_doc(patrol)
    root = ET.fromstring(render("PTZPatrol", content))
    ns = f"{{{NAMESPACE}}}"
    steps = root.findall(f"{ns}PatrolSequenceList/{ns}PatrolSequence")
    assert [(s.findtext(f"{ns}presetID"), s.findtext(f"{ns}delay")) for s in steps] == [
        ("1", "10"),
        ("255", "120"),
    ]
    assert ptz_xml.parse_patrol(shown("PTZPatrol", content), 2, None) == patrol


def test_a_patrol_reads_the_other_spellings_and_skips_hikvisions_empty_slots() -> None:
    body = patrol_body(
        elements(id=1, PresetID=4, dwellTime=10, speed=30),
        elements(presetId=5, DwellTime=15, seqSpeed=1),
        elements(presetID=0, seqSpeed=30, delay=15),
        head=elements(id=1, enabled="true", patrolName="p"),
    )
    patrol = ptz_xml.parse_patrol(doc(body, "PTZPatrol"), 1, None)
    assert patrol == Patrol(1, "p", [PatrolStep(4, 10, 30), PatrolStep(5, 15, 1)])


def test_a_patrol_keeps_what_it_leaves_out() -> None:
    current = Patrol(1, "round", [PatrolStep(1, 10, 30)])
    body = "<PTZPatrol><patrolName>night</patrolName></PTZPatrol>"
    assert ptz_xml.parse_patrol(doc(body, "PTZPatrol"), 1, current) == Patrol(
        1, "night", current.steps
    )


@pytest.mark.parametrize(
    ("body", "sub", "words"),
    [
        (
            step("<presetID>1</presetID><delay>0</delay><seqSpeed>30</seqSpeed>"),
            "badParameters",
            "<delay> 0",
        ),
        (
            step("<presetID>1</presetID><delay>121</delay><seqSpeed>30</seqSpeed>"),
            "badParameters",
            "<delay> 121",
        ),
        (
            step("<presetID>1</presetID><delay>5</delay><seqSpeed>41</seqSpeed>"),
            "badParameters",
            "<seqSpeed> 41",
        ),
        (
            step("<presetID>256</presetID><delay>5</delay><seqSpeed>4</seqSpeed>"),
            "badParameters",
            "<presetID> 256",
        ),
        (
            step("<presetID>1</presetID><seqSpeed>4</seqSpeed>"),
            "badXmlContent",
            "<delay> is required",
        ),
        (
            step(elements(presetID=1, PresetID=2, delay=5, seqSpeed=4)),
            "badXmlContent",
            "send one",
        ),
        (
            step("<presetID>1</presetID><delay>5</delay><seqSpeed>4</seqSpeed><focus>1</focus>"),
            "badXmlContent",
            "<focus>",
        ),
        ("<PTZPatrol><id>3</id></PTZPatrol>", "badParameters", "<id>"),
        (
            "<PTZPatrol><patrolName>" + "n" * 33 + "</patrolName></PTZPatrol>",
            "badParameters",
            "<patrolName>",
        ),
    ],
)
def test_a_patrol_refuses(body: str, sub: str, words: str) -> None:
    refused(lambda: ptz_xml.parse_patrol(doc(body, "PTZPatrol"), 1, None), sub, words)


def test_a_patrol_has_at_most_32_presets() -> None:
    body = patrol_body(*[elements(presetID=1, delay=5, seqSpeed=4)] * 33)
    refused(
        lambda: ptz_xml.parse_patrol(doc(body, "PTZPatrol"), 1, None), "badParameters", "33 presets"
    )


def test_the_patrol_list_applies_each_patrol_to_its_own_and_drops_empty_slots() -> None:
    current = [Patrol(1, "a", [PatrolStep(1)]), Patrol(2, "b", [PatrolStep(2)])]
    shown_list = [ptz_xml.patrol_doc(current[0]), ptz_xml.empty_patrol_doc(3)]
    renamed = {**ptz_xml.patrol_doc(current[1]), "patrolName": "c"}
    body = render("PTZPatrolList", {"PTZPatrol": [*shown_list, renamed]})
    patrols = ptz_xml.parse_patrol_list(parse(body, "PTZPatrolList"), current)
    assert patrols == [current[0], Patrol(2, "c", [PatrolStep(2)])]
    twice = render("PTZPatrolList", {"PTZPatrol": [ptz_xml.patrol_doc(current[0])] * 2})
    refused(
        lambda: ptz_xml.parse_patrol_list(parse(twice, "PTZPatrolList"), current),
        "badParameters",
        "twice",
    )


# -- patterns, park, lock, status, capabilities ------------------------------------------------
def test_a_pattern_shows_whether_it_is_recorded_and_how_long_it_lasts() -> None:
    pattern = Pattern(2, [PatternStep(50, 0, 0, 1500), PatternStep(0, 0, 0, 200)])
    assert ptz_xml.pattern_doc(2, pattern) == {"id": 2, "enabled": True, "duration": 1700}
    assert ptz_xml.pattern_doc(3, None) == {"id": 3, "enabled": False, "duration": 0}


def test_the_park_action_comes_back_as_shown_and_keeps_what_it_leaves_out() -> None:
    park = ParkAction(enabled=True, idle_s=720, action="patrol", target=8)
    assert ptz_xml.parse_park(shown("ParkAction", ptz_xml.park_doc(park)), ParkAction()) == park
    body = "<ParkAction><Parktime>5</Parktime></ParkAction>"
    assert ptz_xml.parse_park(doc(body, "ParkAction"), park) == ParkAction(True, 5, "patrol", 8)


@pytest.mark.parametrize(
    ("inner", "words"),
    [
        ("<Parktime>4</Parktime>", "<Parktime> 4"),
        ("<Parktime>721</Parktime>", "<Parktime> 721"),
        ("<Action><ActionType>autoscan</ActionType></Action>", "<ActionType> 'autoscan'"),
        (
            "<Action><ActionType>pattern</ActionType><ActionNum>5</ActionNum></Action>",
            "pattern is 1..4",
        ),
        ("<Action><ActionNum>0</ActionNum></Action>", "<Action/ActionNum>"),
    ],
)
def test_the_park_action_refuses(inner: str, words: str) -> None:
    body = f"<ParkAction>{inner}</ParkAction>"
    refused(
        lambda: ptz_xml.parse_park(doc(body, "ParkAction"), ParkAction()), "badParameters", words
    )


def test_the_lock_is_seconds_and_unlocks_with_enabled_false() -> None:
    assert ptz_xml.parse_lock(shown("PTZLockCfg", ptz_xml.lock_doc(30))) == 30
    assert ptz_xml.parse_lock(shown("PTZLockCfg", ptz_xml.lock_doc(0))) == 0
    body = "<PTZLockCfg><enabled>true</enabled></PTZLockCfg>"
    refused(lambda: ptz_xml.parse_lock(doc(body, "PTZLockCfg")), "badXmlContent", "<lockTime>")
    for seconds in (0, 3601):
        body = f"<PTZLockCfg><enabled>true</enabled><lockTime>{seconds}</lockTime></PTZLockCfg>"
        with pytest.raises(IsapiError, match=f"<lockTime> {seconds} is out of range 1..3600"):
            ptz_xml.parse_lock(doc(body, "PTZLockCfg"))


def test_the_status_is_absolute_high_with_its_source() -> None:
    status = PtzStatus(PtzPosition(1800, 300, 40), "estimated", "patrol", 0)
    root = ET.fromstring(render("PTZStatus", ptz_xml.status_doc(status)))
    ns = f"{{{NAMESPACE}}}"
    assert root.findtext(f"{ns}AbsoluteHigh/{ns}azimuth") == "1800"
    assert root.findtext(f"{ns}AbsoluteHigh/{ns}elevation") == "300"
    assert root.findtext(f"{ns}AbsoluteHigh/{ns}absoluteZoom") == "40"
    assert root.findtext(f"{ns}positionSource") == "estimated"
    assert root.findtext(f"{ns}activity") == "patrol"


def test_the_capabilities_use_hikvisions_spelling_and_the_limits_of_the_settings() -> None:
    root = ET.fromstring(render("PTZChanelCap", ptz_xml.capabilities_doc("pelco-d")))
    ns = f"{{{NAMESPACE}}}"
    assert root.tag == f"{ns}PTZChanelCap"
    space = f"{ns}ContinuousPanTiltSpace/{ns}XRange/"
    assert (root.findtext(space + f"{ns}min"), root.findtext(space + f"{ns}max")) == ("-100", "100")
    assert root.findtext(f"{ns}maxPresetNum") == "255"
    assert root.findtext(f"{ns}maxPatrolNum") == "8"
    assert root.findtext(f"{ns}maxPatternNum") == "4"
    protocol = root.find(f"{ns}controlProtocol")
    assert protocol is not None
    assert (protocol.text, protocol.get("opt")) == ("PELCO-D", "PELCO-D,PELCO-P")
