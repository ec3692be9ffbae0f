"""Burning the OSD (channel name, date/time, text lines) and privacy masks into captured frames.

The channel's capture thread draws into each frame before any stream's encoder or snapshot sees
it, so every stream, recording and picture shows the same thing. The frame taps (the event
detectors' pictures) see the masks but not the text (`Overlay.mask`, taps, `Overlay.label`):
what is masked is not analysed, and the date's digits changing every second, or crisp white
text on a covered or defocused view, must not look like motion, a picture or sharpness. (On
Hikvision cameras too the OSD is added at the encoder, after analysis.)

Choices where the issue is silent:

- The font is Pillow's built-in bitmap font (6x11 cells, printable ASCII), kept as data in this
  module (the daemon never loads Pillow) and unpacked once into a glyph atlas; text is scaled
  up by whole pixels (np.repeat), so it stays crisp and blocky like a camera's OSD. A text
  bitmap is composed once per distinct string and cached; the date/time string changes once a
  second and only then is a new bitmap composed.
- Text is white with a dark outline (half a scaled font pixel wide), colourless: the chroma
  under the outline box is set neutral. Positions and mask edges are rounded to even pixels,
  so a 4:2:0 chroma sample is covered whole or not at all.
- Masks are drawn first, text over them. Black is 16 (white 235) in limited range, 0 (255) in
  full range (`yuvj*` formats or a frame marked full range); chroma neutral is 128.
- Pixels are written in place through numpy views of the frame's planes for yuv420p, yuvj420p,
  nv12 and yuyv422 (the sim's and V4L2's formats): no copy, no conversion. Any other format is
  converted once to yuv420p first (logged once).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vigil.board.clock import parse_time_zone
from vigil.config.events import Area
from vigil.config.image import ChannelImage, DateTimeOverlay
from vigil.media.source import CapturedFrame

log = logging.getLogger(__name__)

Pixels = np.ndarray[Any, np.dtype[np.uint8]]
Mask = np.ndarray[Any, np.dtype[np.bool_]]

FIRST_GLYPH, LAST_GLYPH = 0x20, 0x7E
FONT_HEIGHT_SHARE = {"small": 45, "medium": 30, "large": 20, "auto": 30}  # picture height / char
NEUTRAL = 128
LIMITED = (16, 235)  # black, white
FULL = (0, 255)
AVCOL_RANGE_JPEG = 2
IN_PLACE = ("yuv420p", "yuvj420p", "nv12", "yuyv422")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DATE_PATTERNS = {
    "YYYY-MM-DD": "%Y-%m-%d",
    "MM-DD-YYYY": "%m-%d-%Y",
    "DD-MM-YYYY": "%d-%m-%Y",
    "YYYY/MM/DD": "%Y/%m/%d",
    "MM/DD/YYYY": "%m/%d/%Y",
    "DD/MM/YYYY": "%d/%m/%Y",
}
TEXT_CACHE_MAX = 16  # distinct strings kept (the date/time string changes every second)


# Pillow's built-in bitmap font (`ImageFont.load_default_imagefont()`, drawn with `ImageDraw.text`
# into 6x11 cells) for printable ASCII, one byte a row, its bit 5 the leftmost pixel. Kept here
# rather than drawn at start-up: importing Pillow for these 1045 bytes would keep about 4 MB of
# its libraries resident in the daemon. tests/unit/test_osd.py checks it against Pillow's drawing.
FONT_CELL = (6, 11)  # width, height
FONT_ROWS = base64.b64decode(
    "AAAAAAAAAAAAAAAAAAAYGBgYABgAAAAAABQUFAAAAAAAAAAUFD4UFD4UFAAACB4yPB4GNjwIAAAAOCo8CB4qDgAAAAAA"
    "HDAYPiw+AAAAAAwIEAAAAAAAAAAABAgYGBgYCAQAAAAQCAwMDAwIEAAAAAg8GCQAAAAAAAAAAAgIPggIAAAAAAAAAAAA"
    "AAAMCBAAAAAAAD4AAAAAAAAAAAAAAAAAGAAAAAACAgQECAgQEAAAABw2NjY2NhwAAAAADDwMDAwMPwAAAAAcNgYMGDY+"
    "AAAAABw2BhwGNhwAAAAABg4WNj8GBgAAAAA+MDw2BiY8AAAAABw2MDw2NhwAAAAAPjYGDAwYGAAAAAAcNjYcNjYcAAAA"
    "ABw2Nh4GNhwAAAAAAAAAGAAAGAAAAAAAAAAYAAAYECAAAAAMGDAYDAAAAAAAAAA8ADwAAAAAAAAAGAwGDBgAAAAAAAAc"
    "JgwYABgAAAAAHDImKionMBwAAAAAPBwUPjY3AAAAAAA8Njw2NjwAAAAAAB42MDA2HAAAAAAAPDY2NjY8AAAAAAA+MDww"
    "Nj4AAAAAAD4wPDAwOAAAAAAAHDYwPjYeAAAAAAA3Nj42NjcAAAAAADwYGBgYPAAAAAAAHgwMLCw4AAAAAAA2NDg8NjsA"
    "AAAAADgwMDA2PgAAAAAAIjY2PioqAAAAAAA3Ojo2NjIAAAAAABw2NjY2HAAAAAAAPDY2PDA4AAAAAAAcNjY2NhwGAAAA"
    "ADw2Njw2OwAAAAAAHjI8DiY8AAAAAAA+GhgYGDwAAAAAADc2NjY2HAAAAAAANzYUHBwIAAAAAAArKio+HBQAAAAAADMe"
    "DAweMwAAAAAAMzMeDAweAAAAAAA+NgwYNj4AAAAAHBgYGBgYGBwAAAAgIBAQCAgEBAAAABwMDAwMDAwcAAAACBw2AAAA"
    "AAAAAAAAAAAAAAAAAD8AABgIBAAAAAAAAAAAAAAcNh42PwAAAAAwMDw2NjY8AAAAAAAAHDYwNhwAAAAADgYeNjY2HwAA"
    "AAAAABw2PjAeAAAAAA4YPhgYGD4AAAAAAAAbNjY2HgY8AAAwMDw2NjY2AAAAAAwAPAwMDD8AAAAADAA8DAwMDAw4AAAw"
    "MDY8ODw3AAAAADwMDAwMDD8AAAAAAAA8PioqKgAAAAAAACw2NjY2AAAAAAAAHDY2NhwAAAAAAAA8NjY2PDA4AAAAABs2"
    "NjYeBg8AAAAANx0YGDwAAAAAAAAeOB4HPgAAAAAYGD4YGBsOAAAAAAAANjY2Nh8AAAAAAAA2NhwcCAAAAAAAACsqPh4U"
    "AAAAAAAAOx4MHjcAAAAAAAA3NjYUHBgwAAAAAD4sGDY+AAAAAAYMDBgMDAwGAAAAAAgICAgICAgAAAAwGBgMGBgYMAAA"
    "AAAAGiwAAAAAAA=="
)


class GlyphAtlas:
    """Printable ASCII as boolean cells of one size, from Pillow's bitmap font (`FONT_ROWS`)."""

    def __init__(self) -> None:
        self.cell_width, self.cell_height = FONT_CELL
        rows = np.frombuffer(FONT_ROWS, dtype=np.uint8).reshape(-1, self.cell_height, 1)
        bits = np.arange(self.cell_width - 1, -1, -1, dtype=np.uint8)
        cells = (rows >> bits) & 1 == 1  # glyph, row, column
        chars = [chr(c) for c in range(FIRST_GLYPH, LAST_GLYPH + 1)]
        self._glyphs: dict[str, Mask] = dict(zip(chars, cells, strict=True))

    def glyph(self, char: str) -> Mask:
        """The cell of `char`; '?' for a character the font does not have."""
        return self._glyphs.get(char, self._glyphs["?"])

    def render(self, text: str, scale: int) -> Mask:
        """`text` on one line, each pixel of the font a `scale` x `scale` block."""
        row = np.concatenate([self.glyph(c) for c in text], axis=1)
        return row.repeat(scale, axis=0).repeat(scale, axis=1)


