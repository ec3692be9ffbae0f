"""OSD and privacy masks through a real VideoChannel: SimSensor capture, libx264 main and sub
streams decoded again with PyAV (FFmpeg's H.264 decoder), and a snapshot JPEG decoded as well;
then the media service following live changes of the settings (subscribed to the store as
the daemon does), and the real daemon started with masks in its configuration, played over
RTSP by ffmpeg.

The simulated sensor shows a frozen picture (scene `still`), so the same picture with and
without the overlay can be compared after encoding: the mask's rectangle must be flat black in
both streams and in the snapshot, the text line's area must differ, and a control area away
from both must not.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.integration.test_media_channel import Collector, channel_of
from tests.vigild import ADMIN_PASSWORD, Vigild, free_port
from vigil.board.description import BoardSensor, load_board
from vigil.config.events import Area
from vigil.config.image import (
    ChannelImage,
    DateTimeOverlay,
    ImageSettings,
    NameOverlay,
    OsdSettings,
    PrivacyMaskSettings,
    TextOverlay,
)
from vigil.config.model import Config, PortSettings, StreamSettings, TimeSettings
from vigil.config.store import ConfigStore, dump_config, parse_config
from vigil.media.channel import VideoChannel
from vigil.media.frames import AccessUnit
from vigil.media.osd import Overlay, font_scale, mask_rect, text_origin
from vigil.media.rtsp.auth import AuthResult
from vigil.media.service import MediaService
from vigil.media.source import SimSensor

MAIN = StreamSettings(id=101, name="Main Stream", codec="H264", width=640, height=360, fps=15,
                      gop=15, max_bitrate_kbps=2048)  # fmt: skip
SUB = StreamSettings(id=102, name="Sub Stream", codec="H264", width=320, height=180, fps=15,
                     gop=15, max_bitrate_kbps=512)  # fmt: skip
MASK = Area(x=600, y=100, width=300, height=400)
TEXT = TextOverlay(text="VIGIL OSD 6", x=50, y=600)
SETTINGS = ChannelImage(
    osd=OsdSettings(
        name=NameOverlay(enabled=False), date_time=DateTimeOverlay(enabled=False), texts=[TEXT]
    ),
    privacy_mask=PrivacyMaskSettings(enabled=True, areas=[MASK]),
)
Pixels = np.ndarray[Any, np.dtype[np.uint8]]


def decode(units: list[AccessUnit]) -> list[Pixels]:
    """The luma of every picture of an H.264 stream, in order."""
    context = av.CodecContext.create("h264", "r")
    frames = []
    for unit in units:
        frames += context.decode(av.Packet(unit.data))
    frames += context.decode(None)
    return [luma(f) for f in frames]


def luma(frame: av.VideoFrame) -> Pixels:
    """The Y plane as coded (PyAV stacks the planes of a 4:2:0 picture, Y first)."""
    return frame.to_ndarray()[: frame.height]


def box(rect: tuple[int, int, int, int], scale: int, inset: int = 0) -> tuple[slice, slice]:
    x0, y0, x1, y1 = (v // scale for v in rect)
    return slice(y0 + inset, y1 - inset), slice(x0 + inset, x1 - inset)


@contextlib.asynccontextmanager
async def still_channel(collector: Collector) -> AsyncIterator[VideoChannel]:
    sensor = SimSensor(BoardSensor())
    sensor.set_scene({"still": True})
    channel = channel_of(collector, MAIN, SUB, source=sensor)
    await channel.start()
    try:
        yield channel
    finally:
        await channel.stop()


def text_rect() -> tuple[int, int, int, int]:
    """Where TEXT lands on the main stream's 640x360 picture (the capture size)."""
    overlay = Overlay(SETTINGS, "UTC+0:00:00")
    bitmap = overlay.bitmap(TEXT.text, font_scale("auto", 360, 11))
    x, y = text_origin(TEXT.x, TEXT.y, bitmap.size, 640, 360)
    return x, y, x + bitmap.size[0], y + bitmap.size[1]


