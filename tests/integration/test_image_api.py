"""The OSD and privacy masks over ISAPI on a real vigild: the channel name, `VideoOverlay` and
`PrivacyMask` read and written by `hikvisionapi` and by requests with Digest, positions turned
from Hikvision's 704x576 bottom-left screen into the thousandths `config.toml` keeps, a mask
seen black in the device's own JPEG snapshot and gone once disabled, and refused documents
that change nothing."""

from __future__ import annotations

import re
import time
import tomllib
from typing import Any

import av
import numpy as np
import pytest
from hikvisionapi import Client

from tests.integration.test_users import add_user
from tests.isapi_xml import NS, bad, corners, put_ok, refusal, refused_documents_test, text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.config.events import Area
from vigil.media.osd import mask_rect

CHANNEL = "/ISAPI/System/Video/inputs/channels/1"
OVERLAYS = f"{CHANNEL}/overlays"
MASK = f"{CHANNEL}/privacyMask"
SNAPSHOT = "/ISAPI/Streaming/channels/101/picture"
DOCUMENTS = (CHANNEL, OVERLAYS, MASK)
HIK = f' xmlns="{NS[1:-1]}"'


@pytest.fixture(scope="module")
def camera(module_device: Vigild) -> Vigild:
    return module_device  # conftest: one activated device for the module


def saved_image(camera: Vigild) -> dict[str, Any]:
    config = tomllib.loads((camera.data_dir / "config.toml").read_text())
    return config["image"]["channels"][0]


def mask(enabled: str, *regions: str) -> str:
    listed = "".join(f"<PrivacyMaskRegion>{r}</PrivacyMaskRegion>" for r in regions)
    return (
        f"<PrivacyMask{HIK}><enabled>{enabled}</enabled>"
        f"<PrivacyMaskRegionList>{listed}</PrivacyMaskRegionList></PrivacyMask>"
    )


def region(number: int, coordinates: str, enabled: str = "true") -> str:
    return f"<id>{number}</id><enabled>{enabled}</enabled>{coordinates}<maskType>black</maskType>"


def overlay(inner: str) -> str:
    return f"<VideoOverlay{HIK}>{inner}</VideoOverlay>"


def text_line(number: int, words: str, x: int = 10, y: int = 500) -> str:
    return (
        f"<TextOverlay><id>{number}</id><enabled>true</enabled><positionX>{x}</positionX>"
        f"<positionY>{y}</positionY><displayText>{words}</displayText></TextOverlay>"
    )


def texts(*lines: str) -> str:
    return overlay(f"<TextOverlayList>{''.join(lines)}</TextOverlayList>")


# -- round trips -------------------------------------------------------------------------------
def test_overlays_round_trip_with_hikvisionapi(camera: Vigild) -> None:
    api = Client(camera.url, "admin", ADMIN_PASSWORD, timeout=10)
    overlays = api.System.Video.inputs.channels[1].overlays
    doc = overlays(method="get")["VideoOverlay"]
    assert doc["normalizedScreenSize"] == {
        "normalizedScreenWidth": "704",
        "normalizedScreenHeight": "576",
    }
    # The shipped name at (760, 920) thousandths from the top left: 535, 576 - 530 = 46.
    assert doc["channelNameOverlay"] == {"enabled": "true", "positionX": "535", "positionY": "46"}
    assert doc["DateTimeOverlay"]["dateStyle"] == "YYYY-MM-DD"

    # The usual client: GET the document, change what it wants, PUT it all back.
    sent = overlays(method="get", present="text")
    sent = sent.replace("<fontSize>auto</fontSize>", "<fontSize>48*48</fontSize>")
    sent = sent.replace("<displayWeek>false</displayWeek>", "<displayWeek>true</displayWeek>")
    listed = f"<TextOverlayList>{text_line(3, 'Gate 3', 352, 288)}</TextOverlayList>"
    sent = re.sub(r"<TextOverlayList[^>]*/>", listed, sent)
    assert "Gate 3" in sent
    assert overlays(method="put", data=sent)["ResponseStatus"]["statusCode"] == "1"

    doc = overlays(method="get")["VideoOverlay"]
    assert doc["fontSize"] == "48*48"
    assert doc["DateTimeOverlay"]["displayWeek"] == "true"
    line = doc["TextOverlayList"]["TextOverlay"]
    assert (line["id"], line["displayText"], line["positionX"], line["positionY"]) == (
        "3",
        "Gate 3",
        "352",
        "288",
    )
    osd = saved_image(camera)["osd"]
    assert osd["font_size"] == "large"
    assert osd["date_time"]["show_week"] is True
    assert osd["texts"] == [{"id": 3, "enabled": True, "text": "Gate 3", "x": 500, "y": 500}]


