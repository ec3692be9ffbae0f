"""Video tampering (`tamperdetection`): the view covered, sprayed or blinded.

Method: a covered lens shows a flat picture. The detail of the configured area is measured as
the standard deviation of its luma on the `small` picture (block means of 4x4 pixels, so sensor
noise hardly counts). A reference of that detail is learned as a running average with a 60 s
time constant (following dusk and dawn), only from pictures that are not tampered with, so a
long cover does not become the norm. The area counts as covered when its detail falls below a
share of the reference set by the sensitivity (5 % at sensitivity 1 up to 60 % at 100; 32 % at
the default 50), or below 1 luma level whatever the reference (a view covered from the start).
Tampering is raised once that has held for 2 s without a break, and ends with the first picture
that shows detail again. Sensitivity 0 is off.

A defocused picture keeps its large-scale contrast, so it is left to the defocus detector.
"""

from __future__ import annotations

from vigil.config.events import ChannelDetection
from vigil.events.picture import FLAT_CONTRAST, Average, Held, Picture, area_slices, scaled

REFERENCE_TAU_S = 60.0
HOLD_S = 2.0
DETAIL_LIMIT = (0.05, 0.6)  # share of the reference detail, at sensitivity 1 and 100


class TamperDetector:
    event = "tamperdetection"

    def __init__(self) -> None:
        self._reference = Average(REFERENCE_TAU_S)
        self._held = Held(HOLD_S)
        self.detail = 0.0  # of the last picture, for the log and the tests

    def reset(self) -> None:
        self._reference.reset()
        self._held.reset()

    def update(self, picture: Picture, detection: ChannelDetection) -> bool:
        tamper = detection.tamper
        small = picture.small
        self.detail = detail = float(small[area_slices(tamper.area, small.shape)].std())
        reference = self._reference.value
        limit = scaled(tamper.sensitivity, *DETAIL_LIMIT)
        covered = detail < FLAT_CONTRAST or (reference is not None and detail < limit * reference)
        if not covered:
            self._reference.update(detail, picture.at)
        return self._held.update(covered, picture.at)
