"""The recording benchmark's cameras: K RTSP streams of one pre-encoded clip, looped at real time.

Run as its own process (`python -m tests.bench.record_source CLIP K`), so its CPU is charged to
neither recorder. Vigil's RtspServer serves `/Streaming/Channels/<c>01` for c = 1..K, each fed
by a StreamHub that replays the clip's access units (libx264 Annex B, parameter sets on every
keyframe) with pts running on across loops, as a camera's would. Streams start at different
points of the clip and at different sub-frame phases, so their keyframes (and so the
recorders' fragment and segment boundaries) do not all fall in the same instant, as with real
cameras. Authentication is off: both recorders are loopback clients of the same server.

Line protocol (tests/integration/line_protocol.py): prints `{"event": "ready", "port": N}`;
the order `stats` answers with how late the replay ran since the last `stats` (a saturated
machine shows here first) and the hub skips of each session (a recorder that did not keep up).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
import time
from pathlib import Path

import av

from tests.bench.measure import percentile
from tests.integration.line_protocol import emit, orders
from vigil.config.model import RtspSettings
from vigil.media.frames import RTP_CLOCK, AccessUnit
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer
from vigil.media.rtsp import RtspServer
from vigil.media.rtsp.auth import AuthResult, AuthStatus

FPS = 25
FRAME = RTP_CLOCK // FPS
MAX_CONNECTIONS = 256


class OpenAuth:
    def check(self, method: str, uri: str, authorization: str | None, client: str) -> AuthResult:
        return AuthResult(AuthStatus.OK, user="bench")


def load_clip(path: Path) -> list[AccessUnit]:
    """The clip's access units (the raw H.264 demuxer's parser splits them), in order."""
    units: list[AccessUnit] = []
    with av.open(str(path), format="h264") as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        for packet in container.demux(stream):
            if packet.size:
                data = bytes(packet)
                units.append(AccessUnit(0, "H264", data, 0, packet.is_keyframe, 0.0, width, height))
    if not units or not units[0].keyframe:
        raise SystemExit(f"{path}: no access units, or the first is not a keyframe")
    return units


def stream_ids(count: int) -> list[int]:
    return [channel * 100 + 1 for channel in range(1, count + 1)]


class Replay:
    """One camera: the clip from its own starting point and phase, at real time, forever."""

    def __init__(self, hub: StreamHub, clip: list[AccessUnit], ordinal: int, count: int) -> None:
        self.hub = hub
        self.clip = clip
        self.first = ordinal * len(clip) // count  # where in the clip this camera starts
        self.phase = ordinal / count / FPS  # and when within a frame period it sends
        self.lags: list[float] = []  # seconds late, per unit, since the last `stats`

    async def run(self, start: float) -> None:
        number = 0
        clip, size = self.clip, len(self.clip)
        while True:
            due = start + self.phase + number / FPS
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            self.lags.append(max(0.0, now - due))
            unit = clip[(self.first + number) % size]
            pts = number * FRAME
            self.hub.publish(
                dataclasses.replace(unit, stream_id=self.hub.stream_id, pts=pts, captured_at=now)
            )
            number += 1


def stats(replays: list[Replay], server: RtspServer) -> dict[str, object]:
    lags = [lag for replay in replays for lag in replay.lags]
    for replay in replays:
        replay.lags = []
    return {
        "event": "stats",
        "lag_ms_p99": percentile(lags, 0.99) * 1000 if lags else 0.0,
        "lag_ms_max": max(lags, default=0.0) * 1000,
        "sessions": len(server.sessions()),
        "skips": sum(session.skips for session in server.sessions()),
    }


async def main(clip_path: Path, count: int) -> None:
    clip = load_clip(clip_path)
    hubs = {sid: StreamHub(sid, make_packetizer("H264")) for sid in stream_ids(count)}
    server = RtspServer(
        hubs=hubs.get,
        auth=OpenAuth(),
        settings=RtspSettings,
        bind="127.0.0.1",
        port=0,
        max_connections=MAX_CONNECTIONS,
    )
    await server.start()
    replays = [Replay(hub, clip, i, count) for i, hub in enumerate(hubs.values())]
    start = time.monotonic()
    tasks = [asyncio.create_task(replay.run(start)) for replay in replays]
    for hub in hubs.values():
        await hub.wait_ready(10)
    emit({"event": "ready", "port": server.port, "units": len(clip)})
    async for order in orders():
        if order["order"] == "stats":
            emit(stats(replays, server))
    for task in tasks:
        task.cancel()
    await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clip", type=Path)
    parser.add_argument("streams", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(args.clip, args.streams))
