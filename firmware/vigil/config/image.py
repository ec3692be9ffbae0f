"""Image settings of the video channels: the OSD (text burned into the picture) and privacy masks.

They follow Hikvision's `Image/channels/{ch}/overlays` and `privacyMask`, with these choices
where the issue is silent:

- positions are in thousandths of the picture (0-999), origin top left, and name the top left
  corner of the text; the ISAPI layer converts from Hikvision's 704x576 bottom-left grid. Text
  that would reach past the picture's edge is moved back inside it.
- text is printable ASCII (the OSD's bitmap font has no other glyphs), at most 44 characters
  for a text line and 32 for the channel name.
- font sizes are small, medium, large (a character a 45th, 30th and 20th of the picture's height)
  or auto (medium); the colour is white with a dark outline, readable on any background.
- privacy masks are up to 8 rectangles (`Area`, thousandths, top-left origin) filled black.

Defaults as Hikvision cameras ship: the channel name and the date/time shown, no text lines,
no masks.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.config.events import Area
from vigil.config.schema import setting

PRINTABLE_ASCII = r"[\x20-\x7e]*"
MAX_TEXT_LINES = 8
MAX_MASKS = 8
DATE_FORMATS = ("YYYY-MM-DD", "MM-DD-YYYY", "DD-MM-YYYY", "YYYY/MM/DD", "MM/DD/YYYY", "DD/MM/YYYY")
TIME_FORMATS = ("24hour", "12hour")
FONT_SIZES = ("small", "medium", "large", "auto")
DAY_NIGHT_MODES = ("day", "night", "auto", "schedule")
TIME_OF_DAY = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"  # HH:MM:SS


@dataclass(frozen=True)
class NameOverlay:
    """The channel name on the picture (Hikvision ships it at the bottom right)."""

    enabled: bool = True
    x: int = setting(760, min=0, max=999)
    y: int = setting(920, min=0, max=999)


@dataclass(frozen=True)
class DateTimeOverlay:
    """The device's local date and time, e.g. `2026-11-21 Sat 18:15:00` (top left)."""

    enabled: bool = True
    x: int = setting(20, min=0, max=999)
    y: int = setting(30, min=0, max=999)
    date_format: str = setting("YYYY-MM-DD", choices=DATE_FORMATS)
    time_format: str = setting("24hour", choices=TIME_FORMATS)
    show_week: bool = False


@dataclass(frozen=True)
class TextOverlay:
    """One of up to 8 free text lines (Hikvision's TextOverlay)."""

    id: int = setting(1, min=1, max=MAX_TEXT_LINES)
    enabled: bool = True
    text: str = setting("", max_len=44, pattern=PRINTABLE_ASCII)
    x: int = setting(20, min=0, max=999)
    y: int = setting(100, min=0, max=999)


@dataclass(frozen=True)
class OsdSettings:
    channel_name: str = setting("Camera 01", max_len=32, pattern=PRINTABLE_ASCII)
    name: NameOverlay = setting(factory=NameOverlay)
    date_time: DateTimeOverlay = setting(factory=DateTimeOverlay)
    texts: list[TextOverlay] = setting(factory=list, max_items=MAX_TEXT_LINES)
    font_size: str = setting("auto", choices=FONT_SIZES)

    def check(self) -> None:
        ids = [t.id for t in self.texts]
        if len(set(ids)) != len(ids):
            raise ValueError("text overlay ids must be unique")

    @property
    def shown(self) -> bool:
        """Whether anything is drawn at all."""
        return (
            (self.name.enabled and bool(self.channel_name.strip()))
            or self.date_time.enabled
            or any(t.enabled and t.text.strip() for t in self.texts)
        )


@dataclass(frozen=True)
class PrivacyMaskSettings:
    enabled: bool = False
    areas: list[Area] = setting(factory=list, max_items=MAX_MASKS)

    @property
    def shown(self) -> bool:
        return self.enabled and bool(self.areas)


@dataclass(frozen=True)
class IspSettings:
    """The sensor's image processing (Hikvision's `Image/channels/{ch}`), as the user sets it:
    levels 0-100 (50 the sensor's middle), mirror and flip, exposure (auto, or manual with a
    time in microseconds and a gain level), white balance, WDR, BLC, DNR and the mains
    frequency. The sensor may lack some: `vigil.media.isp` applies what it has and the API
    refuses the rest."""

    brightness: int = setting(50, min=0, max=100)
    contrast: int = setting(50, min=0, max=100)
    saturation: int = setting(50, min=0, max=100)
    hue: int = setting(50, min=0, max=100)
    sharpness: int = setting(50, min=0, max=100)
    mirror: bool = False
    flip: bool = False
    exposure_auto: bool = True
    exposure_time: int = setting(40_000, min=10, max=1_000_000)  # us: 1/25 s
    gain: int = setting(50, min=0, max=100)
    white_balance_auto: bool = True
    wdr: bool = False
    wdr_level: int = setting(50, min=0, max=100)
    blc: bool = False
    dnr: bool = True
    dnr_level: int = setting(50, min=0, max=100)
    power_line_frequency: int = setting(50, choices=(50, 60))  # Hz: PAL 50, NTSC 60


@dataclass(frozen=True)
class DayNightSettings:
    """Day/night (Hikvision's `IrcutFilter`): `mode` day, night, auto (the light sensor, with
    `sensitivity` 0-7 choosing the thresholds and `delay_s` the time the light must stay past
    one, `vigil.media.daynight`) or schedule (day from `day_start` to `night_start`, device
    local time); `illuminator`: the IR LEDs light at night."""

    mode: str = setting("auto", choices=DAY_NIGHT_MODES)
    sensitivity: int = setting(4, min=0, max=7)
    delay_s: int = setting(20, min=5, max=120)
    day_start: str = setting("07:00:00", pattern=TIME_OF_DAY)
    night_start: str = setting("19:00:00", pattern=TIME_OF_DAY)
    illuminator: bool = True

    def check(self) -> None:
        if self.day_start == self.night_start:
            raise ValueError("day_start and night_start must differ")


@dataclass(frozen=True)
class ChannelImage:
    """What is burned into one video channel's pictures, before any stream is encoded."""

    channel: int = setting(1, min=1, max=32)
    osd: OsdSettings = setting(factory=OsdSettings)
    privacy_mask: PrivacyMaskSettings = setting(factory=PrivacyMaskSettings)
    isp: IspSettings = setting(factory=IspSettings)
    day_night: DayNightSettings = setting(factory=DayNightSettings)

    @property
    def drawn(self) -> bool:
        """Whether anything is drawn into the pictures (else no overlay runs at all)."""
        return self.osd.shown or self.privacy_mask.shown


@dataclass(frozen=True)
class ImageSettings:
    channels: list[ChannelImage] = setting(factory=lambda: [ChannelImage()], max_items=32)

    def check(self) -> None:
        ids = [c.channel for c in self.channels]
        if len(set(ids)) != len(ids):
            raise ValueError("one image entry per channel")

    def channel(self, channel: int) -> ChannelImage:
        """The channel's settings; the defaults for a channel never configured."""
        found = next((c for c in self.channels if c.channel == channel), None)
        return found or ChannelImage(channel=channel)
