"""Video detection end to end: in one process, and on the real daemon.

In one process: SimSensor scene -> VideoChannel tap -> detectors -> EventBus, all real
(FFmpeg's pattern paced in real time, libx264 encoders in the channel's thread, the detection
thread, the bus on the test's loop); the scene is set on the sensor directly.

On the real daemon: the detection settings go in over ISAPI, the scene through the simulated
board's control socket (`sim.sock`, part "scene"), and the events come out of the
alertStream as a surveillance center reads them. Waits are generous: the host is a busy
2-core machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from tests.alerts import alert_stream, event
from tests.event_recorder import Recorder, wait_for
from tests.integration.test_detection_api import corners, put_ok, region, regions
from tests.vigild import Vigild
from vigil.board.description import BoardSensor
from vigil.board.simcontrol import send
from vigil.config.events import (
    Area,
    ChannelDetection,
    EventSettings,
    MotionArea,
    MotionSettings,
    SensitivitySettings,
    TamperSettings,
)
from vigil.config.model import StreamSettings
from vigil.events.bus import Event
from vigil.events.detection import DetectionService
from vigil.media.channel import VideoChannel
from vigil.media.source import SimSensor

MAIN = StreamSettings(id=101, name="Main Stream", codec="H264", width=640, height=360, fps=25,
                      gop=25, max_bitrate_kbps=1024)  # fmt: skip
SUB = StreamSettings(id=102, name="Sub Stream", codec="H264", width=480, height=270, fps=15,
                     gop=15, max_bitrate_kbps=256)  # fmt: skip
AREA = Area(x=100, y=100, width=400, height=400)
INSIDE = [100, 100, 400, 400]  # the box moves inside the motion area
OUTSIDE = [600, 550, 350, 400]


def expert(sensitivity: int = 50) -> ChannelDetection:
    area = MotionArea(id=1, area=AREA, sensitivity=sensitivity)
    return ChannelDetection(motion=MotionSettings(enabled=True, mode="expert", areas=[area]))


@dataclass
class Rig:
    sensor: SimSensor
    channel: VideoChannel
    recorder: Recorder
    detection: ChannelDetection
    service: DetectionService = field(init=False)

    def settings(self) -> EventSettings:
        return EventSettings(detection=[self.detection])

    def seen(self, kind: str, active: bool | None = None) -> list[Event]:
        events = self.recorder.events
        return [e for e in events if e.type == kind and active in (None, e.active)]

    async def until(self, kind: str, active: bool, timeout: float) -> float:
        """Seconds until the bus emits this state change."""
        begun = time.monotonic()
        await wait_for(lambda: self.seen(kind, active), timeout)
        return time.monotonic() - begun

    @property
    def analysed(self) -> int:
        return int(self.service.stats()[1]["analysed"])


@contextlib.asynccontextmanager
async def rig(detection: ChannelDetection, scene: dict[str, Any]) -> AsyncIterator[Rig]:
    """Channel 1 capturing the simulated sensor with `scene`, its detectors publishing to a bus."""
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    recorder.bus.bind(loop)
    sensor = SimSensor(BoardSensor())
    sensor.set_scene(scene)
    channel = VideoChannel(1, sensor, lambda unit: None, loop)
    channel.configure([MAIN, SUB])
    test_rig = Rig(sensor, channel, recorder, detection)
    test_rig.service = DetectionService(recorder.bus, test_rig.settings, {1: channel}, datetime.now)
    await channel.start()
    await test_rig.service.start()
    try:
        yield test_rig
    finally:
        await test_rig.service.stop()
        await channel.stop()
        recorder.bus.clear()


async def settle(test_rig: Rig, pictures: int = 10, timeout: float = 10.0) -> None:
    """Until the detectors have looked at a few pictures (references learned)."""
    begun = time.monotonic()
    while test_rig.analysed < pictures:
        assert time.monotonic() - begun < timeout, "the detectors see no pictures"
        await asyncio.sleep(0.05)


async def test_the_tap_hands_out_the_sub_streams_luma_at_5_fps_at_most() -> None:
    loop = asyncio.get_running_loop()
    channel = VideoChannel(1, SimSensor(BoardSensor()), lambda unit: None, loop)
    channel.configure([MAIN, SUB])
    seen: list[tuple[float, Any]] = []
    times: list[float] = []
    await channel.start()
    try:
        tap = channel.add_tap(lambda at, luma: seen.append((at, luma)), 5)
        clock = channel.add_tap(lambda at, luma: times.append(at), 5, luma=False)
        await asyncio.sleep(3.0)
        channel.remove_tap(tap)
        channel.remove_tap(clock)
        count = len(seen)
        await asyncio.sleep(0.5)
    finally:
        await channel.stop()
    assert len(seen) == count, "a removed tap was still called"
    assert 10 <= count <= 16  # 5 fps for 3 s, at most one more
    luma = seen[-1][1]
    assert isinstance(luma, np.ndarray) and luma.dtype == np.uint8 and luma.shape == (270, 480)
    assert luma.flags["C_CONTIGUOUS"] and luma.std() > 10  # the pattern, not an empty picture
    gaps = np.diff([at for at, _ in seen])
    assert gaps.min() > 0.15  # 25 fps captured, every 5th taken
    assert times and all(isinstance(at, float) for at in times)


async def test_a_moving_box_inside_the_area_raises_vmd_and_it_ends_when_the_box_stops() -> None:
    async with rig(expert(), {"still": True}) as test:
        await settle(test)
        assert not test.seen("vmd")
        test.sensor.set_scene({"box": INSIDE})
        await test.until("vmd", True, timeout=5)
        test.sensor.set_scene({"box": None})
        await test.until("vmd", False, timeout=6)
        assert [e.state for e in test.seen("vmd")] == ["active", "inactive"]


@pytest.mark.parametrize(
    ("detection", "box"),
    [(expert(), OUTSIDE), (expert(sensitivity=0), INSIDE)],
    ids=["box outside the area", "sensitivity 0"],
)
async def test_no_vmd_for_a_box_outside_the_area_or_at_sensitivity_0(
    detection: ChannelDetection, box: list[int]
) -> None:
    async with rig(detection, {"still": True, "box": box}) as test:
        await asyncio.sleep(4.0)
        assert not test.seen("vmd")
        if detection.motion.areas[0].sensitivity:
            assert test.analysed >= 10  # the detector did look, and saw nothing
        else:
            assert test.service.stats()[1]["running"] == []  # off: nothing runs at all


async def test_covering_the_view_raises_tamperdetection() -> None:
    detection = ChannelDetection(tamper=TamperSettings(enabled=True))
    async with rig(detection, {"still": True}) as test:
        await settle(test)
        test.sensor.set_scene({"cover": True})
        waited = await test.until("tamperdetection", True, timeout=6)
        assert waited >= 1.8  # held for 2 s first
        test.sensor.set_scene({"cover": False})
        await test.until("tamperdetection", False, timeout=4)


async def test_a_stopped_sensor_raises_videoloss_and_it_clears_when_the_sensor_resumes() -> None:
    async with rig(ChannelDetection(), {}) as test:
        await asyncio.sleep(1.0)
        test.sensor.set_scene({"stopped": True})
        stopped_at = time.monotonic()
        await test.until("videoloss", True, timeout=6)
        assert time.monotonic() - stopped_at >= 2.8  # the 3 s timeout
        test.sensor.set_scene({"stopped": False})
        await test.until("videoloss", False, timeout=8)
        assert test.channel.stats[101]["frames_encoded"] > 0  # the streams went on


async def test_blur_raises_defocus_and_a_shifted_view_raises_scene_change() -> None:
    detection = ChannelDetection(
        defocus=SensitivitySettings(enabled=True), scene_change=SensitivitySettings(enabled=True)
    )
    async with rig(detection, {"still": True}) as test:
        await settle(test)
        test.sensor.set_scene({"blur": True})
        await test.until("defocus", True, timeout=6)
        test.sensor.set_scene({"blur": False})
        await test.until("defocus", False, timeout=4)
        test.sensor.set_scene({"shift": True})
        await test.until("scenechangedetection", True, timeout=6)
        # Raised once per move: the new view becomes the reference, and the event ends.
        await test.until("scenechangedetection", False, timeout=4)
        assert not test.seen("defocus", True)[1:] and not test.seen("tamperdetection")


def test_scene_requests_are_checked() -> None:
    sensor = SimSensor(BoardSensor())
    bad: list[Callable[[], None]] = [
        lambda: sensor.set_scene({"colour": "red"}),
        lambda: sensor.set_scene({"still": "yes"}),
        lambda: sensor.set_scene({"box": [0, 0, 10]}),
        lambda: sensor.set_scene({"box": [900, 900, 200, 50]}),
        lambda: sensor.set_scene({"box": [0, 0, 0, 10]}),
        lambda: sensor.set_scene({"box": [0, 0, True, 10]}),
        lambda: sensor.set_scene(["still"]),
    ]
    for request in bad:
        with pytest.raises(ValueError):
            request()
    assert sensor.scene.still is False and sensor.scene.box is None  # nothing changed
    sensor.set_scene({"box": [0, 0, 1000, 1000], "still": True})
    sensor.set_scene({"still": False})  # only the keys named change
    assert sensor.scene.box == (0, 0, 1000, 1000) and not sensor.scene.still


# -- on the real daemon -----------------------------------------------------------------------
# The detection settings go in over ISAPI; the scene through the simulated board's control
# socket; the events come out of the alertStream, as a surveillance center reads them.
MOTION_PATH = "/ISAPI/System/Video/inputs/channels/1/motionDetection"
TAMPER_PATH = "/ISAPI/System/Video/inputs/channels/1/tamperDetection"
# The motion area x 100-500, y 100-500 in thousandths from the top left, in Hikvision's
# coordinates (origin bottom left): what INSIDE's box moves in.
AREA_CORNERS = corners(100, 500, 500, 900)
QUIET_S = 5.0  # watched for an event that must not come
# A still picture for this long before a test: motion seen before it (the moving pattern, the
# last test's scene) is absorbed (~1 s) and its event ended after the bus's 2 s hold-off, so
# the test's own activation is a new event on the stream.
SETTLE_S = 4.0


def expert_over_isapi(sensitivity: int) -> str:
    level = f"<sensitivityLevel>{sensitivity}</sensitivityLevel>"
    return regions(region(1, AREA_CORNERS, level)).replace(
        "<MotionDetectionRegionList>",
        "<enabled>true</enabled><regionType>roi</regionType><MotionDetectionRegionList>",
    )


def on_channel_1(kind: str, state: str = "active") -> Callable[[dict[str, str]], bool]:
    """An alert of channel 1 (the heartbeat is `videoloss` `inactive` on channel 0)."""
    return lambda alert: event(kind, state)(alert) and alert["channelID"] == "1"


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vigild]:
    """One activated device for the daemon tests, motion (expert area) and tamper on."""
    daemon = Vigild(data_dir=tmp_path_factory.mktemp("detection") / "device").start()
    try:
        daemon.activate()
        put_ok(daemon, MOTION_PATH, expert_over_isapi(50))
        tamper = (
            "<TamperDetection><enabled>true</enabled><TamperDetectionRegionList>"
            "<TamperDetectionRegion><id>1</id><enabled>true</enabled>"
            f"<sensitivityLevel>50</sensitivityLevel>{corners(0, 0, 1000, 1000)}"
            "</TamperDetectionRegion></TamperDetectionRegionList></TamperDetection>"
        )
        put_ok(daemon, TAMPER_PATH, tamper)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def scene(camera: Vigild) -> Iterator[Callable[..., None]]:
    """Set the simulated sensor's scene; a still pattern to start, plain again after."""

    def set_scene(**changes: Any) -> None:
        send(camera.data_dir / "sim.sock", "scene", changes)

    set_scene(still=True, box=None, cover=False, blur=False, shift=False, stopped=False)
    time.sleep(SETTLE_S)
    yield set_scene
    set_scene(still=False, box=None, cover=False, blur=False, shift=False, stopped=False)