@pytest.fixture(scope="module")
def encoded() -> dict[str, Any]:
    """Both streams before and after the overlay is set, and a snapshot with it."""

    async def run() -> dict[str, Any]:
        collector = Collector()
        tapped: list[Pixels] = []
        async with still_channel(collector) as channel:
            channel.add_tap(lambda _at, picture: tapped.append(picture), max_fps=5)
            await asyncio.sleep(1.5)
            before = {s: len(collector.of(s)) for s in (101, 102)}
            tapped_before = len(tapped)
            channel.set_overlay(Overlay(SETTINGS, "UTC+0:00:00"))
            await asyncio.sleep(1.5)
            jpeg = await channel.snapshot(640, 360, quality=90)
        streams = {s: decode(collector.of(s)) for s in (101, 102)}
        taps = (tapped[tapped_before - 2], tapped[-1])
        return {"before": before, "streams": streams, "jpeg": jpeg, "taps": taps}

    return asyncio.run(run())


@pytest.mark.parametrize(("stream_id", "scale"), [(101, 1), (102, 2)])
def test_the_mask_is_flat_black_in_both_streams(
    encoded: dict[str, Any], stream_id: int, scale: int
) -> None:
    frames = encoded["streams"][stream_id]
    without, with_ = frames[encoded["before"][stream_id] - 4], frames[-1]
    inside = box(mask_rect(MASK, 640, 360), scale, inset=2)
    assert abs(int(np.median(with_[inside])) - 16) <= 2
    assert int(with_[inside].max()) - int(with_[inside].min()) <= 12  # flat: no pattern left
    assert int(without[inside].max()) - int(without[inside].min()) > 60  # the pattern was there


# The sub stream's text is the capture's scaled to half: thinner strokes, greyer after x264.
@pytest.mark.parametrize(("stream_id", "scale", "white"), [(101, 1, 200), (102, 2, 150)])
def test_the_text_area_differs_from_the_same_picture_without_osd(
    encoded: dict[str, Any], stream_id: int, scale: int, white: int
) -> None:
    frames = encoded["streams"][stream_id]
    without, with_ = frames[encoded["before"][stream_id] - 4], frames[-1]

    def change(where: tuple[slice, slice]) -> float:
        return float(np.abs(with_[where].astype(int) - without[where].astype(int)).mean())

    text = box(text_rect(), scale)
    control = box((40, 60, 200, 120), scale)  # neither text nor mask
    assert change(text) > 15
    assert change(control) < 2
    assert int(with_[text].max()) >= white  # the glyphs


def test_the_detectors_pictures_are_masked_but_carry_no_text(encoded: dict[str, Any]) -> None:
    without, with_ = encoded["taps"]  # the luma at the sub stream's size, 320x180
    inside = box(mask_rect(MASK, 640, 360), 2, inset=1)
    assert int(with_[inside].max()) <= 17 and int(without[inside].max()) > 60
    text = box(text_rect(), 2)
    assert (with_[text] == without[text]).all()  # the still picture, exactly: no text drawn


def test_a_snapshot_shows_the_mask(encoded: dict[str, Any]) -> None:
    picture = av.CodecContext.create("mjpeg", "r").decode(av.Packet(encoded["jpeg"]))[0]
    y = luma(picture)
    inside = box(mask_rect(MASK, 640, 360), 1, inset=2)
    assert int(y[inside].max()) <= 8  # black: 0 in a JPEG's full range
    assert int(y[box((40, 60, 200, 120), 1)].max()) > 60


# -- the media service, live -----------------------------------------------------------------------
class NoClients:
    """RTSP authentication refusing everyone: this test plays no stream."""

    def check(self, method: str, uri: str, authorization: str | None, client: str) -> AuthResult:
        raise AssertionError("no RTSP client in this test")


