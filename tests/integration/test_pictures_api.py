"""Picture capture through a real vigild: the capture settings over ISAPI (Hikvision's
`Snapshot/channels`, refused changes change nothing), and, with the simulated card formatted
over ISAPI, timed capture enabled over ISAPI writes JPEGs that are fetched by their Hikvision
picture URL with Digest auth and decode (PyAV)."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import av
import requests

from tests.integration.test_storage import format_card, wait_for
from tests.vigild import Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
SNAPSHOT = "/ISAPI/Snapshot/channels/1"
NAME = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}_01_\d{17}_TIMING\.jpg")


def settings(device: Vigild) -> dict[str, str]:
    """The SnapshotChannel flattened: {"timingCapture/compress/quality": "80", ...}."""
    reply = device.get(SNAPSHOT)
    assert reply.status_code == 200, reply.text
    flat: dict[str, str] = {}

    def walk(element: ET.Element, prefix: str) -> None:
        for child in element:
            path = prefix + child.tag.removeprefix(NS)
            if len(child):
                walk(child, path + "/")
            else:
                flat[path] = child.text or ""

    walk(ET.fromstring(reply.content), "")
    return flat


def snapshot_channel(timing: str = "", event: str = "", extra: str = "") -> str:
    return (
        '<SnapshotChannel xmlns="http://www.hikvision.com/ver20/XMLSchema" version="2.0">'
        f"<id>1</id><videoInputChannelID>1</videoInputChannelID>{extra}"
        f"{f'<timingCapture>{timing}</timingCapture>' if timing else ''}"
        f"{f'<eventCapture>{event}</eventCapture>' if event else ''}"
        "</SnapshotChannel>"
    )


def test_capture_settings_round_trip_and_bad_ones_change_nothing(device: Vigild) -> None:
    before = settings(device)
    assert before["timingCapture/enabled"] == "false"
    assert before["timingCapture/compress/captureInterval"] == "60000"
    assert before["eventCapture/compress/captureNumber"] == "1"
    assert (
        before["timingCapture/compress/pictureWidth"],
        before["eventCapture/supportSchedule"],
    ) == (
        before["eventCapture/compress/pictureWidth"],
        "false",
    )
    # What a Hikvision client sends (the Go client's payload shape), changed.
    body = snapshot_channel(
        "<enabled>true</enabled><supportSchedule>true</supportSchedule><compress>"
        "<pictureCodecType>JPEG</pictureCodecType><quality>70</quality>"
        "<captureInterval>5000</captureInterval><captureNumber>0</captureNumber></compress>",
        "<enabled>true</enabled><compress><quality>70</quality>"
        "<captureInterval>500</captureInterval><captureNumber>4</captureNumber></compress>",
    )
    reply = device.put(SNAPSHOT, body)
    assert reply.status_code == 200, reply.text
    after = settings(device)
    assert after["timingCapture/enabled"] == after["eventCapture/enabled"] == "true"
    assert after["timingCapture/compress/captureInterval"] == "5000"
    assert after["eventCapture/compress/captureInterval"] == "500"
    assert after["eventCapture/compress/captureNumber"] == "4"
    assert after["timingCapture/compress/quality"] == after["eventCapture/compress/quality"] == "70"

    bad = {
        "whole seconds": snapshot_channel(
            "<compress><captureInterval>1500</captureInterval></compress>"
        ),
        "too many": snapshot_channel("", "<compress><captureNumber>11</captureNumber></compress>"),
        "too fast": snapshot_channel(
            "", "<compress><captureInterval>50</captureInterval></compress>"
        ),
        "quality": snapshot_channel("<compress><quality>0</quality></compress>"),
        "two qualities": snapshot_channel(
            "<compress><quality>50</quality></compress>",
            "<compress><quality>60</quality></compress>",
        ),
        "bmp": snapshot_channel("<compress><pictureCodecType>BMP</pictureCodecType></compress>"),
        "no such size": snapshot_channel(
            "<compress><pictureWidth>123</pictureWidth><pictureHeight>45</pictureHeight></compress>"
        ),
        "unknown element": snapshot_channel("<enabled>false</enabled><burst>3</burst>"),
        "not a boolean": snapshot_channel("<enabled>maybe</enabled>"),
        "other channel": snapshot_channel(extra="").replace("<id>1</id>", "<id>2</id>"),
    }
    for what, body in bad.items():
        reply = device.put(SNAPSHOT, body)
        assert reply.status_code == 400, (what, reply.text)
    assert device.put("/ISAPI/Snapshot/channels/2", snapshot_channel()).status_code == 404
    assert settings(device) == after
    listing = ET.fromstring(device.get("/ISAPI/Snapshot/channels").content)
    assert [c.findtext(f"{NS}id") for c in listing] == ["1"]


def test_timed_pictures_are_fetched_by_their_url(device: Vigild) -> None:
    format_card(device)
    current = settings(device)
    width = int(current["timingCapture/compress/pictureWidth"])
    height = int(current["timingCapture/compress/pictureHeight"])
    body = snapshot_channel(
        "<enabled>true</enabled><compress><captureInterval>1000</captureInterval></compress>"
    )
    assert device.put(SNAPSHOT, body).status_code == 200
    pictures = device.data_dir / "card" / "picture" / "01"

    def taken() -> list[Path]:
        return sorted(pictures.glob("*/*.jpg")) if pictures.is_dir() else []

    wait_for(lambda: len(taken()) >= 3, "three timed pictures", timeout=30)
    path = taken()[-1]
    assert NAME.fullmatch(path.name), path.name
    size = path.stat().st_size
    url = f"{device.url}/picture/Streaming/tracks/103/?name={path.name}&size={size}"

    reply = device.session().get(url, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "image/jpeg" and reply.content == path.read_bytes()
    with av.open(io.BytesIO(reply.content)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (width, height)

    assert requests.get(url, timeout=10).status_code == 401
    for wrong in (
        url.replace(f"size={size}", f"size={size + 1}"),
        url.replace("/tracks/103/", "/tracks/101/"),
        url.replace("/tracks/103/", "/tracks/203/"),
        url.replace(path.name, "../../record/index.sqlite3"),
        url.replace(path.name, path.name.replace("TIMING", "MOTION")),
    ):
        assert device.session().get(wrong, timeout=10).status_code == 404, wrong