def test_device_moving_box_inside_the_area_raises_vmd_and_inactive_after_it_stops(
    camera: Vigild, scene: Callable[..., None]
) -> None:
    with alert_stream(camera) as alerts:
        scene(box=INSIDE)
        active = alerts.wait_for(on_channel_1("vmd"), timeout=10)
        assert active["activePostCount"] == "1" and active["eventDescription"] == "Motion alarm"
        scene(box=None)
        alerts.wait_for(on_channel_1("vmd", "inactive"), timeout=10)


@pytest.mark.parametrize(
    ("sensitivity", "box"), [(50, OUTSIDE), (0, INSIDE)], ids=["outside", "sensitivity 0"]
)
def test_device_no_vmd_outside_the_area_or_at_sensitivity_0(
    camera: Vigild, scene: Callable[..., None], sensitivity: int, box: list[int]
) -> None:
    put_ok(camera, MOTION_PATH, expert_over_isapi(sensitivity))
    try:
        with alert_stream(camera) as alerts:
            scene(box=box)
            with pytest.raises(AssertionError, match="no matching alert"):
                alerts.wait_for(on_channel_1("vmd"), timeout=QUIET_S)
            # The same device does see the box where and when it should: the quiet was not
            # a detector that was not running.
            put_ok(camera, MOTION_PATH, expert_over_isapi(50))
            scene(box=INSIDE)
            alerts.wait_for(on_channel_1("vmd"), timeout=10)
            scene(box=None)
            alerts.wait_for(on_channel_1("vmd", "inactive"), timeout=10)
    finally:
        put_ok(camera, MOTION_PATH, expert_over_isapi(50))


