"""Image settings over ISAPI on a real vigild with the simulated sensor: the documents show only
what the sensor has (its vivid-like brightness, contrast, saturation, hue and flips), and what
is set changes the pictures ffmpeg decodes from the RTSP sub stream: brightness up raises the
mean luma, saturation 0 greys the chroma, the mirror swaps left and right. Values out of range
and settings the sensor lacks are refused and change nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from hikvisionapi import Client

from tests.integration.test_osd_streams import rtsp_yuv
from tests.isapi_xml import NS, bad, put_ok, refusal, refused_documents_test, text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.board.simcontrol import send

IMAGE = "/ISAPI/Image/channels/1"
COLOR = f"{IMAGE}/color"
FLIP = f"{IMAGE}/imageFlip"
SHARPNESS = f"{IMAGE}/sharpness"
DOCUMENTS = ("/ISAPI/Image/channels", IMAGE, f"{IMAGE}/capabilities", COLOR, SHARPNESS, FLIP)
HIK = f' xmlns="{NS[1:-1]}"'
SUB_W, SUB_H = 640, 360
# The sub stream's GOP is 2 s (15 fps, GOP 30) and a client starts at the newest keyframe, which
# can be older than a change: the picture compared is the one a GOP and a bit later, from a client
# started once the change had time to reach the encoder (longer on a loaded machine).
AFTER_CHANGE_S = 1.0
FRAMES_PAST_A_GOP = 33
# Rows of the picture the OSD (date at the top, channel name at the bottom) leaves alone.
ROWS = slice(SUB_H // 5, SUB_H * 4 // 5)


@pytest.fixture(scope="module")
def camera(module_device: Vigild) -> Iterator[Vigild]:
    """The module's device, its sensor looking at a still pattern; the defaults again after."""
    send(module_device.data_dir / "sim.sock", "scene", {"still": True})
    yield module_device
    send(module_device.data_dir / "sim.sock", "scene", {"still": False})


def color(brightness: int = 50, contrast: int = 50, saturation: int = 50, hue: int = 50) -> str:
    return (
        f"<Color{HIK}><brightnessLevel>{brightness}</brightnessLevel>"
        f"<contrastLevel>{contrast}</contrastLevel><saturationLevel>{saturation}</saturationLevel>"
        f"<hueLevel>{hue}</hueLevel></Color>"
    )


def flip(style: str | None) -> str:
    inner = (
        f"<enabled>true</enabled><ImageFlipStyle>{style}</ImageFlipStyle>"
        if style
        else ("<enabled>false</enabled>")
    )
    return f"<ImageFlip{HIK}>{inner}</ImageFlip>"


