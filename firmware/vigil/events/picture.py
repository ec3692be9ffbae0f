"""What the video detectors share: the analysed picture and the small tools they all use.

A `Picture` is one luma frame of the channel's sub stream (e.g. 640x360, uint8) and the
capture time. Detectors look at it at full size (sharpness) or as `small`: the mean of each
4x4 block (160x90 for 640x360; 8x8 for a 1280x720 sub stream) as float32, made once per frame
when a detector first asks (`functools.cached_property`). Averaging 16 pixels divides sensor
noise by 4, and every operation after it costs a sixteenth. The block means are sums of 2x2
neighbours, halving the picture as often as needed: strided adds, several times faster than
numpy's reductions over a reshaped array.

Time is the capture time in seconds (time.monotonic()), so the detectors' time constants and
hold times do not depend on the analysis rate. Everything is numpy vector operations, never a
loop over pixels.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vigil.config.events import Area, ChannelDetection

Luma = np.ndarray[Any, np.dtype[np.uint8]]
Plane = np.ndarray[Any, np.dtype[np.float32]]

SMALL_WIDTH = 160  # the `small` scale's width, near enough (the factor is a whole number)
FLAT_CONTRAST = 1.0  # luma standard deviation (`small`) below which a picture shows nothing


def block_mean(luma: Luma, factor: int) -> Plane:
    """The mean of each factor x factor block (factor a power of 2 up to 16; a trailing
    partial block is left out)."""
    sums = luma.astype(np.uint16)  # exact: at most 256 pixels of 255 in a block
    size = 1
    while size < factor:
        rows, cols = sums.shape[0] // 2 * 2, sums.shape[1] // 2 * 2
        sums = (
            sums[0:rows:2, 0:cols:2]
            + sums[1:rows:2, 0:cols:2]
            + sums[0:rows:2, 1:cols:2]
            + sums[1:rows:2, 1:cols:2]
        )
        size *= 2
    return sums.astype(np.float32) * np.float32(1 / size**2)


def small_factor(width: int) -> int:
    """The power of 2 (1-16) that brings a picture's width nearest to SMALL_WIDTH."""
    factor = 1
    while factor < 16 and abs(width / (factor * 2) - SMALL_WIDTH) <= abs(
        width / factor - SMALL_WIDTH
    ):
        factor *= 2
    return factor


@dataclass(frozen=True, eq=False)
class Picture:
    luma: Luma
    at: float  # capture time, time.monotonic() seconds

    @property
    def size(self) -> tuple[int, int]:
        return self.luma.shape[1], self.luma.shape[0]

    @functools.cached_property
    def small(self) -> Plane:
        return block_mean(self.luma, small_factor(self.luma.shape[1]))

    @functools.cached_property
    def contrast(self) -> float:
        """The standard deviation of `small`."""
        return float(self.small.std())

    @property
    def flat(self) -> bool:
        """Nothing to see (the view covered): a matter for tampering, not focus or framing."""
        return self.contrast < FLAT_CONTRAST


class Detector(Protocol):
    """One video detector of one channel. Lives in the channel's detection thread."""

    event: str  # the ISAPI eventType it raises

    def wanted(self, detection: ChannelDetection) -> bool:
        """Whether the settings ask for it (enabled, and not at sensitivity 0)."""
        ...

    def update(self, picture: Picture, detection: ChannelDetection) -> bool:
        """Look at the next picture; True while the event is on."""
        ...

    def reset(self) -> None:
        """Forget what was learned (the view may differ when pictures come back)."""
        ...


def scaled(sensitivity: int, at_1: float, at_100: float) -> float:
    """A detector's parameter for a sensitivity of 1-100, linear between its two ends."""
    return at_1 + (at_100 - at_1) * (min(max(sensitivity, 1), 100) - 1) / 99


def area_slices(area: Area, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The rows and columns of a plane that an area (thousandths, origin top left) covers;
    never empty."""
    rows, cols = shape[0], shape[1]
    top = min(area.y * rows // 1000, rows - 1)
    left = min(area.x * cols // 1000, cols - 1)
    bottom = max(top + 1, math.ceil((area.y + area.height) * rows / 1000))
    right = max(left + 1, math.ceil((area.x + area.width) * cols / 1000))
    return slice(top, min(bottom, rows)), slice(left, min(right, cols))


class Average:
    """An exponential running average with a time constant (a number or a plane)."""

    def __init__(self, tau_s: float) -> None:
        self.tau_s = tau_s
        self.value: Any = None
        self._at = 0.0

    def update(self, value: Any, at: float) -> Any:
        if self.value is None:
            self.value = value.copy() if isinstance(value, np.ndarray) else value
        else:
            weight = 1 - math.exp(-max(at - self._at, 0.0) / self.tau_s)
            if isinstance(self.value, np.ndarray):
                self.value += np.float32(weight) * (value - self.value)
            else:
                self.value += weight * (value - self.value)
        self._at = at
        return self.value

    def reset(self) -> None:
        self.value = None


class Held:
    """A condition that counts once it has held for `hold_s` without a break."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._since: float | None = None

    def update(self, condition: bool, at: float) -> bool:
        if not condition:
            self._since = None
            return False
        if self._since is None:
            self._since = at
        return at - self._since >= self.hold_s

    def reset(self) -> None:
        self._since = None
