"""Scene change (`scenechangedetection`): the camera was moved and looks at something else.

Method, on a signature of the picture: the `small` picture's means over a 32x18 grid of
blocks, normalised by the picture's own mean and standard deviation, so that light changing
over the whole picture (lamps on, a cloud) leaves the signature as it is.

1. Reference: a running average of the signature with a 60 s time constant (the view as it
   has long been); the previous picture's signature says whether the picture is still moving.
2. A block differs when its signature is further from the reference than a threshold set by
   the sensitivity (1.5 standard deviations at sensitivity 1 down to 0.3 at 100; 0.9 at 50).
3. The view moved when most of the picture (half of the blocks or more) differs from the
   reference while the picture itself is steady (at most a third of the blocks changed since the
   previous picture), and that has held for 2 s. Motion is told apart by both: a passing
   object changes a part of the picture, and a large one that fills it is not steady.
4. On a change the new view becomes the reference at once: the event is raised once per move
   and ends by itself (after the bus's hold-off).

The reference learns only while the view is not in question. Sensitivity 0 is off; a flat
picture (the view covered) is tampering, and neither starts nor confirms a change.
"""

from __future__ import annotations

import numpy as np

from vigil.config.events import ChannelDetection
from vigil.events.picture import Average, Held, Picture, Plane, scaled

BLOCKS = (18, 32)  # rows, columns of the signature
REFERENCE_TAU_S = 60.0
HOLD_S = 2.0
BLOCK_THRESHOLD = (1.5, 0.3)  # standard deviations, at sensitivity 1 and 100
MOST = 0.5  # share of blocks that differ from the reference: the view moved
STEADY_CHANGE = 0.25  # standard deviations since the previous picture: a block still moving
STEADY_SHARE = 1 / 3  # at most this share of blocks still moving: the picture is steady


def signature(small: Plane) -> Plane:
    """Block means of the picture over BLOCKS, normalised by its mean and deviation."""
    rows, cols = BLOCKS
    height, width = small.shape[0] // rows * rows, small.shape[1] // cols * cols
    if not height or not width:
        blocks = small
    else:
        cropped = small[:height, :width]
        blocks = cropped.reshape(rows, height // rows, cols, width // cols).mean(axis=(1, 3))
    result: Plane = (blocks - blocks.mean()) / (blocks.std() + 1.0)
    return result


class SceneChangeDetector:
    event = "scenechangedetection"

    def __init__(self) -> None:
        self._reference = Average(REFERENCE_TAU_S)
        self._previous: Plane | None = None
        self._held = Held(HOLD_S)
        self.differing = 0.0  # share of blocks differing from the reference, last picture
        self.moving = 0.0  # share of blocks still changing, last picture

    def reset(self) -> None:
        self._reference.reset()
        self._previous = None
        self._held.reset()

    def update(self, picture: Picture, detection: ChannelDetection) -> bool:
        if picture.flat:
            self._held.reset()
            return False
        current = signature(picture.small)
        reference, previous = self._reference.value, self._previous
        self._previous = current
        if reference is None or previous is None or reference.shape != current.shape:
            self._reference.reset()
            self._held.reset()
            self._reference.update(current, picture.at)
            return False
        threshold = scaled(detection.scene_change.sensitivity, *BLOCK_THRESHOLD)
        self.differing = float(np.mean(np.abs(current - reference) > threshold))
        self.moving = float(np.mean(np.abs(current - previous) > STEADY_CHANGE))
        candidate = self.differing >= MOST and self.moving <= STEADY_SHARE
        if self._held.update(candidate, picture.at):
            self._reference.value = current.copy()  # the new view is the norm from now on
            self._held.reset()
            return True
        if not candidate:
            self._reference.update(current, picture.at)
        return False