def rtsp_planes(device: Vigild) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U and V of one picture of the sub stream, as ffmpeg decodes it from RTSP, taken
    after the last change."""
    time.sleep(AFTER_CHANGE_S)
    raw = rtsp_yuv(device, 102, FRAMES_PAST_A_GOP)
    luma, chroma = SUB_W * SUB_H, (SUB_W // 2) * (SUB_H // 2)
    return (
        raw[:luma].reshape(SUB_H, SUB_W).astype(np.int16),
        raw[luma : luma + chroma].reshape(SUB_H // 2, SUB_W // 2).astype(np.int16),
        raw[luma + chroma : luma + 2 * chroma].reshape(SUB_H // 2, SUB_W // 2).astype(np.int16),
    )


# -- the documents --------------------------------------------------------------------------------
def test_the_channel_shows_only_what_the_simulated_sensor_has(camera: Vigild) -> None:
    channel = xml(camera.get(IMAGE))
    parts = [child.tag.removeprefix(NS) for child in channel]
    assert parts == ["id", "enabled", "videoInputID", "Color", "Sharpness", "ImageFlip",
                     "IrcutFilter"]  # fmt: skip
    assert [text(channel, f"Color/{t}Level") for t in ("brightness", "contrast", "saturation",
                                                       "hue")] == ["50"] * 4  # fmt: skip
    assert text(channel, "ImageFlip/enabled") == "false"
    assert text(xml(camera.get(SHARPNESS)), "SharpnessLevel") == "50"
    listed = xml(camera.get("/ISAPI/Image/channels"))
    assert [text(c, "id") for c in listed] == ["1"]
    capabilities = xml(camera.get(f"{IMAGE}/capabilities"))
    level = capabilities.find(f"{NS}Color/{NS}hueLevel")
    assert level is not None and level.attrib == {"min": "0", "max": "100"}
    style = capabilities.find(f"{NS}ImageFlip/{NS}ImageFlipStyle")
    assert style is not None and style.attrib["opt"] == "LEFTRIGHT,UPDOWN,CENTER"


@pytest.mark.parametrize("part", ["exposure", "shutter", "gain", "whiteBalance",
                                  "WDR", "BLC", "noiseReduce", "powerLineFrequency"])  # fmt: skip
def test_parts_the_sensor_lacks_are_not_there(camera: Vigild, part: str) -> None:
    assert refusal(camera.get(f"{IMAGE}/{part}"))[:2] == (404, "notSupport")
    assert refusal(camera.put(f"{IMAGE}/{part}", "<X/>"))[:2] == (404, "notSupport")


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        (IMAGE, f"<ImageChannel{HIK}><WDR><mode>open</mode></WDR></ImageChannel>", "<WDR>"),
        (
            IMAGE,
            f"<ImageChannel{HIK}><Exposure><ExposureType>manual</ExposureType></Exposure>"
            "</ImageChannel>",
            "<Exposure>",
        ),
        (
            IMAGE,
            f"<ImageChannel{HIK}><Color><brightnessLevel>80</brightnessLevel></Color>"
            "<powerLineFrequency><powerLineFrequencyMode>60hz</powerLineFrequencyMode>"
            "</powerLineFrequency></ImageChannel>",
            "powerLineFrequency",
        ),
    ],
    ids=["wdr", "exposure", "mains-with-a-good-brightness"],
)
def test_unsupported_settings_are_refused_and_change_nothing(
    camera: Vigild, path: str, body: str, words: str
) -> None:
    config = camera.data_dir / "config.toml"
    before = [camera.get(p).content for p in DOCUMENTS], config.read_bytes()
    code, sub, message = refusal(camera.put(path, body))
    assert (code, sub) == (403, "notSupport") and words in message, message
    assert ([camera.get(p).content for p in DOCUMENTS], config.read_bytes()) == before


test_refused_documents_change_nothing = refused_documents_test(
    [
        bad("brightness-101", COLOR, color(brightness=101), "badParameters", "brightnessLevel"),
        bad("hue-negative", COLOR, color(hue=-1), "badParameters", "hueLevel"),
        bad(
            "level-text",
            COLOR,
            f"<Color{HIK}><contrastLevel>high</contrastLevel></Color>",
            "badParameters",
            "contrastLevel",
        ),
        bad(
            "sharpness-101",
            SHARPNESS,
            f"<Sharpness{HIK}><SharpnessLevel>101</SharpnessLevel></Sharpness>",
            "badParameters",
            "SharpnessLevel",
        ),
        bad("flip-style", FLIP, flip("DIAGONAL"), "badParameters", "ImageFlipStyle"),
        bad(
            "unknown-element",
            COLOR,
            f"<Color{HIK}><gamma>2</gamma></Color>",
            "badXmlContent",
            "gamma",
        ),
        bad(
            "whole-out-of-range",
            IMAGE,
            f"<ImageChannel{HIK}><Color><saturationLevel>200</saturationLevel></Color>"
            "</ImageChannel>",
            "badParameters",
            "saturationLevel",
        ),
        bad(
            "ircut-with-good-color",
            IMAGE,
            f"<ImageChannel{HIK}>{color(brightness=70)}<IrcutFilter><IrcutFilterType>dusk"
            "</IrcutFilterType></IrcutFilter></ImageChannel>",
            "badParameters",
            "IrcutFilterType",
        ),
        bad(
            "other-channel",
            IMAGE,
            f"<ImageChannel{HIK}><id>2</id></ImageChannel>",
            "badParameters",
            "<id>",
        ),
    ],
    DOCUMENTS,
)


# -- the pictures -------------------------------------------------------------------------------
def test_image_settings_change_what_ffmpeg_decodes_from_rtsp(camera: Vigild) -> None:
    try:
        luma, u, v = rtsp_planes(camera)
        chroma_before = float(np.abs(u - 128).mean() + np.abs(v - 128).mean())
        assert chroma_before > 10  # testsrc2 is colourful

        put_ok(camera, COLOR, color(brightness=80))
        brighter, _, _ = rtsp_planes(camera)
        assert brighter.mean() > luma.mean() + 25, (brighter.mean(), luma.mean())

        put_ok(camera, COLOR, color(saturation=0))
        grey, grey_u, grey_v = rtsp_planes(camera)
        assert float(np.abs(grey_u - 128).mean() + np.abs(grey_v - 128).mean()) < 2
        assert abs(grey.mean() - luma.mean()) < 3  # the luma as it was

        put_ok(camera, FLIP, flip("LEFTRIGHT"))
        assert text(xml(camera.get(FLIP)), "ImageFlipStyle") == "LEFTRIGHT"
        mirrored, _, _ = rtsp_planes(camera)
        half = SUB_W // 2
        left, right = luma[ROWS, :half], luma[ROWS, half:]
        as_mirrored = float(np.abs(mirrored[ROWS, :half] - right[:, ::-1]).mean())
        as_before = float(np.abs(mirrored[ROWS, :half] - left).mean())
        assert as_mirrored < 6 and as_before > 4 * as_mirrored, (as_mirrored, as_before)
    finally:
        put_ok(camera, IMAGE, f"<ImageChannel{HIK}>{color()}{flip(None)}</ImageChannel>")


def test_the_whole_channel_carries_the_day_night_part(camera: Vigild) -> None:
    ircut = f"{IMAGE}/IrcutFilter"
    before = xml(camera.get(ircut))
    mode, delay = text(before, "IrcutFilterType"), text(before, "nightToDayFilterTime")
    assert text(xml(camera.get(IMAGE)), "IrcutFilter/IrcutFilterType") == mode
    try:
        put_ok(
            camera,
            IMAGE,
            f"<ImageChannel{HIK}><IrcutFilter><IrcutFilterType>day</IrcutFilterType>"
            f"<nightToDayFilterTime>30</nightToDayFilterTime></IrcutFilter>{color(hue=60)}"
            "</ImageChannel>",
        )
        shown = xml(camera.get(ircut))
        assert (text(shown, "IrcutFilterType"), text(shown, "nightToDayFilterTime")) == (
            "day",
            "30",
        )
        assert text(xml(camera.get(COLOR)), "hueLevel") == "60"
    finally:
        put_ok(camera, ircut, f"<IrcutFilter{HIK}><IrcutFilterType>{mode}</IrcutFilterType>"
               f"<nightToDayFilterTime>{delay}</nightToDayFilterTime></IrcutFilter>")  # fmt: skip
        put_ok(camera, COLOR, color())


def test_the_whole_channel_round_trips_with_hikvisionapi(camera: Vigild) -> None:
    """The usual client: GET the whole document, change what it wants, PUT it all back."""
    api = Client(camera.url, "admin", ADMIN_PASSWORD, timeout=10)
    channel = api.Image.channels[1]
    try:
        sent = channel(method="get", present="text")
        sent = sent.replace(
            "<saturationLevel>50</saturationLevel>", "<saturationLevel>70</saturationLevel>"
        )
        flipped = "<enabled>true</enabled><ImageFlipStyle>UPDOWN</ImageFlipStyle></ImageFlip>"
        sent = sent.replace("<enabled>false</enabled></ImageFlip>", flipped)
        assert channel(method="put", data=sent)["ResponseStatus"]["statusCode"] == "1"
        doc = channel(method="get")["ImageChannel"]
        assert doc["Color"]["saturationLevel"] == "70"
        assert doc["ImageFlip"] == {"enabled": "true", "ImageFlipStyle": "UPDOWN"}
        listed = api.Image.channels(method="get")["ImageChannellist"]["ImageChannel"]
        assert listed["Color"]["saturationLevel"] == "70"
    finally:
        put_ok(camera, "/ISAPI/Image/channels",
               f"<ImageChannellist{HIK}><ImageChannel><id>1</id>{color()}{flip(None)}"
               "</ImageChannel></ImageChannellist>")  # fmt: skip
    assert text(xml(camera.get(COLOR)), "saturationLevel") == "50"
    assert text(xml(camera.get(FLIP)), "enabled") == "false"