def test_device_covered_view_raises_tamperdetection(
    camera: Vigild, scene: Callable[..., None]
) -> None:
    with alert_stream(camera) as alerts:
        scene(cover=True)
        alert = alerts.wait_for(on_channel_1("tamperdetection"), timeout=10)
        assert alert["eventDescription"] == "Shelteralarm"
        scene(cover=False)
        alerts.wait_for(on_channel_1("tamperdetection", "inactive"), timeout=10)


def test_device_stopped_sensor_raises_videoloss_and_it_clears_when_it_resumes(
    camera: Vigild, scene: Callable[..., None]
) -> None:
    with alert_stream(camera) as alerts:
        scene(stopped=True)
        alerts.wait_for(on_channel_1("videoloss"), timeout=10)
        scene(stopped=False)
        alerts.wait_for(on_channel_1("videoloss", "inactive"), timeout=15)
    # The streams came back with their configuration.
    reply = camera.get("/ISAPI/Streaming/channels/102")
    assert reply.status_code == 200 and "<videoResolutionWidth>640<" in reply.text


def test_device_scene_requests_are_refused_with_the_reason(camera: Vigild) -> None:
    with pytest.raises(ValueError, match="error: no scene key 'colour'"):
        send(camera.data_dir / "sim.sock", "scene", {"colour": "red"})
    with pytest.raises(ValueError, match="reaches outside the picture"):
        send(camera.data_dir / "sim.sock", "scene", {"box": [900, 0, 200, 100]})
