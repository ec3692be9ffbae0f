"""The live view's WebSocket (`/live/{stream}`, `vigil.web.live`) over HTTP, with aiohttp's
client as the browser: refused without a session and from another origin, and what it sends
(JSON, the init segment, one fragment per access unit) is an MP4 that ffprobe reads as the
stream's H.264 at the stream's size."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from tests.integration.test_web_session import login, session_of
from tests.vigild import Vigild

FRAGMENTS = 40


def session_cookie(device: Vigild) -> str:
    reply = login(device.url)
    assert reply.status_code == 200, reply.text
    return f"vigil_session={reply.cookies['vigil_session']}"


def ws_url(device: Vigild, stream: int) -> str:
    return f"ws://127.0.0.1:{device.http_port}/live/{stream}"


def own_origin(device: Vigild) -> str:
    return f"http://127.0.0.1:{device.http_port}"


async def handshake_status(device: Vigild, headers: dict[str, str]) -> int:
    """The HTTP status of a refused handshake (the test fails if it is accepted)."""
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with client.ws_connect(ws_url(device, 101), headers=headers):
                pass
    return refused.value.status


async def receive_live(device: Vigild, stream: int, cookie: str, count: int) -> tuple[dict, bytes]:
    """(the JSON header, the init segment and `count` fragments joined) of one live view."""
    headers = {"Cookie": cookie, "Origin": own_origin(device)}
    async with (
        aiohttp.ClientSession() as client,
        client.ws_connect(ws_url(device, stream), headers=headers) as ws,
    ):
        meta = json.loads(await ws.receive_str(timeout=10))
        parts = [await ws.receive_bytes(timeout=10) for _ in range(count + 1)]
    assert parts[0][4:8] == b"ftyp"
    assert all(part[4:8] == b"moof" for part in parts[1:])
    return meta, b"".join(parts)


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(out.stdout)["streams"][0]


def test_live_is_refused_without_a_session(module_device: Vigild) -> None:
    status = asyncio.run(handshake_status(module_device, {"Origin": own_origin(module_device)}))
    assert status == 401


def test_live_is_refused_from_another_origin_or_without_one(module_device: Vigild) -> None:
    cookie = session_cookie(module_device)
    foreign = {"Cookie": cookie, "Origin": "http://evil.example"}
    other_port = {"Cookie": cookie, "Origin": "http://127.0.0.1:1"}
    for headers in (foreign, other_port, {"Cookie": cookie}):
        assert asyncio.run(handshake_status(module_device, headers)) == 403


@pytest.mark.parametrize(("stream", "size"), [(101, (1920, 1080)), (102, (640, 360))])
def test_live_sends_an_init_segment_then_fragments_ffprobe_reads(
    module_device: Vigild, tmp_path: Path, stream: int, size: tuple[int, int]
) -> None:
    meta, data = asyncio.run(
        receive_live(module_device, stream, session_cookie(module_device), FRAGMENTS)
    )
    assert (meta["stream"], meta["width"], meta["height"]) == (stream, *size)
    assert meta["mime"].startswith('video/mp4; codecs="avc1.')
    path = tmp_path / f"live-{stream}.mp4"
    path.write_bytes(data)
    found = probe(path)
    assert found["codec_name"] == "h264"
    assert (found["width"], found["height"]) == size
    assert int(found["nb_read_frames"]) == FRAGMENTS  # every fragment decodes to a picture
    profile = {"66": "Baseline", "77": "Main", "100": "High"}[str(int(meta["mime"][-7:-5], 16))]
    assert found["profile"].startswith(profile)


def test_live_of_an_unknown_stream_or_too_many_views_is_closed_with_a_reason(
    module_device: Vigild,
) -> None:
    async def scenario() -> None:
        headers = {"Cookie": session_cookie(module_device), "Origin": own_origin(module_device)}
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(ws_url(module_device, 199), headers=headers) as ws:
                message = await ws.receive(timeout=10)
                assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 4404
            views = [await client.ws_connect(ws_url(module_device, 102), headers=headers)]
            for _ in range(3):
                views.append(await client.ws_connect(ws_url(module_device, 102), headers=headers))
            for view in views:
                assert json.loads(await view.receive_str(timeout=10))["stream"] == 102
            async with client.ws_connect(ws_url(module_device, 102), headers=headers) as ws:
                message = await ws.receive(timeout=10)
                assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 4429
                assert "4 times" in message.extra
            await views.pop().close()
            await asyncio.sleep(0.5)
            async with client.ws_connect(ws_url(module_device, 102), headers=headers) as ws:
                assert json.loads(await ws.receive_str(timeout=10))["stream"] == 102
            for view in views:
                await view.close()

    asyncio.run(scenario())


def put_sub_stream(device: Vigild, video: str) -> None:
    body = f"<StreamingChannel><id>102</id><Video>{video}</Video></StreamingChannel>"
    reply = device.put("/ISAPI/Streaming/channels/102", body)
    assert reply.status_code == 200, reply.text


SUB_STREAM = (
    "<videoCodecType>H.264</videoCodecType><videoResolutionWidth>640</videoResolutionWidth>"
    "<videoResolutionHeight>360</videoResolutionHeight>"
)


def test_a_changed_stream_ends_the_view_and_an_h265_one_is_refused(module_device: Vigild) -> None:
    async def closed_after_change(video: str) -> tuple[int, str]:
        headers = {"Cookie": session_cookie(module_device), "Origin": own_origin(module_device)}
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(ws_url(module_device, 102), headers=headers) as ws,
        ):
            assert json.loads(await ws.receive_str(timeout=10))["stream"] == 102
            await asyncio.to_thread(put_sub_stream, module_device, video)
            while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.BINARY:
                pass
            assert message.type == aiohttp.WSMsgType.CLOSE
            return message.data, message.extra

    try:
        small = "<videoResolutionWidth>320</videoResolutionWidth>"
        small += "<videoResolutionHeight>240</videoResolutionHeight>"
        assert asyncio.run(closed_after_change(small))[0] == 4410
        meta, _ = asyncio.run(receive_live(module_device, 102, session_cookie(module_device), 3))
        assert (meta["width"], meta["height"]) == (320, 240)  # the new view: the new size

        assert asyncio.run(closed_after_change("<videoCodecType>H.265</videoCodecType>"))[0] == 4410

        async def refused() -> tuple[int, str]:
            headers = {"Cookie": session_cookie(module_device), "Origin": own_origin(module_device)}
            async with (
                aiohttp.ClientSession() as client,
                client.ws_connect(ws_url(module_device, 102), headers=headers) as ws,
            ):
                message = await ws.receive(timeout=10)
                return message.data, message.extra

        assert asyncio.run(refused()) == (4415, "stream 102 is H265: live view takes H.264")
    finally:
        put_sub_stream(module_device, SUB_STREAM)


def small_receive_buffer(address: tuple[Any, ...]) -> socket.socket:
    """A client socket with a small receive buffer, set before connecting (so the window the
    kernel offers stays small): a viewer that stops reading is felt by the device at once."""
    family, kind, proto = address[0], address[1], address[2]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    return sock


def sample_duration(piece: bytes) -> int:
    """The one sample's duration (90 kHz) of a live fragment: `fmp4.fragment`'s fixed layout,
    moof(8) mfhd(16) traf(8) tfhd(16) tfdt(20), then trun's header (12), count and data offset,
    then the first entry's duration."""
    assert piece[4:8] == b"moof" and piece[72:76] == b"trun"
    return int.from_bytes(piece[88:92], "big")


