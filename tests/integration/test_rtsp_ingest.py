"""RtspIngest against Vigil's own RTSP server on loopback (the real libavformat RTSP client).

The source is an RtspServer fed by a hub that replays real libx264 units at real time; the
ingest publishes into a second hub, and what comes out is checked by decoding it with a fresh
decoder that has no extradata: only parameter sets in band make that work.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator

import av
import pytest

from tests.recording import FPS, FRAME, encode_units
from vigil.config.model import RtspSettings
from vigil.media.frames import AccessUnit
from vigil.media.hub import StreamHub, Subscription
from vigil.media.ingest import ParameterSetKeeper, RtspIngest, Timeline
from vigil.media.rtp import make_packetizer
from vigil.media.rtsp import RtspServer
from vigil.media.rtsp.auth import AuthResult, AuthStatus
from vigil.record.fmp4 import iter_nal_units, nal_type, parameter_sets

WIDTH, HEIGHT = 640, 360
PATH = "/Streaming/Channels/101"


class OpenAuth:
    def check(self, method: str, uri: str, authorization: str | None, client: str) -> AuthResult:
        return AuthResult(AuthStatus.OK, user="test")


def strip_sets(au: AccessUnit) -> AccessUnit:
    """The unit without SPS/PPS, as a camera that sends them only in the SDP."""
    kept = [n for n in iter_nal_units(au.data) if nal_type("H264", n) not in (7, 8)]
    return dataclasses.replace(au, data=b"".join(b"\x00\x00\x00\x01" + n for n in kept))


class Source:
    """A camera: a hub replaying encoded units at real time behind Vigil's RTSP server."""

    def __init__(self, units: list[AccessUnit], *, sets_in_sdp_only: bool = False) -> None:
        self.units = units
        self.sets_in_sdp_only = sets_in_sdp_only
        self.hub = StreamHub(101, make_packetizer(units[0].codec))
        self.server: RtspServer | None = None
        self._replay: asyncio.Task[None] | None = None

    async def start(self, port: int = 0) -> None:
        if self.sets_in_sdp_only:
            self.hub.publish(self.units[0])  # the packetizer learns the sets for the SDP only
        self._replay = asyncio.create_task(self._run())
        self.server = RtspServer(
            hubs=lambda i: self.hub if i == 101 else None,
            auth=OpenAuth(),
            settings=RtspSettings,
            bind="127.0.0.1",
            port=port,
        )
        await self.server.start()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"rtsp://user:secret@127.0.0.1:{self.server.port}{PATH}"

    async def _run(self) -> None:
        start, count = time.monotonic(), 0
        while True:
            for au in self.units:
                unit = strip_sets(au) if self.sets_in_sdp_only and au.keyframe else au
                self.hub.publish(
                    dataclasses.replace(unit, pts=count * FRAME, captured_at=time.monotonic())
                )
                count += 1
                await asyncio.sleep(max(0.0, start + count / FPS - time.monotonic()))

    async def pause(self) -> None:
        """The camera stalls: the connection stays up, no more media."""
        if self._replay is not None:
            self._replay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replay
            self._replay = None

    def resume(self) -> None:
        self._replay = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        await self.pause()


class Collector:
    """Subscribes to the ingest's hub and keeps every unit."""

    def __init__(self, hub: StreamHub) -> None:
        self.units: list[AccessUnit] = []
        self._subscription = hub.subscribe(queue_units=1000)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while (batch := await self._subscription.next()) is not None:
            self.units.append(batch.au)

    async def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.units) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(self.units) >= count, f"{len(self.units)} units of {count} within {timeout} s"

    async def close(self) -> None:
        self._subscription.close()
        await self._task


@pytest.fixture(scope="module")
def units() -> list[AccessUnit]:
    return encode_units(2.0, gop=FPS, width=WIDTH, height=HEIGHT)


@pytest.fixture
async def source(units: list[AccessUnit]) -> AsyncIterator[Source]:
    camera = Source(units)
    await camera.start()
    yield camera
    await camera.stop()


async def wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return bool(condition())  # type: ignore[operator]


def decode_all(units: list[AccessUnit]) -> int:
    """Frames decoded from the first keyframe on, by a decoder told nothing but the units."""
    first = next(i for i, au in enumerate(units) if au.keyframe)
    decoder = av.CodecContext.create("h264" if units[0].codec == "H264" else "hevc", "r")
    frames = 0
    for au in units[first:]:
        frames += len(decoder.decode(av.Packet(au.data)))
    return frames + len(decoder.decode(None))


