"""Motion detection (`vmd`): what changed against a running-average background.

Method, on the `small` picture (block means of 4x4 pixels: 160x90 for a 640x360 sub stream):

1. Background: an exponential running average of the pictures with a 0.5 s time constant, so a
   moving object keeps differing from it while an object that stops (or a slow change of light)
   is absorbed within about a second: motion ends when the movement does.
2. A pixel changed when it differs from the background by more than a threshold set by the
   sensitivity: 60 luma levels at sensitivity 1 down to 6 at 100 (33 at the default 50).
   Sensitivity 0 is off: nothing is computed.
3. Grid mode (22x18 cells, each on or off): a cell moved when the share of its changed pixels
   reaches a threshold also set by the sensitivity (50 % at 1 down to 2 % at 100; 26 % at 50);
   motion is any enabled cell that moved.
4. Expert mode (up to 8 rectangles): an area moved when the share of its changed pixels, with
   its own sensitivity, reaches its `proportion` (%), so a small object needs a low proportion.
   With `day_night` = "schedule" each area uses its night sensitivity and proportion from
   `night_start` to `day_start` (local time, across midnight when night starts later in the
   day than day does); equal times mean always day.

The detector says active while motion is seen; the bus holds an inactive back (hold-off), so
an object that pauses for a moment does not split one event into several.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from vigil.config.events import GRID_COLUMNS, GRID_ROWS, ChannelDetection, MotionSettings
from vigil.config.weekly import minutes
from vigil.events.picture import Average, Picture, Plane, area_slices, scaled

BACKGROUND_TAU_S = 0.5
PIXEL_THRESHOLD = (60.0, 6.0)  # luma levels at sensitivity 1 and 100
CELL_SHARE = (0.5, 0.02)  # of a grid cell's pixels, at sensitivity 1 and 100
DAY_NIGHT_CHECK_S = 5.0  # how often the local time is looked at (picture time)


def is_night(motion: MotionSettings, now: datetime) -> bool:
    """Whether the night set applies at local time `now`."""
    if motion.day_night != "schedule":
        return False
    time_of_day = now.hour * 60 + now.minute
    day, night = minutes(motion.day_start), minutes(motion.night_start)
    if night > day:  # e.g. 18:00 -> 06:00, across midnight
        return time_of_day >= night or time_of_day < day
    return night <= time_of_day < day


@dataclass(frozen=True)
class _GridLayout:
    rows: np.ndarray[Any, np.dtype[np.intp]]  # first row of each cell row
    columns: np.ndarray[Any, np.dtype[np.intp]]
    cell_pixels: Plane
    enabled: np.ndarray[Any, np.dtype[np.bool_]]  # (GRID_ROWS, GRID_COLUMNS)

    @classmethod
    def of(cls, grid: list[str], shape: tuple[int, ...]) -> _GridLayout:
        height, width = shape[0], shape[1]
        rows = np.arange(GRID_ROWS) * height // GRID_ROWS
        columns = np.arange(GRID_COLUMNS) * width // GRID_COLUMNS
        heights = np.diff(np.append(rows, height))
        widths = np.diff(np.append(columns, width))
        enabled = np.array([[c == "1" for c in row] for row in grid], dtype=bool)
        return cls(rows, columns, np.outer(heights, widths).astype(np.float32), enabled)

    def moved(self, changed: np.ndarray[Any, np.dtype[np.bool_]], share: float) -> bool:
        per_row = np.add.reduceat(changed, self.rows, axis=0, dtype=np.uint16)
        counts = np.add.reduceat(per_row, self.columns, axis=1, dtype=np.uint16)
        return bool(((counts >= share * self.cell_pixels) & self.enabled).any())


class MotionDetector:
    event = "vmd"

    def __init__(self, local_now: Callable[[], datetime]) -> None:
        self._local_now = local_now
        self._background = Average(BACKGROUND_TAU_S)
        self._layout: _GridLayout | None = None
        self._layout_of: tuple[list[str], tuple[int, ...]] | None = None
        self._night = False
        self._night_checked: float | None = None
        self._night_of: tuple[str, str] | None = None  # the day and night starts it used
        self.moved_areas: list[int] = []  # expert mode: the areas that moved in the last picture

    def reset(self) -> None:
        self._background.reset()
        self._night_checked = None
        self.moved_areas = []

    def update(self, picture: Picture, detection: ChannelDetection) -> bool:
        small = picture.small
        background = self._background.value
        if background is None or background.shape != small.shape:
            self._background.reset()
            self._background.update(small, picture.at)
            return False
        difference = np.abs(small - background)
        self._background.update(small, picture.at)
        motion = detection.motion
        if motion.mode == "grid":
            return self._grid_moved(difference, motion)
        return self._areas_moved(difference, motion, picture.at)

    def _grid_moved(self, difference: Plane, motion: MotionSettings) -> bool:
        if motion.sensitivity == 0:
            return False
        if self._layout is None or self._layout_of != (motion.grid, difference.shape):
            self._layout = _GridLayout.of(motion.grid, difference.shape)
            self._layout_of = (motion.grid, difference.shape)
        changed = difference > scaled(motion.sensitivity, *PIXEL_THRESHOLD)
        return self._layout.moved(changed, scaled(motion.sensitivity, *CELL_SHARE))

    def _areas_moved(self, difference: Plane, motion: MotionSettings, at: float) -> bool:
        night = self._is_night(motion, at)
        moved = []
        for area in motion.areas:
            sensitivity = area.night_sensitivity if night else area.sensitivity
            if sensitivity == 0:
                continue
            proportion = area.night_proportion if night else area.proportion
            region = difference[area_slices(area.area, difference.shape)]
            changed = np.count_nonzero(region > scaled(sensitivity, *PIXEL_THRESHOLD))
            if changed * 100 >= proportion * region.size:
                moved.append(area.id)
        self.moved_areas = moved
        return bool(moved)

    def _is_night(self, motion: MotionSettings, at: float) -> bool:
        if motion.day_night != "schedule":
            return False
        checked, starts = self._night_checked, (motion.day_start, motion.night_start)
        if checked is None or not 0 <= at - checked < DAY_NIGHT_CHECK_S or starts != self._night_of:
            self._night = is_night(motion, self._local_now())
            self._night_checked, self._night_of = at, starts
        return self._night