def test_a_viewer_that_stops_reading_slows_no_other_and_skips(module_device: Vigild) -> None:
    """One viewer reads nothing for 20 s while another reads the same stream: the other gets
    the stream in real time without a skip, and the stalled one is made to skip to a keyframe
    (the device logs the skips when it ends) rather than piling up the stream in memory."""
    hold_s = 20.0  # the device's socket buffers (megabytes) fill first: seconds of stream
    log_before = len(module_device.output())

    async def scenario() -> tuple[list[int], float]:
        headers = {"Cookie": session_cookie(module_device), "Origin": own_origin(module_device)}
        slow_connector = aiohttp.TCPConnector(socket_factory=small_receive_buffer)
        async with (
            aiohttp.ClientSession() as client,
            aiohttp.ClientSession(connector=slow_connector) as slow_client,
            slow_client.ws_connect(ws_url(module_device, 101), headers=headers) as stalled,
            client.ws_connect(ws_url(module_device, 101), headers=headers) as reader,
        ):
            await reader.receive_str(timeout=10)
            await reader.receive_bytes(timeout=10)
            started, durations = time.monotonic(), []
            while time.monotonic() - started < hold_s:
                durations.append(sample_duration(await reader.receive_bytes(timeout=5)))
            elapsed = time.monotonic() - started
            await stalled.close()
        return durations, elapsed

    durations, elapsed = asyncio.run(scenario())
    # The reader's pictures cover the time it read (pts are capture times, so this holds on a
    # loaded machine whose encoder drops frames too), less the cached GOP's head start: it
    # kept up with the stream.
    assert sum(durations) / 90_000 >= elapsed - 2.5, (sum(durations), elapsed)
    deadline = time.monotonic() + 10
    ended = r"live view of 101 by admin ended: .* \((\d+) skips\)"
    while len(skips := re.findall(ended, module_device.output()[log_before:])) < 2:
        assert time.monotonic() < deadline, module_device.output()[log_before:]
        time.sleep(0.1)
    # The reader never skipped; the stalled one did (or, blocked past the write timeout, was
    # cut off after skipping).
    assert sorted(map(int, skips))[0] == 0 and max(map(int, skips)) >= 1, skips


def test_a_logout_ends_the_live_view(module_device: Vigild) -> None:
    cookies, csrf = session_of(login(module_device.url))
    cookie = f"vigil_session={cookies['vigil_session']}"

    async def scenario() -> tuple[int, float]:
        headers = {"Cookie": cookie, "Origin": own_origin(module_device)}
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(ws_url(module_device, 102), headers=headers) as ws,
        ):
            await ws.receive_str(timeout=10)
            logout = f"{module_device.url}/ISAPI/Security/sessionLogout"
            reply = await asyncio.to_thread(
                requests.put, logout, cookies=cookies, headers=csrf, timeout=5
            )
            assert reply.status_code == 200
            started = time.monotonic()
            while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.BINARY:
                pass
            return message.data, time.monotonic() - started

    code, after_s = asyncio.run(scenario())
    assert code == 4401 and after_s < 6.5  # checked every 5 s
