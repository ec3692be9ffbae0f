"""The video detectors on synthetic luma pictures (numpy), and the channel detection thread.

Pictures are 640x360 like the default sub stream: a blocky texture (8x8 blocks of random grey,
sharp edges, plenty of contrast) stands for a view; a bright box moved across it is motion;
a flat dark picture with noise is a covered lens; a 15-pixel box blur is a lens out of focus;
the texture rolled by a third is the camera moved. Picture time advances 0.2 s per picture
(5 fps), as the detection thread sees it.

The thread tests run `ChannelDetectors` for real (its thread, its slot of one, a real EventBus
on the test's loop) fed by `PushFeed`: a frame feed the test pushes pictures into, through the
same `FrameTap` objects a `VideoChannel` hands out (the interface a remote channel's decoder
would implement).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from tests.event_recorder import Recorder, wait_for
from vigil.config.events import (
    GRID_COLUMNS,
    GRID_ROWS,
    Area,
    ChannelDetection,
    EventSettings,
    MotionArea,
    MotionSettings,
    SensitivitySettings,
    TamperSettings,
    VideoLossSettings,
)
from vigil.events.defocus import DefocusDetector
from vigil.events.detection import PIXEL_DETECTORS, ChannelDetectors
from vigil.events.motion import MotionDetector, is_night
from vigil.events.picture import Detector, Picture, area_slices, block_mean, small_factor
from vigil.events.scenechange import SceneChangeDetector
from vigil.events.tamper import TamperDetector
from vigil.events.videoloss import VideoLossDetector
from vigil.media.channel import FrameTap

W, H = 640, 360
STEP_S = 0.2  # 5 fps
Luma = np.ndarray[Any, np.dtype[np.uint8]]


# -- pictures ---------------------------------------------------------------------------------
def textured(seed: int = 1) -> Luma:
    blocks = np.random.default_rng(seed).integers(30, 220, (H // 8, W // 8), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)


def with_box(picture: Luma, x: int, y: int, size: int = 40, luma: int = 250) -> Luma:
    drawn = picture.copy()
    drawn[y : y + size, x : x + size] = luma
    return drawn


def moving_box(
    picture: Luma, left: int, top: int, span: int, frames: int, size: int = 40
) -> Iterator[Luma]:
    """A box going back and forth over `span` pixels right of (left, top), 20 px a picture."""
    for i in range(frames):
        offset = (i * 20) % (2 * span)
        x = left + (offset if offset < span else 2 * span - offset)
        yield with_box(picture, x, top, size)


def covered(frames: int, seed: int = 2) -> Iterator[Luma]:
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        yield (16 + rng.integers(0, 5, (H, W))).astype(np.uint8)


def box_blurred(picture: Luma, k: int = 15) -> Luma:
    """A k x k box blur (summed-area table, numpy only)."""
    padded = np.pad(picture.astype(np.int64), ((k // 2 + 1, k // 2), (k // 2 + 1, k // 2)), "edge")
    table = padded.cumsum(0).cumsum(1)
    sums = table[k:, k:] - table[:-k, k:] - table[k:, :-k] + table[:-k, :-k]
    return (sums // (k * k)).astype(np.uint8)


def shifted(picture: Luma) -> Luma:
    return np.roll(picture, (H // 3, W // 3), axis=(0, 1))


def repeat(picture: Luma, frames: int) -> Iterator[Luma]:
    for _ in range(frames):
        yield picture


class Clock:
    """Picture time for a detector: 0.2 s a picture, going on across the phases of a test."""

    def __init__(self) -> None:
        self.at = 0.0

    def run(
        self, detector: Detector, pictures: Iterable[Luma], detection: ChannelDetection
    ) -> list[bool]:
        states = []
        for luma in pictures:
            self.at += STEP_S
            states.append(detector.update(Picture(luma, self.at), detection))
        return states


# -- settings ---------------------------------------------------------------------------------
def grid_of(x0: int, y0: int, x1: int, y1: int) -> list[str]:
    """The grid with the cells that meet the pixel rectangle [x0, x1) x [y0, y1) on."""
    rows = []
    for r in range(GRID_ROWS):
        top, bottom = r * H / GRID_ROWS, (r + 1) * H / GRID_ROWS
        cells = [
            "1"
            if top < y1
            and bottom > y0
            and c * W / GRID_COLUMNS < x1
            and (c + 1) * W / GRID_COLUMNS > x0
            else "0"
            for c in range(GRID_COLUMNS)
        ]
        rows.append("".join(cells))
    return rows


def thousandths(x: int, y: int, w: int, h: int) -> Area:
    """An Area from a pixel rectangle of the 640x360 picture."""
    return Area(x=x * 1000 // W, y=y * 1000 // H, width=w * 1000 // W, height=h * 1000 // H)


def grid_motion(grid: list[str] | None = None, sensitivity: int = 50) -> ChannelDetection:
    kwargs: dict[str, Any] = {"enabled": True, "sensitivity": sensitivity}
    if grid is not None:
        kwargs["grid"] = grid
    return ChannelDetection(motion=MotionSettings(**kwargs))


def expert_motion(*areas: MotionArea, **motion: Any) -> ChannelDetection:
    return ChannelDetection(
        motion=MotionSettings(enabled=True, mode="expert", areas=list(areas), **motion)
    )


def fixed_time(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 14, hour, minute, tzinfo=UTC)


def motion_detector(hour: int = 12) -> MotionDetector:
    return MotionDetector(lambda: fixed_time(hour))


# -- the picture tools ------------------------------------------------------------------------
def test_block_means_are_exact_and_the_small_scale_is_near_160_wide() -> None:
    luma = np.random.default_rng(3).integers(0, 256, (362, 646), dtype=np.uint8)
    means = block_mean(luma, 4)
    expected = luma[:360, :644].reshape(90, 4, 161, 4).astype(np.float64).mean(axis=(1, 3))
    assert means.shape == (90, 161)
    assert np.allclose(means, expected, atol=1e-4)
    assert [small_factor(w) for w in (160, 320, 352, 640, 704, 1280)] == [1, 2, 2, 4, 4, 8]
    assert Picture(textured(), 0.0).small.shape == (90, 160)


def test_area_slices_cover_the_thousandths_of_the_plane_and_are_never_empty() -> None:
    rows, cols = area_slices(Area(x=500, y=0, width=500, height=250), (90, 160))
    assert (rows, cols) == (slice(0, 23), slice(80, 160))
    rows, cols = area_slices(Area(x=999, y=999, width=1, height=1), (90, 160))
    assert rows.stop - rows.start == 1 and cols.stop - cols.start == 1


# -- motion -----------------------------------------------------------------------------------
def test_grid_motion_inside_the_enabled_cells_is_seen_and_ends_when_the_box_stops() -> None:
    view, clock, detector = textured(), Clock(), motion_detector()
    detection = grid_motion(grid_of(100, 100, 300, 160))
    assert clock.run(detector, repeat(view, 5), detection) == [False] * 5
    moving = clock.run(detector, moving_box(view, 100, 110, 150, 10), detection)
    assert all(moving[1:]), moving
    stopped = clock.run(detector, repeat(with_box(view, 180, 110), 15), detection)
    # Absorbed into the background within about a second (0.5 s time constant).
    assert not any(stopped[7:]), stopped


def test_grid_motion_outside_the_enabled_cells_or_at_sensitivity_0_is_not_seen() -> None:
    view = textured()
    elsewhere = grid_of(400, 250, 640, 360)
    for detection in (grid_motion(elsewhere), grid_motion(sensitivity=0)):
        clock, detector = Clock(), motion_detector()
        clock.run(detector, repeat(view, 3), detection)
        assert not any(clock.run(detector, moving_box(view, 100, 110, 150, 15), detection))
    assert not PIXEL_DETECTORS["vmd"](grid_motion(sensitivity=0))
    assert not PIXEL_DETECTORS["vmd"](grid_motion(["0" * GRID_COLUMNS] * GRID_ROWS))
    assert PIXEL_DETECTORS["vmd"](grid_motion())


def test_sensor_noise_is_not_motion_even_at_sensitivity_100() -> None:
    rng = np.random.default_rng(4)
    view = textured().astype(np.int16)
    noisy = ((view + rng.normal(0, 4, view.shape)).clip(0, 255).astype(np.uint8) for _ in range(20))
    assert not any(Clock().run(motion_detector(), noisy, grid_motion(sensitivity=100)))


def test_expert_area_sees_motion_inside_it_and_not_beside_it() -> None:
    view = textured()
    inside = MotionArea(id=1, area=thousandths(80, 80, 240, 120), proportion=5)
    beside = MotionArea(id=2, area=thousandths(400, 200, 200, 120), proportion=5)
    clock, detector = Clock(), motion_detector()
    detection = expert_motion(inside, beside)
    clock.run(detector, repeat(view, 3), detection)
    assert all(clock.run(detector, moving_box(view, 100, 110, 150, 10), detection)[1:])
    assert detector.moved_areas == [1]
    clock, detector = Clock(), motion_detector()
    detection = expert_motion(beside)
    clock.run(detector, repeat(view, 3), detection)
    assert not any(clock.run(detector, moving_box(view, 100, 110, 150, 10), detection))


def test_a_small_object_counts_only_against_a_small_proportion() -> None:
    view = textured()
    # A 16-pixel box in a 320x180 area: its changed pixels are well under 10 % of the area.
    area = thousandths(40, 40, 320, 180)
    for proportion, expected in ((1, True), (10, False)):
        clock, detector = Clock(), motion_detector()
        detection = expert_motion(MotionArea(id=1, area=area, proportion=proportion))
        clock.run(detector, repeat(view, 3), detection)
        states = clock.run(detector, moving_box(view, 100, 110, 150, 10, size=16), detection)
        assert any(states[1:]) is expected, (proportion, states)


def test_an_expert_area_at_sensitivity_0_is_off() -> None:
    view = textured()
    area = MotionArea(id=1, area=thousandths(80, 80, 240, 120), sensitivity=0)
    clock, detector = Clock(), motion_detector()
    detection = expert_motion(area)
    clock.run(detector, repeat(view, 3), detection)
    assert not any(clock.run(detector, moving_box(view, 100, 110, 150, 10), detection))
    assert not PIXEL_DETECTORS["vmd"](detection)


def test_day_and_night_sets_switch_on_the_local_time() -> None:
    view = textured()
    # Off by day, on by night: the night set decides after 18:00 and before 06:00.
    area = MotionArea(id=1, area=thousandths(80, 80, 240, 120), sensitivity=0, night_sensitivity=80)
    detection = expert_motion(area, day_night="schedule", day_start="06:00", night_start="18:00")
    for hour, expected in ((12, False), (23, True), (3, True), (7, False)):
        clock, detector = Clock(), motion_detector(hour)
        clock.run(detector, repeat(view, 3), detection)
        states = clock.run(detector, moving_box(view, 100, 110, 150, 10), detection)
        assert any(states) is expected, hour
    # Without the schedule the day set is used at any hour.
    plain = dataclasses.replace(
        detection, motion=dataclasses.replace(detection.motion, day_night="off")
    )
    clock, detector = Clock(), motion_detector(23)
    clock.run(detector, repeat(view, 3), plain)
    assert not any(clock.run(detector, moving_box(view, 100, 110, 150, 10), plain))


def test_night_spans_midnight_or_not_as_the_starts_say() -> None:
    across = MotionSettings(day_night="schedule", day_start="06:30", night_start="18:00")
    assert [
        is_night(across, fixed_time(h, m)) for h, m in ((6, 29), (6, 30), (17, 59), (18, 0), (0, 0))
    ] == [True, False, False, True, True]
    early = MotionSettings(day_night="schedule", day_start="05:00", night_start="01:00")
    assert [is_night(early, fixed_time(h)) for h in (0, 1, 4, 5, 23)] == [
        False,
        True,
        True,
        False,
        False,
    ]
    same = MotionSettings(day_night="schedule", day_start="06:00", night_start="06:00")
    assert not any(is_night(same, fixed_time(h)) for h in range(24))
    assert not is_night(MotionSettings(), fixed_time(23))


# -- tampering --------------------------------------------------------------------------------
TAMPER = ChannelDetection(tamper=TamperSettings(enabled=True))


def test_covering_the_view_raises_tampering_after_2_s_and_uncovering_ends_it() -> None:
    clock, detector = Clock(), TamperDetector()
    assert not any(clock.run(detector, repeat(textured(), 10), TAMPER))
    states = clock.run(detector, covered(15), TAMPER)
    # 2 s held at 0.2 s a picture: the 11th covered picture is the first to count.
    assert states.index(True) == 10 and all(states[10:])
    assert clock.run(detector, repeat(textured(), 3), TAMPER) == [False] * 3


def test_a_covered_part_outside_the_tamper_area_is_not_tampering() -> None:
    view = textured()
    half_covered = view.copy()
    half_covered[:, W // 2 :] = 16
    detection = ChannelDetection(
        tamper=TamperSettings(enabled=True, area=Area(x=0, y=0, width=500, height=1000))
    )
    clock, detector = Clock(), TamperDetector()
    clock.run(detector, repeat(view, 5), detection)
    assert not any(clock.run(detector, repeat(half_covered, 20), detection))
    whole = dataclasses.replace(
        detection, tamper=TamperSettings(enabled=True, area=Area(x=500, width=500))
    )
    clock, detector = Clock(), TamperDetector()
    clock.run(detector, repeat(view, 5), whole)
    assert any(clock.run(detector, repeat(half_covered, 20), whole))


def test_tampering_at_sensitivity_0_is_off_and_blur_is_not_tampering() -> None:
    assert not PIXEL_DETECTORS["tamperdetection"](
        ChannelDetection(tamper=TamperSettings(enabled=True, sensitivity=0))
    )
    clock, detector = Clock(), TamperDetector()
    clock.run(detector, repeat(textured(), 5), TAMPER)
    assert not any(clock.run(detector, repeat(box_blurred(textured()), 20), TAMPER))


# -- defocus ----------------------------------------------------------------------------------
DEFOCUS = ChannelDetection(defocus=SensitivitySettings(enabled=True))


def test_a_blurred_picture_raises_defocus_after_2_s_and_sharp_again_ends_it() -> None:
    clock, detector = Clock(), DefocusDetector()
    assert not any(clock.run(detector, repeat(textured(), 10), DEFOCUS))
    states = clock.run(detector, repeat(box_blurred(textured()), 15), DEFOCUS)
    assert states.index(True) == 10 and all(states[10:])
    assert not any(clock.run(detector, repeat(textured(), 2), DEFOCUS))


def test_dimmer_light_or_a_covered_view_is_not_defocus() -> None:
    clock, detector = Clock(), DefocusDetector()
    clock.run(detector, repeat(textured(), 10), DEFOCUS)
    dim = (textured() // 3).astype(np.uint8)
    assert not any(clock.run(detector, repeat(dim, 20), DEFOCUS))
    assert not any(clock.run(detector, covered(20), DEFOCUS))


# -- scene change -----------------------------------------------------------------------------
SCENE = ChannelDetection(
    motion=MotionSettings(enabled=True), scene_change=SensitivitySettings(enabled=True)
)


def run_both(clock: Clock, pictures: Iterable[Luma]) -> tuple[list[bool], list[bool]]:
    """Scene change and motion on the same pictures."""
    motion, scene = motion_detector(), SceneChangeDetector()
    moved, changed = [], []
    for luma in pictures:
        clock.at += STEP_S
        picture = Picture(luma, clock.at)
        moved.append(motion.update(picture, SCENE))
        changed.append(scene.update(picture, SCENE))
    return moved, changed


def test_a_moved_camera_raises_scene_change_once_and_not_only_motion() -> None:
    view = textured()
    pictures = [*repeat(view, 10), *repeat(shifted(view), 20)]
    moved, changed = run_both(Clock(), pictures)
    assert any(moved[10:12]), "the move itself is motion too"
    # Steady in its new place for 2 s, then raised once: the new view is the reference.
    assert changed.count(True) == 1 and 19 <= changed.index(True) <= 22, changed


def test_motion_even_of_a_large_object_is_not_a_scene_change() -> None:
    view = textured()
    pictures = [*repeat(view, 10), *moving_box(view, 0, 0, 380, 40, size=260)]
    moved, changed = run_both(Clock(), pictures)
    assert any(moved) and not any(changed)


def test_light_changing_over_the_whole_view_is_not_a_scene_change() -> None:
    view = textured()
    brighter = (view.astype(np.int16) * 2 // 3 + 60).astype(np.uint8)
    _, changed = run_both(Clock(), [*repeat(view, 10), *repeat(brighter, 20)])
    assert not any(changed)


# -- video loss -------------------------------------------------------------------------------
def test_video_loss_is_silence_for_the_timeout() -> None:
    detector = VideoLossDetector()
    detection = ChannelDetection(video_loss=VideoLossSettings(timeout_s=3))
    assert [detector.update(s, detection) for s in (0.0, 2.9, 3.0, 10.0)] == [
        False,
        False,
        True,
        True,
    ]
    off = ChannelDetection(video_loss=VideoLossSettings(enabled=False))
    assert not detector.update(60.0, off)


# -- the detection thread ---------------------------------------------------------------------
class PushFeed:
    """A frame feed the test drives: the taps of a VideoChannel, called from the test."""

    def __init__(self) -> None:
        self.taps: list[FrameTap] = []

    def add_tap(self, callback: Any, max_fps: float, luma: bool = True) -> FrameTap:
        tap = FrameTap(interval=1 / max_fps, callback=callback, luma=luma)
        self.taps.append(tap)
        return tap

    def remove_tap(self, tap: FrameTap) -> None:
        self.taps.remove(tap)

    def push(self, luma: Luma) -> None:
        for tap in self.taps:
            tap.callback(time.monotonic(), luma.copy() if tap.luma else None)


class Settings:
    """The settings getter: what `lambda: store.current.events` gives, changeable by the test."""

    def __init__(self, detection: ChannelDetection) -> None:
        self.events = EventSettings(detection=[detection])

    def __call__(self) -> EventSettings:
        return self.events

    def set(self, detection: ChannelDetection) -> None:
        self.events = EventSettings(detection=[detection])


async def pushing(feed: PushFeed, pictures: Iterable[Luma]) -> None:
    for luma in pictures:
        feed.push(luma)
        await asyncio.sleep(STEP_S)


@pytest.fixture
async def recorder() -> Recorder:
    recorder = Recorder()
    recorder.bus.bind(asyncio.get_running_loop())
    return recorder


async def test_the_thread_raises_and_ends_video_loss_on_its_own_timer(recorder: Recorder) -> None:
    feed = PushFeed()
    settings = Settings(ChannelDetection(video_loss=VideoLossSettings(timeout_s=1)))
    detectors = ChannelDetectors(1, feed, recorder.bus, settings, lambda: fixed_time(12))
    detectors.start()
    try:
        await pushing(feed, repeat(textured(), 5))
        assert not recorder.bus.is_active("videoloss", 1)
        silent_since = time.monotonic()
        await wait_for(lambda: recorder.bus.is_active("videoloss", 1), timeout=3)
        waited = time.monotonic() - silent_since
        assert 0.5 < waited < 1.6  # 1 s after the last picture, on the 0.25 s timer
        feed.push(textured())
        await wait_for(lambda: not recorder.bus.is_active("videoloss", 1), timeout=2)
        # Nothing wanted the pixels: the tap handed out frame times only.
        assert feed.taps[0].luma is False and detectors.running == []
    finally:
        await asyncio.to_thread(detectors.stop)
    assert feed.taps == []


async def test_the_thread_follows_setting_changes_live(recorder: Recorder) -> None:
    feed, view = PushFeed(), textured()
    settings = Settings(ChannelDetection())
    detectors = ChannelDetectors(1, feed, recorder.bus, settings, lambda: fixed_time(12))
    detectors.start()
    try:
        await pushing(feed, moving_box(view, 100, 110, 150, 5))
        assert not recorder.bus.is_active("vmd", 1) and feed.taps[0].luma is False
        settings.set(grid_motion())
        await pushing(feed, moving_box(view, 100, 110, 150, 10))
        assert recorder.bus.is_active("vmd", 1) and feed.taps[0].luma is True
        assert detectors.running == ["vmd"] and detectors.analysed > 0
        settings.set(grid_motion(sensitivity=0))  # off: its event ends at once
        feed.push(view)
        await wait_for(lambda: not recorder.bus.is_active("vmd", 1))
        assert detectors.running == [] and feed.taps[0].luma is False
    finally:
        await asyncio.to_thread(detectors.stop)


async def test_a_busy_thread_drops_pictures_instead_of_queueing_them(recorder: Recorder) -> None:
    feed = PushFeed()
    detectors = ChannelDetectors(
        1, feed, recorder.bus, Settings(grid_motion()), lambda: fixed_time(12)
    )
    detectors.start()
    try:
        await pushing(feed, repeat(textured(), 2))
        for _ in range(200):  # far faster than the thread looks at pictures
            feed.push(textured())
        await asyncio.sleep(0.5)
        assert detectors.dropped > 0
        assert detectors.analysed + detectors.dropped <= 202
    finally:
        await asyncio.to_thread(detectors.stop)
