"""VideoChannel on a real event loop: SimSensor capture, libx264 encoders, the worker's life.

Everything is real (FFmpeg's test pattern paced in real time, libx264, the asyncio loop and
the channel's thread) except the sources of the failure tests: `FailingSensor`, `FlakySensor`
and `SluggishSensor` are test doubles, real simulated sensors that fail or stall on purpose,
because there is no way to unplug a simulated sensor or to make an encoder slow on demand.
Bounds on rates and counts are loose: the host is a busy 2-core machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator

import av
import pytest

from vigil.board.description import BoardSensor
from vigil.config.model import StreamSettings
from vigil.media.channel import SnapshotUnavailable, VideoChannel
from vigil.media.frames import RTP_CLOCK, AccessUnit
from vigil.media.source import CapturedFrame, FrameSource, SimSensor, SourceLost

MAIN = StreamSettings(id=101, name="Main Stream", codec="H264", width=640, height=360, fps=25,
                      gop=25, max_bitrate_kbps=1024)  # fmt: skip
SUB = StreamSettings(id=102, name="Sub Stream", codec="H264", width=320, height=180, fps=15,
                     gop=15, max_bitrate_kbps=256)  # fmt: skip


class Collector:
    """The publish callback: runs on the event loop, as StreamHub.publish does."""

    def __init__(self) -> None:
        self.units: list[AccessUnit] = []
        self.loop_thread = threading.get_ident()
        self.wrong_thread = 0

    def __call__(self, unit: AccessUnit) -> None:
        if threading.get_ident() != self.loop_thread:
            self.wrong_thread += 1
        self.units.append(unit)

    def of(self, stream_id: int, since: int = 0) -> list[AccessUnit]:
        return [u for u in self.units[since:] if u.stream_id == stream_id]


def channel_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vigil-channel")]


def pts_rate(units: list[AccessUnit]) -> float:
    return (len(units) - 1) * RTP_CLOCK / (units[-1].pts - units[0].pts)


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def no_channel_left() -> Iterator[None]:
    yield
    assert not channel_threads(), "a channel thread outlived its test"


@pytest.fixture
def media_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The media modules' log records from INFO up."""
    caplog.set_level(logging.INFO, logger="vigil.media")
    return caplog


@pytest.fixture
def channel_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The channel's log records from INFO up."""
    caplog.set_level(logging.INFO, logger="vigil.media.channel")
    return caplog


def channel_of(
    collector: Collector, *streams: StreamSettings, source: FrameSource | None = None
) -> VideoChannel:
    """Channel 1 on the running loop, capturing `source` (by default a simulated sensor) for
    `streams` and publishing to `collector`."""
    sensor = SimSensor(BoardSensor()) if source is None else source
    channel = VideoChannel(1, sensor, collector, asyncio.get_running_loop())
    channel.configure(list(streams))
    return channel


@contextlib.asynccontextmanager
async def running(channel: VideoChannel) -> AsyncIterator[VideoChannel]:
    """The channel started, and stopped however the block ends."""
    await channel.start()
    try:
        yield channel
    finally:
        await channel.stop()


async def run_channel(channel: VideoChannel, seconds: float) -> None:
    async with running(channel):
        await asyncio.sleep(seconds)