def test_positions_are_kept_in_thousandths_from_the_top_left(camera: Vigild) -> None:
    body = overlay(
        "<TextOverlayList>"
        + text_line(1, "top left", 0, 576)
        + text_line(2, "edge", 704, 0)
        + "</TextOverlayList>"
        "<DateTimeOverlay><enabled>false</enabled><positionX>176</positionX>"
        "<positionY>144</positionY><dateStyle>DD/MM/YYYY</dateStyle>"
        "<timeStyle>12hour</timeStyle></DateTimeOverlay>"
        "<channelNameOverlay><positionX>1</positionX><positionY>575</positionY>"
        "</channelNameOverlay>"
        "<attribute><transparent>false</transparent><flashing>false</flashing></attribute>"
        "<frontColorMode>auto</frontColorMode><alignment>customize</alignment>"
    )
    put_ok(camera, OVERLAYS, body)
    osd = saved_image(camera)["osd"]
    assert [(t["x"], t["y"]) for t in osd["texts"]] == [(0, 0), (999, 999)]
    date_time = osd["date_time"]
    assert (date_time["x"], date_time["y"], date_time["enabled"]) == (250, 750, False)
    assert (date_time["date_format"], date_time["time_format"]) == ("DD/MM/YYYY", "12hour")
    assert (osd["name"]["x"], osd["name"]["y"]) == (1, 2)  # 1.42 and 1.74 thousandths
    doc = xml(camera.get(OVERLAYS))
    shown = [(text(t, "positionX"), text(t, "positionY")) for t in doc.iter(f"{NS}TextOverlay")]
    assert shown == [("0", "576"), ("703", "1")]  # the edge itself is kept just inside
    assert text(doc, "DateTimeOverlay/positionY") == "144"
    assert text(doc, "channelNameOverlay/positionY") == "575"


def test_the_channel_name_is_the_osd_name(camera: Vigild) -> None:
    api = Client(camera.url, "admin", ADMIN_PASSWORD, timeout=10)
    channel = api.System.Video.inputs.channels[1]
    assert channel(method="get")["VideoInputChannel"]["inputPort"] == "1"
    body = f"<VideoInputChannel{HIK}><id>1</id><inputPort>1</inputPort><name>Gate East</name>"
    put_ok(camera, CHANNEL, body + "</VideoInputChannel>")
    assert channel(method="get")["VideoInputChannel"]["name"] == "Gate East"
    assert saved_image(camera)["osd"]["channel_name"] == "Gate East"


def test_a_mask_sent_in_the_screen_is_saved_in_thousandths(camera: Vigild) -> None:
    put_ok(
        camera,
        MASK,
        mask(
            "false",
            region(2, corners(0, 0, 704, 576)),
            region(1, corners(176, 144, 528, 432)),
            region(5, corners(0, 0, 0, 0), enabled="false"),  # clients send unused ones so
        ),
    )
    saved = saved_image(camera)["privacy_mask"]
    assert saved["enabled"] is False
    assert saved["areas"] == [
        {"x": 250, "y": 250, "width": 500, "height": 500},
        {"x": 0, "y": 0, "width": 1000, "height": 1000},
    ]
    doc = xml(camera.get(MASK))
    listed = doc.findall(f"{NS}PrivacyMaskRegionList/{NS}PrivacyMaskRegion")
    assert [text(r, "id") for r in listed] == ["1", "2"]
    points = [
        (int(text(c, "positionX")), int(text(c, "positionY")))
        for c in listed[0].iter(f"{NS}RegionCoordinates")
    ]
    assert points == [(176, 432), (528, 432), (528, 144), (176, 144)]


# -- the effect --------------------------------------------------------------------------------
def snapshot_luma(camera: Vigild) -> np.ndarray[Any, np.dtype[np.uint8]]:
    reply = camera.get(SNAPSHOT)
    assert reply.status_code == 200
    picture = av.CodecContext.create("mjpeg", "r").decode(av.Packet(reply.content))[0]
    return picture.to_ndarray()[: picture.height]


def masked(camera: Vigild, area: Area) -> bool:
    y = snapshot_luma(camera)
    height, width = y.shape
    left, top, right, bottom = mask_rect(area, width, height)
    inside = y[top + 8 : bottom - 8, left + 8 : right - 8]  # a JPEG block off the edges
    return int(inside.max()) <= 12