@dataclass(frozen=True)
class TextBitmap:
    """A rendered string: its glyph pixels and the outline around them, even-sized."""

    fill: Mask
    outline: Mask  # the glyph pixels grown by the outline width (fill included)
    _chroma: dict[tuple[int, int], Mask] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, atlas: GlyphAtlas, text: str, scale: int) -> TextBitmap:
        pad = max(1, scale // 2)  # the outline's width
        glyphs = atlas.render(text, scale)
        h, w = glyphs.shape
        fill = np.zeros((_even(h + 2 * pad), _even(w + 2 * pad)), dtype=bool)
        fill[pad : pad + h, pad : pad + w] = glyphs
        outline = fill.copy()
        for dy in range(-pad, pad + 1):  # a square dilation: shifted copies, OR-ed
            for dx in range(-pad, pad + 1):
                outline |= np.roll(fill, (dy, dx), axis=(0, 1))
        return cls(fill, outline)

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.fill.shape
        return width, height

    def chroma(self, sx: int, sy: int) -> Mask:
        """The outline box at chroma resolution: a sample is neutral if any of its pixels is."""
        key = (sx, sy)
        if key not in self._chroma:
            h, w = self.outline.shape
            self._chroma[key] = self.outline.reshape(h // sy, sy, w // sx, sx).any(axis=(1, 3))
        return self._chroma[key]


@dataclass(frozen=True)
class Planes:
    """Writable views of a frame: luma (h, w), chroma at (sx, sy) subsampling."""

    luma: Pixels
    chroma: tuple[Pixels, ...]  # U and V, or one interleaved (h/sy, w/sx, 2) view
    sx: int
    sy: int
    black: int
    white: int


def frame_planes(frame: av.VideoFrame) -> Planes:
    """Numpy views into the frame's own buffers (writes change the frame)."""
    name = frame.format.name
    full = name.startswith("yuvj") or getattr(frame, "color_range", 0) == AVCOL_RANGE_JPEG
    black, white = FULL if full else LIMITED
    w, h = frame.width, frame.height
    views = [_plane_view(plane) for plane in frame.planes]
    if name == "nv12":
        uv = views[1][:, : w // 2 * 2].reshape(h // 2, w // 2, 2)
        return Planes(views[0][:, :w], (uv,), 2, 2, black, white)
    if name == "yuyv422":
        packed = views[0][:, : w * 2]
        luma = packed.reshape(h, w, 2)[:, :, 0]
        uv = packed.reshape(h, w // 2, 4)[:, :, 1::2]
        return Planes(luma, (uv,), 2, 1, black, white)
    return Planes(
        views[0][:, :w], (views[1][:, : w // 2], views[2][:, : w // 2]), 2, 2, black, white
    )


def _plane_view(plane: Any) -> Pixels:
    flat = np.frombuffer(plane, dtype=np.uint8)
    return flat[: plane.line_size * plane.height].reshape(plane.height, plane.line_size)


def _even(n: int) -> int:
    return n + (n & 1)


def _down_even(n: int) -> int:
    return n & ~1


def mask_rect(area: Area, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel rectangle (x0, y0, x1, y1) of a mask, grown outwards to even edges."""
    x0 = _down_even(area.x * width // 1000)
    y0 = _down_even(area.y * height // 1000)
    x1 = min(width, _even(-(-(area.x + area.width) * width // 1000)))
    y1 = min(height, _even(-(-(area.y + area.height) * height // 1000)))
    return x0, y0, x1, y1


def text_origin(x: int, y: int, size: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """Where text of `size` at (x, y) thousandths goes: even pixels, moved inside the picture."""
    tw, th = size
    px = min(_down_even(x * width // 1000), _down_even(max(0, width - tw)))
    py = min(_down_even(y * height // 1000), _down_even(max(0, height - th)))
    return px, py


def font_scale(font_size: str, picture_height: int, cell_height: int) -> int:
    target = picture_height / FONT_HEIGHT_SHARE[font_size]
    return max(1, round(target / cell_height))


def date_time_text(when: datetime, settings: DateTimeOverlay) -> str:
    date = when.strftime(DATE_PATTERNS[settings.date_format])
    if settings.time_format == "12hour":
        clock = f"{(when.hour + 11) % 12 + 1:02d}:{when:%M:%S} {'AM' if when.hour < 12 else 'PM'}"
    else:
        clock = when.strftime("%H:%M:%S")
    week = f" {WEEKDAYS[when.weekday()]}" if settings.show_week else ""
    return f"{date}{week} {clock}"


def _zone_of(time_zone: str) -> timezone:
    """The device's zone; UTC (logged) for one the clock cannot use, so video still runs."""
    try:
        return parse_time_zone(time_zone)
    except ValueError as exc:
        log.warning("OSD: %s; the date/time is shown in UTC", exc)
        return UTC


class Overlay:
    """One channel's OSD and masks, applied to its frames in the capture thread.

    Built from a `ChannelImage` and the device's time zone; a settings change builds a new one
    (the glyph atlas can be shared); made only when `settings.drawn`, so with everything off
    nothing runs. `clock` gives the wall time (seconds since the epoch).
    """

    def __init__(
        self,
        settings: ChannelImage,
        time_zone: str,
        *,
        atlas: GlyphAtlas | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._zone = _zone_of(time_zone)
        self._clock = clock
        osd = settings.osd
        self.atlas = atlas if atlas is not None or not osd.shown else GlyphAtlas()
        self._texts = [(t.text, t.x, t.y) for t in osd.texts if t.enabled and t.text.strip()]
        if osd.name.enabled and osd.channel_name.strip():
            self._texts.append((osd.channel_name, osd.name.x, osd.name.y))
        self._masks = list(settings.privacy_mask.areas) if settings.privacy_mask.shown else []
        self._cache: dict[tuple[str, int], TextBitmap] = {}
        self._second: int | None = None
        self._date_text = ""
        self.renders = 0  # text bitmaps composed (for tests: the date only once a second)
        self._converter: VideoReformatter | None = None

    def apply(self, captured: CapturedFrame) -> CapturedFrame:
        """Masks and text: `mask` then `label`."""
        captured = self.mask(captured)
        self.label(captured.frame)
        return captured

    def mask(self, captured: CapturedFrame) -> CapturedFrame:
        """The privacy masks filled in; the frame converted first if it cannot be drawn on."""
        frame = captured.frame
        if frame.format.name not in IN_PLACE:
            frame = self._convert(frame)
            captured = dataclasses.replace(captured, frame=frame)
        if self._masks:
            planes = frame_planes(frame)
            for area in self._masks:
                self._fill(planes, mask_rect(area, frame.width, frame.height))
        return captured

    def label(self, frame: av.VideoFrame) -> None:
        """The OSD text drawn over the frame (one of `IN_PLACE`: after `mask`)."""
        if self.atlas is None:
            return
        planes = frame_planes(frame)
        scale = font_scale(self.settings.osd.font_size, frame.height, self.atlas.cell_height)
        for text, x, y in self._placed_texts():
            bitmap = self.bitmap(text, scale)
            self._blit(planes, bitmap, text_origin(x, y, bitmap.size, frame.width, frame.height))

    def draw(self, frame: av.VideoFrame) -> None:
        """Masks, then text, written into the frame's planes (one of `IN_PLACE`)."""
        self.apply(CapturedFrame(frame, 0.0))

    def bitmap(self, text: str, scale: int) -> TextBitmap:
        key = (text, scale)
        bitmap = self._cache.get(key)
        if bitmap is None:
            assert self.atlas is not None
            if len(self._cache) >= TEXT_CACHE_MAX:
                self._cache.pop(next(iter(self._cache)))  # the oldest: a past second's date
            bitmap = self._cache[key] = TextBitmap.of(self.atlas, text, scale)
            self.renders += 1
        return bitmap

    def _placed_texts(self) -> list[tuple[str, int, int]]:
        date_time = self.settings.osd.date_time
        if not date_time.enabled:
            return self._texts
        now = self._clock()
        second = int(now)
        if second != self._second:
            self._second = second
            when = datetime.fromtimestamp(second, self._zone)
            self._date_text = date_time_text(when, date_time)
        return [(self._date_text, date_time.x, date_time.y), *self._texts]

    @staticmethod
    def _fill(planes: Planes, rect: tuple[int, int, int, int]) -> None:
        x0, y0, x1, y1 = rect
        planes.luma[y0:y1, x0:x1] = planes.black
        sx, sy = planes.sx, planes.sy
        for chroma in planes.chroma:
            chroma[y0 // sy : y1 // sy, x0 // sx : x1 // sx] = NEUTRAL

    @staticmethod
    def _blit(planes: Planes, bitmap: TextBitmap, origin: tuple[int, int]) -> None:
        x, y = origin
        h, w = planes.luma.shape
        bw, bh = min(bitmap.size[0], w - x), min(bitmap.size[1], h - y)  # a picture too small
        region = planes.luma[y : y + bh, x : x + bw]
        region[bitmap.outline[:bh, :bw]] = planes.black
        region[bitmap.fill[:bh, :bw]] = planes.white
        sx, sy = planes.sx, planes.sy
        cmask = bitmap.chroma(sx, sy)[: bh // sy, : bw // sx]
        for chroma in planes.chroma:
            chroma[y // sy : (y + bh) // sy, x // sx : (x + bw) // sx][cmask] = NEUTRAL

    def _convert(self, frame: av.VideoFrame) -> av.VideoFrame:
        if self._converter is None:
            log.info("OSD: %s frames are converted to yuv420p to draw on", frame.format.name)
            self._converter = VideoReformatter()
        converted: av.VideoFrame = self._converter.reformat(frame, format="yuv420p")
        converted.pts = frame.pts
        if frame.time_base is not None:
            converted.time_base = frame.time_base
        return converted
