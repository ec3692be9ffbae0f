"""Detection settings over ISAPI on a real vigild: motion (grid and expert areas), its grid
layout and capabilities, tampering, video loss, defocus and scene change, read and written by
`hikvisionapi` and by requests with Digest; refused documents change nothing."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hikvisionapi import Client

from tests.isapi_xml import NS, bad, corners, put_ok, refusal, refused_documents_test, text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild

CHANNEL = "/ISAPI/System/Video/inputs/channels/1"
MOTION = f"{CHANNEL}/motionDetection"
GRID_LAYOUT = f"{MOTION}/layout/gridLayout"
TAMPER = f"{CHANNEL}/tamperDetection"
VIDEO_LOSS = f"{CHANNEL}/videoLoss"
DEFOCUS = "/ISAPI/Smart/DefocusDetection/1"
SCENE_CHANGE = "/ISAPI/Smart/SceneChangeDetection/1"
DOCUMENTS = (MOTION, GRID_LAYOUT, TAMPER, VIDEO_LOSS, DEFOCUS, SCENE_CHANGE)
FULL_MAP = "fffffc" * 18
BOTTOM_HALF_MAP = "000000" * 9 + "fffffc" * 9
LEVEL = "<sensitivityLevel>{}</sensitivityLevel>"


@pytest.fixture(scope="module")
def camera(module_device: Vigild) -> Vigild:
    return module_device  # conftest: one activated device for the module


def saved_detection(camera: Vigild) -> dict[str, Any]:
    config = tomllib.loads((camera.data_dir / "config.toml").read_text())
    return config["events"]["detection"][0]


def region(number: int, coordinates: str, extra: str = "", enabled: str = "true") -> str:
    return (
        f"<MotionDetectionRegion><id>{number}</id><enabled>{enabled}</enabled>{extra}"
        f"{coordinates}</MotionDetectionRegion>"
    )


def motion(inner: str) -> str:
    return f'<MotionDetection xmlns="{NS[1:-1]}">{inner}</MotionDetection>'


def regions(*items: str) -> str:
    return motion(f"<MotionDetectionRegionList>{''.join(items)}</MotionDetectionRegionList>")


def region_corners(element: ET.Element) -> list[tuple[int, int]]:
    return [
        (int(text(c, "positionX")), int(text(c, "positionY")))
        for c in element.iter(f"{NS}RegionCoordinates")
    ]


# -- round trips -------------------------------------------------------------------------------
def test_grid_round_trip_with_hikvisionapi(camera: Vigild) -> None:
    api = Client(camera.url, "admin", ADMIN_PASSWORD, timeout=10)
    motion_api = api.System.Video.inputs.channels[1].motionDetection
    put_ok(camera, MOTION, motion(f"<regionType>grid</regionType>{layout(50, FULL_MAP)}"))
    doc = motion_api(method="get")["MotionDetection"]
    assert doc["regionType"] == "grid"
    assert doc["Grid"] == {"rowGranularity": "18", "columnGranularity": "22"}
    assert doc["MotionDetectionLayout"]["layout"]["gridMap"] == FULL_MAP

    # The usual client: GET the document, change what it wants, PUT it all back.
    sent = motion_api(method="get", present="text")
    sent = sent.replace("<enabled>false</enabled>", "<enabled>true</enabled>", 1)
    sent = re.sub(r"<sensitivityLevel>\d+<", "<sensitivityLevel>80<", sent, count=1)
    sent = sent.replace(FULL_MAP, BOTTOM_HALF_MAP)
    assert motion_api(method="put", data=sent)["ResponseStatus"]["statusCode"] == "1"

    doc = motion_api(method="get")["MotionDetection"]
    assert doc["enabled"] == "true"
    assert doc["MotionDetectionLayout"]["sensitivityLevel"] == "80"
    assert doc["MotionDetectionLayout"]["layout"]["gridMap"] == BOTTOM_HALF_MAP
    saved = saved_detection(camera)["motion"]
    assert saved["grid"] == ["0" * 22] * 9 + ["1" * 22] * 9  # rows from the top
    assert (saved["mode"], saved["sensitivity"], saved["enabled"]) == ("grid", 80, True)


def layout(sensitivity: int, grid_map: str) -> str:
    return (
        f"<MotionDetectionLayout><sensitivityLevel>{sensitivity}</sensitivityLevel>"
        f"<layout><gridMap>{grid_map}</gridMap></layout></MotionDetectionLayout>"
    )


def test_expert_areas_from_the_bottom_left(camera: Vigild) -> None:
    put_ok(camera, MOTION, motion(f"<regionType>grid</regionType>{layout(60, BOTTOM_HALF_MAP)}"))
    levels = (
        "<sensitivityLevel>70</sensitivityLevel><detectionThreshold>10</detectionThreshold>"
        "<nightSensitivityLevel>90</nightSensitivityLevel>"
        "<nightDetectionThreshold>3</nightDetectionThreshold>"
    )
    body = motion(
        "<enabled>true</enabled><regionType>roi</regionType>"
        "<normalizedScreenSize><normalizedScreenWidth>1000</normalizedScreenWidth>"
        "<normalizedScreenHeight>1000</normalizedScreenHeight></normalizedScreenSize>"
        "<MotionDetectionRegionList>"
        + region(1, corners(100, 600, 400, 800), levels)
        + region(2, corners(0, 0, 0, 0), enabled="false")  # clients send unused ones like this
        + region(3, corners(500, 0, 1000, 250), "<sensitivityLevel>0</sensitivityLevel>")
        + "</MotionDetectionRegionList>"
        "<MotionDetectionSwitch><type>schedule</type><Schedule><scheduleType>day</scheduleType>"
        "<TimeRange><beginTime>07:00:00</beginTime><endTime>19:30:00</endTime></TimeRange>"
        "</Schedule></MotionDetectionSwitch>"
        "<samplingInterval>2</samplingInterval><startTriggerTime>500</startTriggerTime>"
    )
    put_ok(camera, MOTION, body)

    doc = xml(camera.get(MOTION))
    assert text(doc, "regionType") == "roi"
    shown = doc.findall(f"{NS}MotionDetectionRegionList/{NS}MotionDetectionRegion")
    assert [text(r, "id") for r in shown] == ["1", "3"]
    assert region_corners(shown[0]) == [(100, 800), (400, 800), (400, 600), (100, 600)]
    assert region_corners(shown[1]) == [(500, 250), (1000, 250), (1000, 0), (500, 0)]
    assert [text(shown[0], t) for t in ("sensitivityLevel", "detectionThreshold")] == ["70", "10"]
    assert text(shown[0], "nightSensitivityLevel") == "90"
    assert text(doc, "MotionDetectionSwitch/type") == "schedule"
    assert text(doc, "MotionDetectionSwitch/Schedule/TimeRange/endTime") == "19:30:00"
    # The grid is kept while the areas are in force.
    assert text(doc, "MotionDetectionLayout/layout/gridMap") == BOTTOM_HALF_MAP

    saved = saved_detection(camera)["motion"]
    assert saved["mode"] == "expert" and saved["day_night"] == "schedule"
    assert (saved["day_start"], saved["night_start"]) == ("07:00", "19:30")
    first, third = saved["areas"]
    assert first["area"] == {"x": 100, "y": 200, "width": 300, "height": 200}  # top left origin
    assert (first["sensitivity"], first["proportion"], first["night_proportion"]) == (70, 10, 3)
    assert third["area"] == {"x": 500, "y": 750, "width": 500, "height": 250}
    assert third["sensitivity"] == 0

    # Back to the grid: the areas stay for next time; a region left without levels keeps them.
    put_ok(camera, MOTION, motion("<regionType>grid</regionType>"))
    put_ok(camera, MOTION, regions(region(1, corners(0, 0, 500, 500))))
    saved = saved_detection(camera)["motion"]
    assert saved["mode"] == "grid" and len(saved["areas"]) == 1
    assert saved["areas"][0]["sensitivity"] == 70
    assert saved["areas"][0]["area"] == {"x": 0, "y": 500, "width": 500, "height": 500}


def test_grid_layout_alone(camera: Vigild) -> None:
    put_ok(camera, MOTION, motion("<regionType>roi</regionType>"))
    checker = "aaaaa8555554" * 9
    put_ok(
        camera,
        GRID_LAYOUT,
        "<MotionDetectionGridLayout><sensitivityLevel>35</sensitivityLevel>"
        f"<layout><gridMap>{checker}</gridMap></layout></MotionDetectionGridLayout>",
    )
    shown = xml(camera.get(GRID_LAYOUT))
    assert shown.tag == f"{NS}MotionDetectionGridLayout"
    assert (text(shown, "sensitivityLevel"), text(shown, "layout/gridMap")) == ("35", checker)
    doc = xml(camera.get(MOTION))
    assert text(doc, "MotionDetectionLayout/layout/gridMap") == checker
    assert text(doc, "regionType") == "roi"  # the grid alone does not switch the mode
    assert saved_detection(camera)["motion"]["grid"][:2] == ["10" * 11, "01" * 11]

    # The other spelling clients use: the layout nested, gridMap right in it.
    put_ok(
        camera,
        GRID_LAYOUT,
        "<MotionDetectionGridLayout><MotionDetectionLayout><sensitivityLevel>60</sensitivityLevel>"
        f"<gridMap>{FULL_MAP}</gridMap></MotionDetectionLayout></MotionDetectionGridLayout>",
    )
    assert text(xml(camera.get(GRID_LAYOUT)), "layout/gridMap") == FULL_MAP


def test_tamper_video_loss_defocus_and_scene_change(camera: Vigild) -> None:
    put_ok(
        camera,
        TAMPER,
        "<TamperDetection><id>1</id><enabled>true</enabled><TamperDetectionRegionList>"
        "<TamperDetectionRegion><id>1</id><enabled>true</enabled>"
        f"<sensitivityLevel>65</sensitivityLevel>{corners(0, 500, 1000, 1000)}"
        "</TamperDetectionRegion></TamperDetectionRegionList></TamperDetection>",
    )
    doc = xml(camera.get(TAMPER))
    assert text(doc, "enabled") == "true"
    shown = doc.find(f"{NS}TamperDetectionRegionList/{NS}TamperDetectionRegion")
    assert shown is not None and text(shown, "sensitivityLevel") == "65"
    assert region_corners(shown) == [(0, 1000), (1000, 1000), (1000, 500), (0, 500)]

    put_ok(
        camera,
        VIDEO_LOSS,
        "<VideoLoss><enabled>true</enabled><timeoutSeconds>7</timeoutSeconds></VideoLoss>",
    )
    # Home Assistant's integration sends the switch alone: the timeout stays.
    put_ok(camera, VIDEO_LOSS, "<VideoLoss><enabled>false</enabled></VideoLoss>")
    doc = xml(camera.get(VIDEO_LOSS))
    assert (text(doc, "enabled"), text(doc, "timeoutSeconds")) == ("false", "7")

    for path, root in ((DEFOCUS, "DefocusDetection"), (SCENE_CHANGE, "SceneChangeDetection")):
        put_ok(
            camera,
            path,
            f"<{root}><id>1</id><enabled>true</enabled>{LEVEL.format(25)}</{root}>",
        )
        doc = xml(camera.get(path))
        assert [text(doc, t) for t in ("id", "enabled", "sensitivityLevel")] == ["1", "true", "25"]

    saved = saved_detection(camera)
    assert saved["tamper"] == {
        "enabled": True,
        "sensitivity": 65,
        "area": {"x": 0, "y": 0, "width": 1000, "height": 500},
    }
    assert saved["video_loss"] == {"enabled": False, "timeout_s": 7}
    assert saved["defocus"] == saved["scene_change"] == {"enabled": True, "sensitivity": 25}


def test_capabilities_and_unknown_channels(camera: Vigild) -> None:
    caps = xml(camera.get(f"{MOTION}/capabilities"))
    level = caps.find(f"{NS}MotionDetectionLayout/{NS}sensitivityLevel")
    assert level is not None and (level.get("min"), level.get("max")) == ("0", "100")
    areas = caps.find(f"{NS}MotionDetectionRegionList")
    assert areas is not None and areas.get("size") == "8"
    assert caps.find(f"{NS}regionType") is not None
    assert caps.find(f"{NS}regionType").get("opt") == "grid,roi"  # type: ignore[union-attr]

    for path in (
        "/ISAPI/System/Video/inputs/channels/2/motionDetection",
        "/ISAPI/System/Video/inputs/channels/x/tamperDetection",
        "/ISAPI/System/Video/inputs/channels/0/videoLoss",
        "/ISAPI/Smart/DefocusDetection/2",
        "/ISAPI/Smart/SceneChangeDetection/99",
    ):
        reply = camera.get(path)
        assert (reply.status_code, refusal(reply)[1]) == (404, "notSupport"), path
        reply = camera.put(path, "<VideoLoss><enabled>true</enabled></VideoLoss>")
        assert reply.status_code == 404, path


def test_settings_survive_a_restart(camera: Vigild) -> None:
    put_ok(camera, MOTION, regions(region(4, corners(200, 200, 300, 300))))
    put_ok(
        camera,
        DEFOCUS,
        "<DefocusDetection><sensitivityLevel>77</sensitivityLevel></DefocusDetection>",
    )
    before = [camera.get(path).content for path in DOCUMENTS]
    camera.stop()
    camera.start()
    assert [camera.get(path).content for path in DOCUMENTS] == before
    assert text(xml(camera.get(DEFOCUS)), "sensitivityLevel") == "77"


# -- refused documents -------------------------------------------------------------------------
SQUARE = corners(100, 100, 300, 300)
NINE = "".join(region(i, corners(i * 100, 0, i * 100 + 50, 50)) for i in range(1, 10))
TRAPEZIUM = SQUARE.replace(
    "<positionX>300</positionX><positionY>100", "<positionX>350</positionX><positionY>100"
)
SCREEN_704 = (
    "<normalizedScreenSize><normalizedScreenWidth>704</normalizedScreenWidth>"
    "<normalizedScreenHeight>576</normalizedScreenHeight></normalizedScreenSize>"
)


def grid_layout(inner: str) -> str:
    return f"<MotionDetectionGridLayout>{inner}</MotionDetectionGridLayout>"


def switch(inner: str) -> str:
    return motion(f"<MotionDetectionSwitch>{inner}</MotionDetectionSwitch>")


def tamper(*items: str) -> str:
    listed = "".join(f"<TamperDetectionRegion>{item}</TamperDetectionRegion>" for item in items)
    listed = f"<TamperDetectionRegionList>{listed}</TamperDetectionRegionList>"
    return f"<TamperDetection>{listed}</TamperDetection>"


BAD = [
    bad("not XML", MOTION, "<MotionDetection><enabled>true", "badXmlFormat", "not well-formed"),
    bad("wrong root", MOTION, "<TamperDetection/>", "badXmlContent", "MotionDetection"),
    bad("unknown element", MOTION, motion("<magic>1</magic>"), "badXmlContent", "magic"),
    bad(
        "sensitivity 101",
        MOTION,
        motion(layout(101, FULL_MAP)),
        "badParameters",
        "sensitivityLevel",
    ),
    bad(
        "sensitivity -1",
        GRID_LAYOUT,
        grid_layout(LEVEL.format(-1)),
        "badParameters",
        "below the minimum",
    ),
    bad(
        "sensitivity high",
        GRID_LAYOUT,
        grid_layout(LEVEL.format("high")),
        "badXmlContent",
        "integer",
    ),
    bad("short grid map", MOTION, motion(layout(50, FULL_MAP[:-6])), "badParameters", "gridMap"),
    bad("grid map not hex", MOTION, motion(layout(50, "zz" * 54)), "badParameters", "gridMap"),
    bad(
        "16 grid rows",
        MOTION,
        motion("<Grid><rowGranularity>16</rowGranularity></Grid>"),
        "badParameters",
        "18 rows",
    ),
    bad(
        "region type",
        MOTION,
        motion("<regionType>polygon</regionType>"),
        "badParameters",
        "regionType",
    ),
    bad("9 rectangles", MOTION, regions(NINE), "badParameters", "at most 8"),
    bad(
        "area past the right",
        MOTION,
        regions(region(1, corners(900, 0, 1001, 100))),
        "badParameters",
        "outside the picture",
    ),
    bad(
        "area below the bottom",
        MOTION,
        regions(region(1, corners(0, -50, 100, 100))),
        "badParameters",
        "outside the picture",
    ),
    bad("not a rectangle", MOTION, regions(region(1, TRAPEZIUM)), "badParameters", "rectangle"),
    bad(
        "no height",
        MOTION,
        regions(region(1, corners(100, 300, 300, 300))),
        "badParameters",
        "rectangle",
    ),
    bad(
        "area sensitivity 101",
        MOTION,
        regions(region(1, SQUARE, LEVEL.format(101))),
        "badParameters",
        "MotionDetectionRegion 1/sensitivityLevel",
    ),
    bad(
        "proportion 0",
        MOTION,
        regions(region(1, SQUARE, "<detectionThreshold>0</detectionThreshold>")),
        "badParameters",
        "detectionThreshold",
    ),
    bad(
        "night sensitivity 101",
        MOTION,
        regions(region(2, SQUARE, "<nightSensitivityLevel>101</nightSensitivityLevel>")),
        "badParameters",
        "nightSensitivityLevel",
    ),
    bad("area id 9", MOTION, regions(region(9, SQUARE)), "badParameters", "maximum 8"),
    bad(
        "area ids twice",
        MOTION,
        regions(region(1, SQUARE), region(1, SQUARE)),
        "badParameters",
        "unique",
    ),
    bad(
        "area without corners",
        MOTION,
        regions(region(8, "")),
        "badXmlContent",
        "RegionCoordinatesList",
    ),
    bad("screen 704x576", MOTION, motion(SCREEN_704), "badParameters", "1000x1000"),
    bad(
        "automatic day/night",
        MOTION,
        switch("<type>auto</type>"),
        "badParameters",
        "off or schedule",
    ),
    bad(
        "day starts at 25:00",
        MOTION,
        switch("<Schedule><TimeRange><beginTime>25:00:00</beginTime></TimeRange></Schedule>"),
        "badParameters",
        "beginTime",
    ),
    bad("two tamper areas", TAMPER, tamper(SQUARE, SQUARE), "badParameters", "one area"),
    bad(
        "tamper sensitivity 101",
        TAMPER,
        tamper(LEVEL.format(101)),
        "badParameters",
        "sensitivityLevel",
    ),
    bad(
        "tamper area outside", TAMPER, tamper(corners(0, 0, 1000, 1200)), "badParameters", "outside"
    ),
    bad(
        "video loss after 0 s",
        VIDEO_LOSS,
        "<VideoLoss><timeoutSeconds>0</timeoutSeconds></VideoLoss>",
        "badParameters",
        "timeoutSeconds",
    ),
    bad(
        "video loss after 61 s",
        VIDEO_LOSS,
        "<VideoLoss><timeoutSeconds>61</timeoutSeconds></VideoLoss>",
        "badParameters",
        "timeoutSeconds",
    ),
    bad(
        "video loss enabled yes",
        VIDEO_LOSS,
        "<VideoLoss><enabled>yes</enabled></VideoLoss>",
        "badXmlContent",
        "true or false",
    ),
    bad("motion of channel 2", MOTION, motion("<id>2</id>"), "badParameters", "<id>"),
    bad(
        "defocus of channel 2",
        DEFOCUS,
        "<DefocusDetection><id>2</id></DefocusDetection>",
        "badParameters",
        "<id>",
    ),
    bad(
        "scene change 101",
        SCENE_CHANGE,
        f"<SceneChangeDetection>{LEVEL.format(101)}</SceneChangeDetection>",
        "badParameters",
        "sensitivityLevel",
    ),
]


test_refused_documents_change_nothing = refused_documents_test(BAD, DOCUMENTS)