def wait_for(condition: Any, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def test_a_mask_put_blacks_out_the_snapshot_until_disabled(camera: Vigild) -> None:
    area = Area(x=250, y=250, width=500, height=500)
    assert not masked(camera, area)  # the simulated scene is not black there
    put_ok(camera, MASK, mask("true", region(1, corners(176, 144, 528, 432))))
    assert wait_for(lambda: masked(camera, area))
    put_ok(camera, MASK, f"<PrivacyMask{HIK}><enabled>false</enabled></PrivacyMask>")
    assert wait_for(lambda: not masked(camera, area))
    assert len(saved_image(camera)["privacy_mask"]["areas"]) == 1  # kept, for enabling again


# -- refusals ----------------------------------------------------------------------------------
NINE = "".join(text_line(n, f"line {n}") for n in range(1, 10))
BAD = [
    bad("not XML", OVERLAYS, "<VideoOverlay><fontSize>auto", "badXmlFormat", "not well-formed"),
    bad("wrong root", MASK, overlay(""), "badXmlContent", "PrivacyMask"),
    bad("unknown element", OVERLAYS, overlay("<magic>1</magic>"), "badXmlContent", "magic"),
    bad("9 text lines", OVERLAYS, texts(NINE), "badParameters", "at most 8 lines"),
    bad("45 characters", OVERLAYS, texts(text_line(1, "x" * 45)), "badParameters", "displayText"),
    bad("not ASCII", OVERLAYS, texts(text_line(1, "café")), "badParameters", "displayText"),
    bad("a tab", OVERLAYS, texts(text_line(1, "a&#9;b")), "badParameters", "displayText"),
    bad("text id 9", OVERLAYS, texts(text_line(9, "nine")), "badParameters", "id"),
    bad(
        "text twice",
        OVERLAYS,
        texts(text_line(2, "a") + text_line(2, "b")),
        "badParameters",
        "unique",
    ),
    bad("text off screen", OVERLAYS, texts(text_line(1, "a", 10, 577)), "badParameters", "576"),
    bad("font", OVERLAYS, overlay("<fontSize>huge</fontSize>"), "badParameters", "fontSize"),
    bad(
        "flashing",
        OVERLAYS,
        overlay("<attribute><flashing>true</flashing></attribute>"),
        "badParameters",
        "flashing",
    ),
    bad(
        "date style",
        OVERLAYS,
        overlay("<DateTimeOverlay><dateStyle>YY</dateStyle></DateTimeOverlay>"),
        "badParameters",
        "dateStyle",
    ),
    bad(
        "half a position",
        OVERLAYS,
        overlay("<channelNameOverlay><positionX>5</positionX></channelNameOverlay>"),
        "badXmlContent",
        "positionY",
    ),
    bad(
        "1000x1000",
        MASK,
        "<PrivacyMask><normalizedScreenSize><normalizedScreenWidth>1000</normalizedScreenWidth>"
        "<normalizedScreenHeight>1000</normalizedScreenHeight></normalizedScreenSize>"
        "</PrivacyMask>",
        "badParameters",
        "704x576",
    ),
    bad(
        "outside",
        MASK,
        mask("true", region(1, corners(0, 0, 705, 100))),
        "badParameters",
        "outside",
    ),
    bad(
        "not a rectangle",
        MASK,
        mask(
            "true",
            "<id>1</id>"
            + corners(0, 0, 100, 100).replace(">100</positionX>", ">90</positionX>", 1),
        ),
        "badParameters",
        "rectangle",
    ),
    bad("region id 9", MASK, mask("true", region(9, corners(0, 0, 9, 9))), "badParameters", "id"),
    bad(
        "mosaic",
        MASK,
        mask("true", region(1, corners(0, 0, 9, 9)).replace(">black<", ">mosaic<")),
        "badParameters",
        "maskType",
    ),
    bad("no corners", MASK, mask("true", "<id>1</id>"), "badXmlContent", "RegionCoordinatesList"),
    bad("other channel", MASK, "<PrivacyMask><id>2</id></PrivacyMask>", "badParameters", "<id>"),
    bad(
        "long name",
        CHANNEL,
        f"<VideoInputChannel><name>{'n' * 33}</name></VideoInputChannel>",
        "badParameters",
        "name",
    ),
    bad(
        "other port",
        CHANNEL,
        "<VideoInputChannel><inputPort>2</inputPort></VideoInputChannel>",
        "badParameters",
        "inputPort",
    ),
]


test_refused_documents_change_nothing = refused_documents_test(BAD, DOCUMENTS)


@pytest.mark.parametrize("path", DOCUMENTS)
def test_an_unknown_channel_is_not_found(camera: Vigild, path: str) -> None:
    for channel in ("2", "x"):
        other = path.replace("channels/1", f"channels/{channel}")
        assert refusal(camera.get(other))[:2] == (404, "notSupport")
        assert refusal(camera.put(other, "<PrivacyMask/>"))[:2] == (404, "notSupport")


def test_a_viewer_reads_but_cannot_write(camera: Vigild) -> None:
    assert add_user(camera, "looker", "Viewer", "View-Pass-11").status_code == 200
    viewer = camera.session("looker", "View-Pass-11")
    config = camera.data_dir / "config.toml"
    before = config.read_bytes()
    for path in DOCUMENTS:
        shown = viewer.get(f"{camera.url}{path}", timeout=10)
        assert shown.status_code == 200
        denied = viewer.put(f"{camera.url}{path}", data=shown.content, timeout=10)
        assert refusal(denied)[:2] == (403, "noPermission")
    assert config.read_bytes() == before