async def test_main_and_sub_arrive_at_their_rates_starting_on_keyframes(
    collector: Collector, no_channel_left: None
) -> None:
    channel = channel_of(collector, MAIN, SUB)
    async with running(channel):
        with pytest.raises(SnapshotUnavailable):
            await channel.snapshot(320, 180)  # nothing captured yet
        await asyncio.sleep(3.0)
        jpeg = await channel.snapshot(320, 180, quality=70)
        stats = channel.stats
    assert not channel_threads()
    main, sub = collector.of(101), collector.of(102)
    # Three seconds: 75 and 45 frames if nothing is late; start-up and a busy host cost some.
    assert 50 <= len(main) <= 80 and 30 <= len(sub) <= 48
    assert 22 <= pts_rate(main) <= 26 and 13 <= pts_rate(sub) <= 16
    assert main[0].keyframe and sub[0].keyframe
    assert [i for i, u in enumerate(main) if u.keyframe][:2] == [0, 25]
    assert {(u.width, u.height) for u in main} == {(640, 360)}
    assert {(u.width, u.height) for u in sub} == {(320, 180)}
    assert collector.wrong_thread == 0
    assert abs(int(stats[101]["frames_encoded"]) - len(main)) <= 3
    assert stats[101]["encoder"] == "libx264"
    assert 0 < float(stats[102]["last_encode_ms"]) < 1000
    picture = av.CodecContext.create("mjpeg", "r").decode(av.Packet(jpeg))[0]
    assert (picture.width, picture.height) == (320, 180)


async def test_a_live_resolution_change_rebuilds_only_that_encoder(
    collector: Collector, no_channel_left: None, media_log: pytest.LogCaptureFixture
) -> None:
    channel = channel_of(collector, MAIN, SUB)
    async with running(channel):
        await asyncio.sleep(1.5)
        changed_at = len(collector.units)
        channel.configure([dataclasses.replace(MAIN, width=480, height=270), SUB])
        await asyncio.sleep(1.5)
    before = [u for u in collector.units[:changed_at] if u.stream_id == 101]
    after = collector.of(101, since=changed_at)
    assert {(u.width, u.height) for u in before} == {(640, 360)}
    first_new = next(i for i, u in enumerate(after) if (u.width, u.height) == (480, 270))
    assert first_new <= 3  # the next frame, give or take the units already in flight
    assert after[first_new].keyframe
    assert {(u.width, u.height) for u in after[first_new:]} == {(480, 270)}
    assert len(after[first_new:]) >= 20
    pts = [u.pts for u in collector.of(101)]
    assert all(b > a for a, b in itertools.pairwise(pts))  # one timeline across it
    sub = collector.of(102)
    # The sub stream's encoder was not rebuilt: keyframes only where its GOP puts them.
    assert [i for i, u in enumerate(sub) if u.keyframe] == list(range(0, len(sub), 15))
    # The largest size needed went from 640x360 to 480x270: the capture was reopened.
    assert "capture needs 480x270@25 now" in media_log.text


async def test_a_disabled_stream_stops_and_a_rename_changes_nothing(
    collector: Collector, no_channel_left: None, media_log: pytest.LogCaptureFixture
) -> None:
    channel = channel_of(collector, MAIN, SUB)
    async with running(channel):
        await asyncio.sleep(1.0)
        channel.configure(
            [dataclasses.replace(MAIN, name="Renamed"), dataclasses.replace(SUB, enabled=False)]
        )
        await asyncio.sleep(0.3)
        stopped_at = len(collector.units)
        await asyncio.sleep(1.0)
    assert not collector.of(102, since=stopped_at)
    main = collector.of(101)
    assert len(collector.of(101, since=stopped_at)) >= 15
    assert [i for i, u in enumerate(main) if u.keyframe] == list(range(0, len(main), 25))
    assert "stream 102 stopped" in media_log.text
    assert "reopening" not in media_log.text  # 640x360@25 was still the most any stream needed
    assert set(channel.stats) == {101}


async def test_stop_leaves_no_thread_and_a_channel_can_start_again(
    collector: Collector, no_channel_left: None
) -> None:
    channel = channel_of(collector, SUB)
    for _ in range(2):
        await run_channel(channel, 0.5)
        assert not channel_threads()
    assert len(collector.of(102)) >= 6
    with pytest.raises(ValueError, match="not a stream of channel 1"):
        channel.configure([dataclasses.replace(SUB, id=202)])
    idle = VideoChannel(2, SimSensor(BoardSensor()), collector, asyncio.get_running_loop())
    await run_channel(idle, 0.2)  # never configured: it waits without capturing, and stops