def check_units(units: list[AccessUnit], codec: str = "H264") -> None:
    assert all(au.stream_id == 201 and au.codec == codec for au in units)
    assert all((au.width, au.height) == (WIDTH, HEIGHT) for au in units)
    keyframes = [au for au in units if au.keyframe]
    assert keyframes and all(parameter_sets(codec, au.data) for au in keyframes)
    steps = [b.pts - a.pts for a, b in itertools.pairwise(units)]
    assert min(steps) > 0
    first = next(i for i, au in enumerate(units) if au.keyframe)
    assert decode_all(units) == len(units) - first


async def ingest_into_collector(url: str) -> tuple[RtspIngest, Collector]:
    hub = StreamHub(201, make_packetizer("H264"))
    collector = Collector(hub)
    ingest = RtspIngest(url, 201, hub, read_timeout=2.0, backoff=(0.2, 1.0))
    await ingest.start()
    return ingest, collector


async def collect(url: str, count: int) -> tuple[RtspIngest, list[AccessUnit]]:
    """Ingest `url` until `count` units have come (20 s at most), then stop: the ingest and
    the units."""
    ingest, collector = await ingest_into_collector(url)
    try:
        await collector.wait_for(count, timeout=20)
    finally:
        await ingest.stop()
        await collector.close()
    return ingest, collector.units


