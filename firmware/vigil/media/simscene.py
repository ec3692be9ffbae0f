"""Drawing the simulated sensor's scene (`vigil.media.source.Scene`) into its pictures, and
its image processing (`SensorTuner`: brightness, contrast, saturation, hue, sharpness, flips).

Imported by `SimSensor` only once a scene or a control is set, so the plain pattern never
loads numpy.
Pictures are yuv420p as numpy arrays in PyAV's layout (the Y plane's rows, then U's and V's
samples, as `(height * 3 / 2, width)`); every operation is a numpy slice or a swscale call,
never a loop over pixels. The painter lives in the capture thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

if TYPE_CHECKING:
    from vigil.media.source import Scene

Picture = np.ndarray[Any, np.dtype[np.uint8]]

BLACK, WHITE, NEUTRAL = 16, 235, 128  # video-range luma, and chroma without colour
COVER_NOISE = 5  # a covered lens: luma 16..20, changing every frame
BLUR_FACTOR = 16  # the blur: down to 1/16 of the size (area average) and back up (bilinear)
SHIFT = 3  # the moved view: the picture shifted by a third of its height and width
SHARPNESS_NEUTRAL = 128  # the simulated sensor's sharpness that leaves the picture as it is


class ScenePainter:
    """Draws a scene into pictures of one size; keeps what the scene needs between frames."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._still: Picture | None = None  # the pattern frozen when `still` or `shift` began
        self._shifted: Picture | None = None
        self._box_rect: tuple[int, int, int, int] | None = None  # in pixels
        self._box_at = (0, 0)
        self._box_step = (0, 0)
        self._noise: Picture | None = None
        self._rng = np.random.default_rng()
        self._down = VideoReformatter()
        self._up = VideoReformatter()

    def paint(self, frame: av.VideoFrame, scene: Scene) -> av.VideoFrame:
        if scene.cover:
            return av.VideoFrame.from_ndarray(self._covered(), format="yuv420p")
        picture = self._base(frame, scene)
        if scene.box is not None:
            self._draw_box(picture, scene.box)
        else:
            self._box_rect = None
        painted = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        return self._blurred(painted) if scene.blur else painted

    # -- the pattern ------------------------------------------------------------------------
    def _base(self, frame: av.VideoFrame, scene: Scene) -> Picture:
        """A writable copy of the picture the scene starts from."""
        if not (scene.still or scene.shift):
            self._still = self._shifted = None
            picture: Picture = frame.to_ndarray()  # a copy (PyAV stacks the planes)
            return picture
        if self._still is None:
            self._still = frame.to_ndarray()
        if not scene.shift:
            return self._still.copy()
        if self._shifted is None:
            self._shifted = self._shift(self._still)
        return self._shifted.copy()

    def _planes(self, picture: Picture) -> tuple[Picture, Picture, Picture]:
        return planes(picture, self.width, self.height)

    def _shift(self, still: Picture) -> Picture:
        shifted = still.copy()
        for source, target in zip(self._planes(still), self._planes(shifted), strict=True):
            rows, cols = source.shape
            target[...] = np.roll(source, (rows // SHIFT, cols // SHIFT), axis=(0, 1))
        return shifted

    # -- the box ----------------------------------------------------------------------------
    def _draw_box(self, picture: Picture, box: tuple[int, int, int, int]) -> None:
        rect = self._pixels(box)
        if rect != self._box_rect:
            self._start_box(rect)
        x, y, bw, bh = self._next_box_position()
        luma, u, v = self._planes(picture)
        rim = max(1, min(bw, bh) // 6)
        luma[y : y + bh, x : x + bw] = BLACK
        luma[y + rim : y + bh - rim, x + rim : x + bw - rim] = WHITE
        for plane in (u, v):
            plane[y // 2 : (y + bh) // 2, x // 2 : (x + bw) // 2] = NEUTRAL

    def _pixels(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        x, y, w, h = box
        left, top = x * self.width // 1000, y * self.height // 1000
        right = max(left + 2, (x + w) * self.width // 1000)
        bottom = max(top + 2, (y + h) * self.height // 1000)
        return left, top, min(right, self.width) - left, min(bottom, self.height) - top

    def _start_box(self, rect: tuple[int, int, int, int]) -> None:
        """The box a third of the rectangle's size at its top left, moving an eighth of its
        size a frame (at least 2 pixels)."""
        self._box_rect = rect
        _, _, w, h = rect
        bw, bh = max(2, w // 3), max(2, h // 3)
        self._box_at = (rect[0], rect[1])
        self._box_step = (max(2, bw // 8), max(2, bh // 8))

    def _next_box_position(self) -> tuple[int, int, int, int]:
        assert self._box_rect is not None
        left, top, w, h = self._box_rect
        bw, bh = max(2, w // 3), max(2, h // 3)
        (x, y), (dx, dy) = self._box_at, self._box_step
        x, dx = _bounce(x + dx, dx, left, left + w - bw)
        y, dy = _bounce(y + dy, dy, top, top + h - bh)
        self._box_at, self._box_step = (x, y), (dx, dy)
        return x, y, bw, bh

    # -- cover and blur ---------------------------------------------------------------------
    def _covered(self) -> Picture:
        """Flat and dark, with a little noise that differs every frame (a window into one
        noise buffer at a random offset: no random numbers drawn per pixel and frame)."""
        w, h = self.width, self.height
        luma = w * h
        if self._noise is None:
            self._noise = self._rng.integers(
                BLACK, BLACK + COVER_NOISE, luma + 4096, dtype=np.uint8
            )
        picture = np.full((h * 3 // 2, w), NEUTRAL, dtype=np.uint8)
        offset = int(self._rng.integers(0, 4096))
        picture.reshape(-1)[:luma] = self._noise[offset : offset + luma]
        return picture

    def _blurred(self, frame: av.VideoFrame) -> av.VideoFrame:
        """Defocused: scaled down to a sixteenth and back up, in swscale."""
        small_w = max(2, self.width // BLUR_FACTOR) & ~1
        small_h = max(2, self.height // BLUR_FACTOR) & ~1
        small = self._down.reformat(frame, small_w, small_h, interpolation=Interpolation.AREA)
        blurred: av.VideoFrame = self._up.reformat(
            small, self.width, self.height, interpolation=Interpolation.BILINEAR
        )
        return blurred


def planes(picture: Picture, w: int, h: int) -> tuple[Picture, Picture, Picture]:
    """Views of the Y, U and V planes of a picture in PyAV's yuv420p layout."""
    flat = picture.reshape(-1)
    luma = w * h
    chroma = (w // 2) * (h // 2)
    return (
        flat[:luma].reshape(h, w),
        flat[luma : luma + chroma].reshape(h // 2, w // 2),
        flat[luma + chroma : luma + 2 * chroma].reshape(h // 2, w // 2),
    )


class SensorTuner:
    """The simulated sensor's processing, from its controls (`vigil.media.source`):

    - luma through a 256-entry table: (Y - 128) * contrast / 128 + 128 + brightness - 128;
    - chroma through a 65536-entry table indexed by (U, V): the colour difference turned by
      hue * 180 / 128 degrees and scaled by saturation / 128 (saturation 0 is grey);
    - sharpness as an unsharp mask on the luma: the picture blurred in swscale (half size,
      area average, and back up), its detail (luma - blurred) scaled by 0 (sharpness 0: the
      blurred picture) to 1 (128) to 3 (255);
    - the flips as reversed slices of every plane.

    The tables are rebuilt only when the controls change; per frame it is a few numpy
    gathers and copies and two swscale passes for sharpness (measured on a 1080p frame on the
    2-core development machine, shared: 5-7 ms for luma and chroma, 7 ms for sharpness, 14 ms
    for all of them with both flips; a frame lasts 40 ms at 25 fps).
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._controls: dict[str, int] = {}
        self._luma: Picture | None = None
        self._chroma: tuple[Picture, Picture] | None = None
        self._down = VideoReformatter()
        self._up = VideoReformatter()

    def tune(self, frame: av.VideoFrame, controls: dict[str, int]) -> av.VideoFrame:
        if controls != self._controls:
            self._build(controls)
        picture: Picture = frame.to_ndarray()  # a copy (PyAV stacks the planes)
        luma, u, v = planes(picture, self.width, self.height)
        if self._luma is not None:
            luma[...] = np.take(self._luma, luma)
        if controls["sharpness"] != SHARPNESS_NEUTRAL:
            self._sharpen(luma, controls["sharpness"])
        if self._chroma is not None:
            index = np.left_shift(u, 8, dtype=np.uint16)
            index |= v
            u[...] = np.take(self._chroma[0], index)
            v[...] = np.take(self._chroma[1], index)
        for plane in (luma, u, v):
            if controls["horizontal_flip"]:
                plane[...] = plane[:, ::-1].copy()
            if controls["vertical_flip"]:
                plane[...] = plane[::-1].copy()
        return av.VideoFrame.from_ndarray(picture, format="yuv420p")

    def _sharpen(self, luma: Picture, sharpness: int) -> None:
        """Unsharp mask, in sixteenths: detail gain 0..16 below neutral, 16..48 above."""
        if sharpness < SHARPNESS_NEUTRAL:
            gain = sharpness * 16 // SHARPNESS_NEUTRAL
        else:
            gain = 16 + (sharpness - SHARPNESS_NEUTRAL) * 32 // (255 - SHARPNESS_NEUTRAL)
        grey = av.VideoFrame.from_ndarray(luma, format="gray")
        w, h = self.width, self.height
        small = self._down.reformat(
            grey, max(2, w // 2), max(2, h // 2), interpolation=Interpolation.AREA
        )
        blurred = self._up.reformat(small, w, h, interpolation=Interpolation.BILINEAR)
        base = blurred.to_ndarray().astype(np.int16)
        detail = luma.astype(np.int16)
        detail -= base
        detail *= gain
        detail >>= 4
        detail += base
        luma[...] = np.clip(detail, 0, 255)

    def _build(self, controls: dict[str, int]) -> None:
        self._controls = dict(controls)
        brightness, contrast = controls["brightness"] - 128, controls["contrast"] / 128
        self._luma = None
        if brightness or contrast != 1:
            levels = np.arange(256, dtype=np.float32)
            luma = (levels - 128) * contrast + 128 + brightness
            self._luma = np.clip(np.rint(luma), 0, 255).astype(np.uint8)
        saturation, hue = controls["saturation"] / 128, controls["hue"]
        self._chroma = None
        if saturation != 1 or hue:
            turn = np.pi * hue / 128
            du, dv = np.meshgrid(np.arange(256) - 128.0, np.arange(256) - 128.0, indexing="ij")
            cos, sin = saturation * np.cos(turn), saturation * np.sin(turn)
            new_u = np.clip(np.rint(128 + du * cos - dv * sin), 0, 255).astype(np.uint8)
            new_v = np.clip(np.rint(128 + du * sin + dv * cos), 0, 255).astype(np.uint8)
            self._chroma = (new_u.reshape(-1), new_v.reshape(-1))


def _bounce(position: int, step: int, low: int, high: int) -> tuple[int, int]:
    """A position kept inside [low, high], turning the step back at either end."""
    if position >= high:
        return max(low, high), -abs(step)
    if position <= low:
        return low, abs(step)
    return position, step
