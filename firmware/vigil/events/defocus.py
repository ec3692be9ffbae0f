"""Defocus (`defocus`): the picture lost its sharpness (the lens turned, fogged or smeared).

Method, on the full sub stream picture (the finest edges are the first a defocus takes):

1. Sharpness: the mean absolute Laplacian (4 x centre - the 4 neighbours), divided by the
   picture's contrast (standard deviation of `small`) + 1, so that light getting dimmer or
   brighter (which scales edges and contrast alike) does not read as defocus.
2. Reference: a running average of the sharpness with a 60 s time constant, learned only from
   pictures that are not defocused.
3. Defocused when the sharpness falls below a share of the reference set by the sensitivity
   (10 % at sensitivity 1 up to 75 % at 100; 42 % at the default 50), held for 2 s without a
   break; it ends with the first sharp picture. Sensitivity 0 is off.

A flat picture (`Picture.flat`: the view covered) says nothing about focus: it is tampering,
and neither starts nor ends defocus.
"""

from __future__ import annotations

import numpy as np

from vigil.config.events import ChannelDetection
from vigil.events.picture import Average, Held, Luma, Picture, scaled

REFERENCE_TAU_S = 60.0
HOLD_S = 2.0
SHARPNESS_LIMIT = (0.10, 0.75)  # share of the reference, at sensitivity 1 and 100


def sharpness(luma: Luma, contrast: float) -> float:
    """Mean absolute Laplacian over contrast + 1. In int16, exact (|Laplacian| <= 4 x 255) and
    several times faster than in floats."""
    pixels = luma.astype(np.int16)
    laplacian = pixels[1:-1, 1:-1] * 4
    laplacian -= pixels[:-2, 1:-1]
    laplacian -= pixels[2:, 1:-1]
    laplacian -= pixels[1:-1, :-2]
    laplacian -= pixels[1:-1, 2:]
    np.abs(laplacian, out=laplacian)
    return int(laplacian.sum(dtype=np.int64)) / max(laplacian.size, 1) / (contrast + 1.0)


class DefocusDetector:
    event = "defocus"

    def __init__(self) -> None:
        self._reference = Average(REFERENCE_TAU_S)
        self._held = Held(HOLD_S)
        self._active = False
        self.sharpness = 0.0  # of the last picture, for the log and the tests

    def reset(self) -> None:
        self._reference.reset()
        self._held.reset()
        self._active = False

    def update(self, picture: Picture, detection: ChannelDetection) -> bool:
        if picture.flat:
            return self._active  # covered: no news about focus
        self.sharpness = value = sharpness(picture.luma, picture.contrast)
        reference = self._reference.value
        limit = scaled(detection.defocus.sensitivity, *SHARPNESS_LIMIT)
        blurred = reference is not None and value < limit * reference
        if not blurred:
            self._reference.update(value, picture.at)
        self._active = self._held.update(blurred, picture.at)
        return self._active
