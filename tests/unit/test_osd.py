"""The OSD renderer and privacy masks (vigil.media.osd) on real PyAV frames, and their settings.

Frames are made by PyAV in each pixel format the channel may capture (yuv420p from the sim,
nv12 and yuyv422 from V4L2, yuvj420p from an MJPEG camera) and filled with random pixels, so a
pixel the overlay should not touch is compared with its value before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import av
import numpy as np
import pytest

from vigil.config.events import Area
from vigil.config.image import (
    ChannelImage,
    DateTimeOverlay,
    ImageSettings,
    NameOverlay,
    OsdSettings,
    PrivacyMaskSettings,
    TextOverlay,
)
from vigil.config.model import Config
from vigil.config.schema import ConfigError, from_dict, to_plain
from vigil.media.osd import (
    GlyphAtlas,
    Overlay,
    date_time_text,
    font_scale,
    frame_planes,
    mask_rect,
    text_origin,
)
from vigil.media.source import CapturedFrame

RNG = np.random.default_rng(6)
NOTHING = OsdSettings(name=NameOverlay(enabled=False), date_time=DateTimeOverlay(enabled=False))


@pytest.fixture(scope="module")
def atlas() -> GlyphAtlas:
    return GlyphAtlas()


def random_frame(width: int, height: int, fmt: str = "yuv420p") -> av.VideoFrame:
    frame = av.VideoFrame(width, height, fmt)
    for plane in frame.planes:
        view = np.frombuffer(plane, dtype=np.uint8)
        view[:] = RNG.integers(0, 256, view.size, dtype=np.uint8)
    return frame


def snapshot(frame: av.VideoFrame) -> tuple[Any, tuple[Any, ...]]:
    planes = frame_planes(frame)
    return planes.luma.copy(), tuple(c.copy() for c in planes.chroma)


def overlay_of(osd: OsdSettings = NOTHING, masks: list[Area] | None = None, **kw: Any) -> Overlay:
    settings = ChannelImage(
        osd=osd, privacy_mask=PrivacyMaskSettings(enabled=masks is not None, areas=masks or [])
    )
    return Overlay(settings, kw.pop("time_zone", "UTC+0:00:00"), **kw)


# -- the glyph atlas ----------------------------------------------------------------------------
def test_the_atlas_has_every_printable_ascii_glyph_in_one_cell_size(atlas: GlyphAtlas) -> None:
    assert (atlas.cell_width, atlas.cell_height) == (6, 11)
    glyphs = {chr(c): atlas.glyph(chr(c)) for c in range(0x20, 0x7F)}
    assert all(g.shape == (11, 6) for g in glyphs.values())
    assert not glyphs[" "].any()
    assert all(g.any() for c, g in glyphs.items() if c != " ")
    distinct = {g.tobytes() for g in glyphs.values()}
    assert len(distinct) == len(glyphs)  # every character looks different
    assert (atlas.glyph("\u00e9") == glyphs["?"]).all()


def test_the_atlas_is_pillows_bitmap_font_as_pillow_draws_it(atlas: GlyphAtlas) -> None:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default_imagefont()
    chars = [chr(c) for c in range(0x20, 0x7F)]
    assert max(round(font.getlength(c)) for c in chars) == atlas.cell_width
    assert max(font.getbbox(c)[3] for c in chars) == atlas.cell_height
    for char in chars:
        image = Image.new("L", (atlas.cell_width, atlas.cell_height))
        ImageDraw.Draw(image).text((0, 0), char, font=font, fill=255)
        assert (atlas.glyph(char) == (np.asarray(image) > 127)).all(), char


def test_a_rendered_string_is_its_glyphs_side_by_side_scaled_in_blocks(atlas: GlyphAtlas) -> None:
    text = atlas.render("Ab1", 3)
    assert text.shape == (33, 54)
    assert (text[::3, ::3] == np.concatenate([atlas.glyph(c) for c in "Ab1"], axis=1)).all()
    assert (text[1::3, 2::3] == text[::3, ::3]).all()  # each font pixel a 3x3 block


def test_font_sizes_scale_with_the_picture_height() -> None:
    assert [font_scale(s, 1080, 11) for s in ("small", "medium", "large", "auto")] == [2, 3, 5, 3]
    assert font_scale("small", 180, 11) == 1


# -- layout ---------------------------------------------------------------------------------------
def test_text_goes_to_its_position_in_thousandths_on_even_pixels() -> None:
    assert text_origin(20, 30, (100, 40), 1920, 1080) == (38, 32)
    assert text_origin(0, 0, (100, 40), 1920, 1080) == (0, 0)


def test_text_that_would_reach_past_the_edge_is_moved_inside() -> None:
    x, y = text_origin(999, 999, (301, 41), 1920, 1080)
    assert (x, y) == (1618, 1038)
    assert x + 301 <= 1920 and y + 41 <= 1080


def test_a_text_line_is_drawn_white_on_a_dark_outline_where_its_layout_says() -> None:
    frame = random_frame(1280, 720)
    before_y, before_c = snapshot(frame)
    overlay = overlay_of(OsdSettings(name=NameOverlay(enabled=False),
                                     date_time=DateTimeOverlay(enabled=False),
                                     texts=[TextOverlay(text="Gate 3", x=500, y=500)]))  # fmt: skip
    overlay.draw(frame)
    after_y, after_c = snapshot(frame)
    bitmap = overlay.bitmap("Gate 3", font_scale("auto", 720, 11))
    x, y = text_origin(500, 500, bitmap.size, 1280, 720)
    assert (x, y) == (640, 360)
    w, h = bitmap.size
    changed = np.argwhere(after_y != before_y)
    assert changed.min(axis=0).tolist() >= [y, x] and changed.max(axis=0).tolist() < [y + h, x + w]
    region = after_y[y : y + h, x : x + w]
    assert (region[bitmap.fill] == 235).all()
    assert (region[bitmap.outline & ~bitmap.fill] == 16).all()
    assert (region[~bitmap.outline] == before_y[y : y + h, x : x + w][~bitmap.outline]).all()
    for before, after in zip(before_c, after_c, strict=True):  # colourless under the text only
        assert (
            after[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2][bitmap.chroma(2, 2)] == 128
        ).all()
        outside = np.ones(after.shape, dtype=bool)
        outside[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = False
        assert (after[outside] == before[outside]).all()


def test_the_channel_name_and_texts_are_all_drawn() -> None:
    texts = [TextOverlay(id=i, text=f"line {i}", y=i * 100) for i in range(1, 9)]
    osd = OsdSettings(channel_name="Yard", date_time=DateTimeOverlay(enabled=False), texts=texts)
    frame = random_frame(640, 360)
    before, _ = snapshot(frame)
    overlay = overlay_of(osd)
    overlay.draw(frame)
    assert overlay.renders == 9
    after, _ = snapshot(frame)
    rows = np.flatnonzero((after != before).any(axis=1))
    assert np.count_nonzero(np.diff(rows) > 1) + 1 == 9  # nine separate lines of text


# -- date and time --------------------------------------------------------------------------------
class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_date_is_composed_again_only_when_its_second_changes() -> None:
    clock = Clock(1_800_000_000.2)
    overlay = overlay_of(OsdSettings(name=NameOverlay(enabled=False)), clock=clock)
    frame = random_frame(640, 360)
    for _ in range(5):
        overlay.draw(frame)
    assert overlay.renders == 1
    clock.now += 0.7  # still the same second
    overlay.draw(frame)
    assert overlay.renders == 1
    clock.now += 0.2
    overlay.draw(frame)
    overlay.draw(frame)
    assert overlay.renders == 2


def test_the_date_is_in_the_device_time_zone() -> None:
    clock = Clock(0.0)
    overlay = overlay_of(OsdSettings(name=NameOverlay(enabled=False)), clock=clock,
                         time_zone="CST-8:00:00")  # fmt: skip
    overlay.draw(random_frame(640, 360))
    assert [text for text, _ in overlay._cache] == ["1970-01-01 08:00:00"]


def test_a_zone_the_clock_cannot_use_shows_utc(caplog: pytest.LogCaptureFixture) -> None:
    overlay = overlay_of(OsdSettings(name=NameOverlay(enabled=False)), clock=Clock(0.0),
                         time_zone="CST-8:99:00")  # fmt: skip
    overlay.draw(random_frame(640, 360))
    assert [text for text, _ in overlay._cache] == ["1970-01-01 00:00:00"]
    assert "shown in UTC" in caplog.text


@pytest.mark.parametrize(
    ("date_format", "time_format", "week", "expected"),
    [
        ("YYYY-MM-DD", "24hour", False, "2026-11-21 18:05:09"),
        ("MM-DD-YYYY", "12hour", True, "11-21-2026 Sat 06:05:09 PM"),
        ("DD/MM/YYYY", "12hour", False, "21/11/2026 06:05:09 PM"),
    ],
)
def test_date_and_time_formats(
    date_format: str, time_format: str, week: bool, expected: str
) -> None:
    when = datetime(2026, 11, 21, 18, 5, 9, tzinfo=UTC)
    settings = DateTimeOverlay(date_format=date_format, time_format=time_format, show_week=week)
    assert date_time_text(when, settings) == expected


def test_twelve_hour_time_around_midnight_and_noon() -> None:
    settings = DateTimeOverlay(time_format="12hour")
    night = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    noon = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
    assert date_time_text(night, settings).endswith("12:30:00 AM")
    assert date_time_text(noon, settings).endswith("12:30:00 PM")


# -- privacy masks --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "size", "black"),
    [
        ("yuv420p", (1920, 1080), 16),
        ("yuv420p", (650, 362), 16),  # lines padded in memory
        ("yuvj420p", (640, 360), 0),
        ("nv12", (640, 360), 16),
        ("yuyv422", (640, 360), 16),
    ],
)
def test_masks_cover_exactly_their_rectangles(fmt: str, size: tuple[int, int], black: int) -> None:
    width, height = size
    areas = [Area(x=100, y=200, width=250, height=300), Area(x=700, y=0, width=300, height=1000)]
    frame = random_frame(width, height, fmt)
    before_y, before_c = snapshot(frame)
    overlay_of(masks=areas).draw(frame)
    planes = frame_planes(frame)
    inside = np.zeros((height, width), dtype=bool)
    for area in areas:
        x0, y0, x1, y1 = mask_rect(area, width, height)
        inside[y0:y1, x0:x1] = True
    assert (planes.luma[inside] == black).all()
    assert (planes.luma[~inside] == before_y[~inside]).all()
    chroma_inside = inside[:: planes.sy, :: planes.sx]
    for before, after in zip(before_c, planes.chroma, strict=True):
        assert (after[chroma_inside] == 128).all()
        assert (after[~chroma_inside] == before[~chroma_inside]).all()


def test_mask_rectangles_are_their_areas_grown_to_even_pixels() -> None:
    assert mask_rect(Area(x=100, y=200, width=250, height=300), 1920, 1080) == (192, 216, 672, 540)
    assert mask_rect(Area(x=1, y=1, width=1, height=1), 1920, 1080) == (0, 0, 4, 4)
    assert mask_rect(Area(x=999, y=999, width=1, height=1), 650, 362) == (648, 360, 650, 362)


def test_masks_that_are_off_draw_nothing() -> None:
    settings = ChannelImage(osd=NOTHING, privacy_mask=PrivacyMaskSettings(areas=[Area()]))
    assert not settings.drawn
    assert ChannelImage().drawn  # the name and the date/time, as shipped


def test_a_frame_of_another_format_is_converted_once_and_drawn() -> None:
    frame = av.VideoFrame.from_ndarray(np.full((360, 640, 3), 200, np.uint8), format="rgb24")
    captured = overlay_of(masks=[Area(x=0, y=0, width=500, height=500)]).apply(
        CapturedFrame(frame, 1.0)
    )
    assert captured.frame.format.name == "yuv420p" and captured.captured_at == 1.0
    assert (frame_planes(captured.frame).luma[:180, :320] == 16).all()


def test_text_is_drawn_over_the_masks() -> None:
    osd = OsdSettings(name=NameOverlay(enabled=False), date_time=DateTimeOverlay(enabled=False),
                      texts=[TextOverlay(text="over", x=0, y=0)])  # fmt: skip
    frame = random_frame(640, 360)
    overlay_of(osd, masks=[Area()]).draw(frame)
    assert (frame_planes(frame).luma == 235).any()


# -- settings -------------------------------------------------------------------------------------
def test_the_defaults_show_the_name_and_the_date_and_no_masks() -> None:
    image = Config().image.channel(1)
    assert image.osd.name.enabled and image.osd.date_time.enabled
    assert image.osd.texts == [] and not image.privacy_mask.enabled
    assert ImageSettings().channel(2) == ChannelImage(channel=2)
    assert from_dict(Config, to_plain(Config())).image == Config().image


def image_with(**osd: Any) -> dict[str, Any]:
    return {"channels": [{"channel": 1, "osd": osd}]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (image_with(texts=[{"id": 1, "text": "x" * 45}]), "texts[0].text"),
        (image_with(texts=[{"id": 1, "text": "caf\u00e9"}]), "texts[0].text"),
        (image_with(texts=[{"id": 1, "text": "a\tb"}]), "texts[0].text"),
        (image_with(texts=[{"id": i, "text": "a"} for i in range(1, 10)]), "texts"),
        (image_with(texts=[{"id": 1}, {"id": 1}]), "unique"),
        (image_with(texts=[{"id": 9}]), "texts[0].id"),
        (image_with(font_size="huge"), "font_size"),
        (image_with(date_time={"date_format": "YY.MM.DD"}), "date_format"),
        (image_with(name={"x": 1000}), "name.x"),
        (image_with(channel_name="x" * 33), "channel_name"),
        ({"channels": [{"privacy_mask": {"areas": [{}] * 9}}]}, "areas"),
        ({"channels": [{"privacy_mask": {"areas": [{"x": 900, "width": 200}]}}]}, "outside"),
        ({"channels": [{"channel": 1}, {"channel": 1}]}, "one image entry per channel"),
    ],
)
def test_bad_settings_are_refused_with_their_path(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_dict(ImageSettings, data)
    assert message in str(error.value)