async def test_units_are_decodable_with_parameter_sets_on_keyframes(source: Source) -> None:
    ingest, units = await collect(source.url, 3 * FPS)
    check_units(units)
    assert ingest.stats.state == "stopped" and ingest.stats.connects == 1
    assert ingest.stats.sets_inserted == 0  # this source sends them in band itself
    # pts on the 90 kHz clock, following the source's 25 fps grid (arrival jitter aside).
    steps = [b.pts - a.pts for a, b in itertools.pairwise(units)]
    assert sorted(steps)[len(steps) // 2] == FRAME


async def test_h265_switches_the_hub_and_keeps_its_parameter_sets() -> None:
    camera = Source(encode_units(2.0, "H265", gop=FPS, width=WIDTH, height=HEIGHT))
    await camera.start()
    ingest, collector = await ingest_into_collector(camera.url)  # a hub made for H.264
    try:
        # The hub's new packetizer ends the collector's subscription; subscribe again.
        assert await wait_until(lambda: ingest.hub.packetizer.encoding_name == "H265", 20)
        await collector.close()
        collector = Collector(ingest.hub)
        await collector.wait_for(2 * FPS, timeout=20)
    finally:
        await ingest.stop()
        await collector.close()
        await camera.stop()
    check_units(collector.units, "H265")


async def test_parameter_sets_only_in_the_sdp_are_put_in_band(units: list[AccessUnit]) -> None:
    camera = Source(units, sets_in_sdp_only=True)
    await camera.start()
    try:
        ingest, received = await collect(camera.url, 3 * FPS)
    finally:
        await camera.stop()
    check_units(received)
    assert ingest.stats.sets_inserted >= 2


async def test_reconnects_after_the_source_restarts(
    source: Source, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="vigil.media.ingest")
    ingest, collector = await ingest_into_collector(source.url)
    try:
        await collector.wait_for(FPS, timeout=20)
        assert source.server is not None
        port = source.server.port
        await source.stop()
        assert await wait_until(lambda: ingest.stats.state == "waiting", 10)
        before = len(collector.units)
        outage_start = time.monotonic()
        await asyncio.sleep(1.0)
        await source.start(port)
        await collector.wait_for(before + 2 * FPS, timeout=20)
        outage = time.monotonic() - outage_start
    finally:
        await ingest.stop()
        await collector.close()
    assert ingest.stats.connects == 2 and ingest.stats.failures >= 1
    after = collector.units[before:]
    check_units(after)
    # The timeline goes on across the outage: later, by about the time that passed.
    jump = (after[0].pts - collector.units[before - 1].pts) / 90_000
    assert 0.5 < jump < outage + 1.0
    states = [r.getMessage() for r in caplog.records if r.name == "vigil.media.ingest"]
    assert any("source lost" in m for m in states) and sum("streaming" in m for m in states) == 2
    assert all("secret" not in m for m in states)  # the password never reaches the log


async def test_a_stalled_source_is_noticed_and_retried(source: Source) -> None:
    ingest, collector = await ingest_into_collector(source.url)
    try:
        await collector.wait_for(FPS, timeout=20)
        await source.pause()
        assert await wait_until(lambda: ingest.stats.state == "waiting", 10)
        before = len(collector.units)
        noticed = time.monotonic() - collector.units[-1].captured_at  # silence, and noticed
        source.resume()
        await collector.wait_for(before + FPS, timeout=20)
    finally:
        await ingest.stop()
        await collector.close()
    assert noticed < ingest.read_timeout + 1.5  # SPEC §9: within 10 s
    assert ingest.stats.connects == 2
    check_units(collector.units[before:])


async def test_stop_is_prompt_while_streaming_and_while_waiting(source: Source) -> None:
    ingest, collector = await ingest_into_collector(source.url)
    await collector.wait_for(FPS, timeout=20)
    started = time.monotonic()
    await ingest.stop()
    assert time.monotonic() - started < 1.0
    await collector.close()
    # Nothing listens on this port: the ingest fails, waits, and still stops at once.
    assert source.server is not None
    port = source.server.port
    await source.stop()
    idle = RtspIngest(
        f"rtsp://127.0.0.1:{port}{PATH}", 201, StreamHub(201, make_packetizer("H264")),
        backoff=(30.0, 30.0),
    )  # fmt: skip
    await idle.start()
    assert await wait_until(lambda: idle.stats.state == "waiting", 10)
    started = time.monotonic()
    await idle.stop()
    assert time.monotonic() - started < 1.0 and idle.stats.units == 0


async def reads_per_second(subscription: Subscription, seconds: float) -> float:
    """How often the source was read, from the arrival times of the units that came: the
    units of one read arrive together, reads are far apart."""
    arrivals: list[float] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        batch = await subscription.next_within(left)
        if batch is not None:
            arrivals.append(batch.au.captured_at)
    reads = 1 + sum(b - a > 0.05 for a, b in itertools.pairwise(arrivals))
    return reads / seconds


async def test_a_source_only_recorded_is_read_seldom_and_often_while_watched(
    source: Source,
) -> None:
    hub = StreamHub(201, make_packetizer("H264"))
    recorder = hub.subscribe(queue_units=1000, packets=False, patient=True)
    ingest = RtspIngest(source.url, 201, hub, read_every=0.1, unwatched_read_every=0.5)
    await ingest.start()
    try:
        await recorder.next_within(10)
        assert await reads_per_second(recorder, 3.0) <= 2.7  # every half second
        viewer = hub.subscribe()  # an RTSP client: from the next unit on, read often
        await reads_per_second(viewer, 0.6)
        assert await reads_per_second(viewer, 2.0) >= 7  # ten times a second
        viewer.close()
        await reads_per_second(recorder, 0.6)
        assert await reads_per_second(recorder, 3.0) <= 2.7
    finally:
        await ingest.stop()
        recorder.close()


def test_keeper_inserts_missing_sets_after_the_delimiter() -> None:
    sps, pps = b"\x67\x4d\x40\x1e\xda", b"\x68\xef\x3c\x80"
    keeper = ParameterSetKeeper("H264", b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps)
    aud, idr = b"\x09\xf0", b"\x65\x88\x84\x00\x21"
    frame = b"\x00\x00\x00\x01" + aud + b"\x00\x00\x00\x01" + idr
    completed = keeper.complete(frame)
    assert [nal_type("H264", n) for n in iter_nal_units(completed)] == [9, 7, 8, 5]
    assert keeper.inserted == 1
    # A keyframe carrying its own (new) sets is left alone, and its sets become the latest.
    sps2 = b"\x67\x64\x00\x28\xac"
    own = b"\x00\x00\x00\x01" + sps2 + b"\x00\x00\x00\x01" + pps + b"\x00\x00\x00\x01" + idr
    assert keeper.complete(own) == own and keeper.sets[7] == sps2


def test_timeline_is_monotonic_and_bridges_sessions() -> None:
    timeline = Timeline()
    assert timeline.map(None, 100.0) == 0  # a first unit without a timestamp
    assert timeline.map(5000, 100.04) == 3600  # anchored on arrival, then the source's clock
    assert timeline.map(8600, 100.08) == 7200
    timeline.new_session()
    # A new session whose clock starts anew, 3 s later: it continues 3 s on.
    assert timeline.map(123, 103.08) == 7200 + 3 * 90_000
    assert timeline.map(3723, 103.12) == 7200 + 3 * 90_000 + 3600
    # The source's clock jumps back within a session: re-anchored, still increasing.
    assert timeline.map(0, 103.16) == 7200 + 3 * 90_000 + 3600 + 3600