class FailingSensor(SimSensor):
    """Test double: a real simulated sensor whose `fail_at`-th read raises `error`."""

    def __init__(self, fail_at: int, error: Exception) -> None:
        super().__init__(BoardSensor())
        self.fail_at = fail_at
        self.error = error
        self.reads = 0

    def read(self, timeout: float) -> CapturedFrame:
        self.reads += 1
        if self.reads == self.fail_at:
            raise self.error
        return super().read(timeout)


class FlakySensor(FailingSensor):
    """Test double: a real simulated sensor that is 'unplugged' after `fail_after` reads and
    refuses the next `refusals` opens, as a USB camera that drops off the bus would."""

    def __init__(self, fail_after: int, refusals: int) -> None:
        super().__init__(fail_after, SourceLost("unplugged"))
        self.refusals = refusals
        self.opens = 0

    def open(self, width: int, height: int, fps: int) -> None:
        self.opens += 1
        if self.reads >= self.fail_at and self.refusals > 0:
            self.refusals -= 1
            raise SourceLost("still unplugged")
        super().open(width, height, fps)


async def test_a_lost_source_is_retried_with_backoff_and_the_channel_recovers(
    collector: Collector, no_channel_left: None, channel_log: pytest.LogCaptureFixture
) -> None:
    source = FlakySensor(fail_after=20, refusals=1)
    channel = channel_of(collector, MAIN, source=source)
    # Lost after ~0.8 s; the retry 0.5 s later is refused, the next one, 1 s after, succeeds.
    await run_channel(channel, 4.0)
    main = collector.of(101)
    gaps = [b.captured_at - a.captured_at for a, b in itertools.pairwise(main)]
    outage = max(gaps)
    assert 1.4 <= outage <= 2.8
    resumed = main[gaps.index(outage) + 1 :]
    assert len(resumed) >= 20
    assert source.opens == 3
    lost = [r for r in channel_log.records if "source lost" in r.getMessage()]
    back = [r for r in channel_log.records if "source back" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.WARNING  # once, not per retry
    assert len(back) == 1


async def test_an_unexpected_failure_is_logged_and_the_loop_restarts(
    collector: Collector, no_channel_left: None, channel_log: pytest.LogCaptureFixture
) -> None:
    buggy = FailingSensor(fail_at=10, error=RuntimeError("a bug in the capture path"))
    channel = channel_of(collector, MAIN, source=buggy)
    await run_channel(channel, 2.0)
    failures = [r for r in channel_log.records if "capture loop failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
    main = collector.of(101)
    restart = next(
        i for i, u in enumerate(main) if i and u.captured_at - main[i - 1].captured_at > 0.3
    )
    assert main[restart].keyframe  # the encoders were rebuilt after the failure
    assert len(main) - restart >= 15


class SluggishSensor(SimSensor):
    """Test double: a real simulated sensor whose reader is held up now and then, as a channel
    whose encoders take longer than a frame interval would be."""

    def read(self, timeout: float) -> CapturedFrame:
        frame = super().read(timeout)
        if self._index % 10 == 5:
            time.sleep(0.13)  # over three frame intervals at 25 fps
        return frame


async def test_frames_the_channel_is_too_slow_for_are_dropped_and_counted(
    collector: Collector, no_channel_left: None
) -> None:
    channel = channel_of(collector, MAIN, SUB, source=SluggishSensor(BoardSensor()))
    async with running(channel):
        await asyncio.sleep(2.0)
        stats = channel.stats
    main = collector.of(101)
    assert int(stats[101]["frames_dropped"]) >= 6
    assert int(stats[102]["frames_dropped"]) >= 2
    # Dropped, not queued: the units that did come out stay close to real time.
    assert all(time.monotonic() - u.captured_at < 3.0 for u in main)
    assert int(stats[101]["frames_encoded"]) + int(stats[101]["frames_dropped"]) >= 40