async def test_the_media_service_follows_image_and_time_zone_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vigil.media.service")
    config = Config(ports=PortSettings(rtsp=free_port()), streams=[MAIN, SUB])
    store = ConfigStore(tmp_path / "config.toml", config)
    store.load()
    media = MediaService(load_board("sim"), store, bind="127.0.0.1", rtsp_auth=NoClients(),
                         allow=lambda _address: True)  # fmt: skip
    store.subscribe("image", media.apply_image)  # the daemon's wiring
    store.subscribe("time", media.apply_time)
    inside = box(mask_rect(MASK, 640, 360), 1, inset=8)

    async def snapshot_luma() -> Pixels:
        await asyncio.sleep(0.6)  # a few frames with the new settings
        jpeg = await media.snapshot(1, 640, 360, 90)
        return luma(av.CodecContext.create("mjpeg", "r").decode(av.Packet(jpeg))[0])

    await media.start()
    try:
        assert "OSD on (time zone UTC+0:00:00), 0 privacy mask(s)" in caplog.text  # as shipped
        assert int((await snapshot_luma())[inside].max()) > 60
        image = ImageSettings(channels=[SETTINGS])
        await store.replace(dataclasses.replace(store.current, image=image))
        assert int((await snapshot_luma())[inside].max()) <= 8
        await store.replace(
            dataclasses.replace(store.current, time=TimeSettings(time_zone="CST-8:00:00"))
        )
        assert "OSD on (time zone CST-8:00:00), 1 privacy mask(s)" in caplog.text
        off = ChannelImage(osd=SETTINGS.osd, privacy_mask=PrivacyMaskSettings(areas=[MASK]))
        off = dataclasses.replace(off, osd=dataclasses.replace(off.osd, texts=[]))
        await store.replace(dataclasses.replace(store.current, image=ImageSettings([off])))
        assert "OSD off, 0 privacy mask(s)" in caplog.text
        assert int((await snapshot_luma())[inside].max()) > 60
    finally:
        await media.stop()


# -- the daemon -----------------------------------------------------------------------------------
def rtsp_yuv(device: Vigild, stream_id: int, frames: int = 1) -> Pixels:
    """One picture of a live stream as ffmpeg decodes it from RTSP: its YUV 4:2:0 planes, flat;
    the last of the first `frames` the client decodes."""
    url = (
        f"rtsp://admin:{ADMIN_PASSWORD}@127.0.0.1:{device.rtsp_port}/Streaming/Channels/{stream_id}"
    )
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", url, "-frames:v", str(frames),
         "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    pictures = np.frombuffer(result.stdout, np.uint8)
    return pictures[len(pictures) // frames * (frames - 1) :]


def rtsp_picture(device: Vigild, stream_id: int, width: int, height: int) -> Pixels:
    """The luma of one picture of a live stream, as ffmpeg decodes it from RTSP."""
    return rtsp_yuv(device, stream_id)[: width * height].reshape(height, width)


def test_the_daemon_burns_its_configured_masks_into_streams_and_snapshots(device: Vigild) -> None:
    device.stop()
    path = device.data_dir / "config.toml"
    config = parse_config(path.read_bytes())
    image = ImageSettings(channels=[dataclasses.replace(SETTINGS, osd=OsdSettings())])
    path.write_bytes(dump_config(dataclasses.replace(config, image=image)))
    device.start()
    assert "OSD on (time zone UTC+0:00:00), 1 privacy mask(s)" in device.output()
    pictures = {
        "main": (rtsp_picture(device, 101, 1920, 1080), 1920, 1080),
        "sub": (rtsp_picture(device, 102, 640, 360), 640, 360),
    }
    reply = device.get("/ISAPI/Streaming/channels/101/picture")
    assert reply.status_code == 200
    jpeg = av.CodecContext.create("mjpeg", "r").decode(av.Packet(reply.content))[0]
    pictures["snapshot"] = (luma(jpeg), jpeg.width, jpeg.height)
    for name, (y, width, height) in pictures.items():
        inside = box(mask_rect(MASK, width, height), 1, inset=8)  # a JPEG block off the edges
        black = 0 if name == "snapshot" else 16
        assert abs(int(np.median(y[inside])) - black) <= 2, name
        assert int(y[inside].max()) - int(y[inside].min()) <= 12, name
        date_row = y[: height // 10, : width // 3]  # the date/time, top left, as shipped
        assert int(date_row.max()) >= 200, name
