"""Live streams of the running device, played by real RTSP clients (ffprobe, ffmpeg, GStreamer).

The device is the real vigild on the simulated board; its sensor is FFmpeg's testsrc2 pattern,
encoded by the same encoders and served by the same hub and RTSP server as on a board.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import av
import pytest

from tests.integration.rtsp_fixtures import gstreamer, gstreamer_played
from tests.vigild import ADMIN_PASSWORD, Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs Debian ffmpeg")


def rtsp_url(device: Vigild, path: str, password: str = ADMIN_PASSWORD) -> str:
    return f"rtsp://admin:{password}@127.0.0.1:{device.rtsp_port}{path}"


@contextlib.contextmanager
def playing(device: Vigild, path: str) -> Iterator[subprocess.Popen[bytes]]:
    """An ffmpeg client playing `path` over RTSP/TCP (decoding, nothing kept) while inside."""
    player = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", rtsp_url(device, path),
         "-f", "null", "-"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield player
    finally:
        player.terminate()
        player.wait(timeout=20)


def probe(device: Vigild, path: str, transport: str = "tcp") -> dict[str, object]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", transport, "-select_streams", "v:0",
         "-show_entries", "stream=codec_name,width,height,r_frame_rate", "-of", "json",
         rtsp_url(device, path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["streams"][0]


def count_frames(device: Vigild, path: str, transport: str, frames: int = 25) -> int:
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-rtsp_transport", transport, "-i", rtsp_url(device, path),
         "-frames:v", str(frames), "-f", "framemd5", "-"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return sum(1 for line in result.stdout.splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_main_and_sub_streams_play(device: Vigild, transport: str) -> None:
    main = probe(device, "/Streaming/Channels/101", transport)
    assert (main["codec_name"], main["width"], main["height"]) == ("h264", 1920, 1080)
    assert main["r_frame_rate"] == "25/1"
    sub = probe(device, "/Streaming/Channels/102", transport)
    assert (sub["codec_name"], sub["width"], sub["height"]) == ("h264", 640, 360)
    assert sub["r_frame_rate"] == "15/1"
    assert count_frames(device, "/Streaming/Channels/102", transport) == 25


def test_url_forms_and_refusals(device: Vigild) -> None:
    assert probe(device, "/streaming/channels/102")["width"] == 640  # case-insensitive
    assert probe(device, "/ISAPI/Streaming/channels/102")["width"] == 640
    wrong = subprocess.run(
        ["ffprobe", "-v", "error", rtsp_url(device, "/Streaming/Channels/102", "Wrong-Pass-1")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert wrong.returncode != 0 and "401" in wrong.stderr
    missing = subprocess.run(
        ["ffprobe", "-v", "error", rtsp_url(device, "/Streaming/Channels/109")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert missing.returncode != 0 and "404" in missing.stderr


def test_gstreamer_plays(device: Vigild) -> None:
    if shutil.which("gst-launch-1.0") is None:
        pytest.skip("needs Debian gstreamer1.0-tools")
    source = f"rtsp://127.0.0.1:{device.rtsp_port}/Streaming/Channels/102"
    result = gstreamer(source, "tcp", ADMIN_PASSWORD)
    assert gstreamer_played(result), result.stdout + result.stderr


def put_stream(device: Vigild, stream_id: int, video: str) -> None:
    body = f"<StreamingChannel><id>{stream_id}</id><Video>{video}</Video></StreamingChannel>"
    reply = device.put(f"/ISAPI/Streaming/channels/{stream_id}", body)
    assert reply.status_code == 200, reply.text


def test_isapi_changes_are_live(device: Vigild) -> None:
    put_stream(device, 102, "<videoResolutionWidth>320</videoResolutionWidth>"
                            "<videoResolutionHeight>240</videoResolutionHeight>")  # fmt: skip
    assert (probe(device, "/Streaming/Channels/102")["width"]) == 320
    put_stream(device, 102, "<videoCodecType>H.265</videoCodecType>")
    assert probe(device, "/Streaming/Channels/102")["codec_name"] == "hevc"
    put_stream(device, 102, "<videoCodecType>MJPEG</videoCodecType>")
    assert probe(device, "/Streaming/Channels/102")["codec_name"] == "mjpeg"
    doc = ET.fromstring(device.get("/ISAPI/Streaming/channels/102").content)
    assert doc.findtext(f"{NS}Video/{NS}videoCodecType") == "MJPEG"
    assert doc.findtext(f"{NS}Video/{NS}maxFrameRate") == "1500"


def test_a_playing_client_survives_a_resolution_change(device: Vigild) -> None:
    player = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i",
         rtsp_url(device, "/Streaming/Channels/102"), "-autoscale", "0", "-f", "framemd5", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(3)
        put_stream(device, 102, "<videoResolutionWidth>320</videoResolutionWidth>"
                                "<videoResolutionHeight>180</videoResolutionHeight>")  # fmt: skip
        time.sleep(4)
    finally:
        player.terminate()
    out, _ = player.communicate(timeout=20)
    sizes = [line.split(",")[4].strip() for line in out.splitlines() if line and line[0] != "#"]
    # Frames before and after the change (no scaling on output): framemd5's size column goes
    # from 640x360 (345600 bytes of yuv420p) to 320x180 (86400), and frames keep coming.
    assert "345600" in sizes and "86400" in sizes
    assert sizes[-1] == "86400"


def test_bad_values_are_refused(device: Vigild) -> None:
    body = ("<StreamingChannel><id>101</id><Video><videoResolutionWidth>7680"
            "</videoResolutionWidth><videoResolutionHeight>4320</videoResolutionHeight>"
            "</Video></StreamingChannel>")  # fmt: skip
    assert device.put("/ISAPI/Streaming/channels/101", body).status_code == 400
    sub = body.replace("101", "102").replace("7680", "1920").replace("4320", "1080")
    assert device.put("/ISAPI/Streaming/channels/102", sub).status_code == 400
    odd = ("<StreamingChannel><id>102</id><Video><maxFrameRate>1250</maxFrameRate></Video>"
           "</StreamingChannel>")  # fmt: skip
    assert device.put("/ISAPI/Streaming/channels/102", odd).status_code == 400


def test_snapshot_is_a_jpeg_of_the_configured_size(device: Vigild) -> None:
    reply = device.get("/ISAPI/Streaming/channels/101/picture")
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/jpeg"
    assert reply.content[:2] == b"\xff\xd8"
    with av.open(io.BytesIO(reply.content)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (1920, 1080)


def test_capabilities_and_status(device: Vigild) -> None:
    caps = ET.fromstring(device.get("/ISAPI/Streaming/channels/101/capabilities").content)
    codec = caps.find(f"{NS}Video/{NS}videoCodecType")
    assert codec is not None and codec.get("opt") == "H.264,H.265,MJPEG"
    width = caps.find(f"{NS}Video/{NS}videoResolutionWidth")
    assert width is not None and width.get("max") == "1920"
    profile = caps.find(f"{NS}Video/{NS}H264Profile")
    assert profile is not None and profile.get("opt") == "Baseline,Main,High"
    assert profile.text == "Main"
    with playing(device, "/Streaming/Channels/102"):
        time.sleep(3)
        status = ET.fromstring(device.get("/ISAPI/Streaming/status").content)
    assert status.findtext(f"{NS}totalStreamingSessions") == "1"
    session = status.find(f".//{NS}StreamingSessionStatus")
    assert session is not None
    assert session.findtext(f"{NS}streamingChannelID") == "102"
    assert session.findtext(f"{NS}clientUserName") == "admin"
    assert int(session.findtext(f"{NS}sentBytes") or 0) > 0
