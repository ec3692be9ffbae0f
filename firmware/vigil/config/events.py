"""Event settings (SPEC §5): detectors, alarm inputs and relays, triggers with their arming
schedules and linkage, and where notifications go (mail, FTP, HTTP hosts).

Coordinates of areas are in thousandths of the picture (0-1000), origin at the top left; the
ISAPI layer converts from Hikvision's bottom-left origin. Passwords for mail, FTP and HTTP hosts
are secrets and live in `security.credentials`, never here.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.config.schema import setting
from vigil.config.weekly import TIME_OF_DAY, WEEKDAYS, check_period, check_week

GRID_COLUMNS, GRID_ROWS = 22, 18
HOST = r"[A-Za-z0-9.:-]*"  # a host name or an IPv4/IPv6 address ("" = unset)
MAIL_ADDRESS = r"([^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,255})?"
PATH_TEXT = r"[A-Za-z0-9_./-]*"

# Event types, in the ISAPI vocabulary (`eventType` of an EventNotificationAlert).
VIDEO_EVENTS = ("vmd", "tamperdetection", "videoloss", "defocus", "scenechangedetection")
EXCEPTION_EVENTS = ("diskfull", "diskerror", "nicbroken", "ipconflict", "illaccess")
EVENT_TYPES = (*VIDEO_EVENTS, "io", *EXCEPTION_EVENTS)


def _check_grid(rows: list[str]) -> None:
    if len(rows) != GRID_ROWS:
        raise ValueError(f"the motion grid has {GRID_ROWS} rows, not {len(rows)}")
    for row in rows:
        if len(row) != GRID_COLUMNS or set(row) - {"0", "1"}:
            raise ValueError(f"a grid row is {GRID_COLUMNS} characters 0 or 1, not {row!r}")


def full_grid() -> list[str]:
    return ["1" * GRID_COLUMNS] * GRID_ROWS


@dataclass(frozen=True)
class Area:
    """A rectangle of the picture in thousandths (0-1000), origin top left."""

    x: int = setting(0, min=0, max=999)
    y: int = setting(0, min=0, max=999)
    width: int = setting(1000, min=1, max=1000)
    height: int = setting(1000, min=1, max=1000)

    def check(self) -> None:
        if self.x + self.width > 1000 or self.y + self.height > 1000:
            raise ValueError(f"the area at ({self.x}, {self.y}) reaches outside the picture")


@dataclass(frozen=True)
class MotionArea:
    """An expert-mode motion area: its own sensitivity and proportion, by day and by night.

    `proportion` is the share (%) of the area whose pixels must change before it counts as
    motion; a small object needs a low proportion.
    """

    id: int = setting(1, min=1, max=8)
    area: Area = setting(factory=Area)
    sensitivity: int = setting(50, min=0, max=100)  # 0: this area is off
    proportion: int = setting(5, min=1, max=100)
    night_sensitivity: int = setting(50, min=0, max=100)
    night_proportion: int = setting(5, min=1, max=100)


@dataclass(frozen=True)
class MotionSettings:
    """Motion detection (m 6.1.1): a 22x18 grid with one sensitivity, or up to 8 expert areas.

    Day/night sets (expert mode) switch on a daily schedule: night runs from `night_start`
    to `day_start` (crossing midnight).
    """

    enabled: bool = False
    mode: str = setting("grid", choices=("grid", "expert"))
    sensitivity: int = setting(50, min=0, max=100)  # grid mode; 0 = off
    grid: list[str] = setting(factory=full_grid, check=_check_grid)
    areas: list[MotionArea] = setting(factory=list, max_items=8)
    day_night: str = setting("off", choices=("off", "schedule"))
    day_start: str = setting("06:00", pattern=TIME_OF_DAY)
    night_start: str = setting("18:00", pattern=TIME_OF_DAY)

    def check(self) -> None:
        ids = [a.id for a in self.areas]
        if len(set(ids)) != len(ids):
            raise ValueError("motion area ids must be unique")


@dataclass(frozen=True)
class TamperSettings:
    """Video tampering (the view covered or blinded): the share of `area` that went flat."""

    enabled: bool = False
    sensitivity: int = setting(50, min=0, max=100)
    area: Area = setting(factory=Area)


@dataclass(frozen=True)
class SensitivitySettings:
    """Defocus and scene change (m 6.2.2-6.2.3): on/off and a sensitivity."""

    enabled: bool = False
    sensitivity: int = setting(50, min=0, max=100)


@dataclass(frozen=True)
class VideoLossSettings:
    """No frame from the channel's source for `timeout_s` seconds."""

    enabled: bool = True
    timeout_s: int = setting(3, min=1, max=60)


@dataclass(frozen=True)
class ChannelDetection:
    """The detectors of one video channel; they run on its sub stream's pictures."""

    channel: int = setting(1, min=1, max=32)
    motion: MotionSettings = setting(factory=MotionSettings)
    tamper: TamperSettings = setting(factory=TamperSettings)
    video_loss: VideoLossSettings = setting(factory=VideoLossSettings)
    defocus: SensitivitySettings = setting(factory=SensitivitySettings)
    scene_change: SensitivitySettings = setting(factory=SensitivitySettings)


@dataclass(frozen=True)
class AlarmInput:
    """An alarm input line: NO (normally open: alarm when closed) or NC, debounced."""

    id: int = setting(1, min=1, max=16)
    name: str = setting("", max_len=32, pattern=r"[^<>&\"\x00-\x1f\x7f]*")
    enabled: bool = True
    normally: str = setting("open", choices=("open", "closed"))
    debounce_ms: int = setting(100, min=10, max=10_000)


@dataclass(frozen=True)
class AlarmOutput:
    """A relay output: active for `hold_s` after a trigger, or latched until cleared."""

    id: int = setting(1, min=1, max=8)
    name: str = setting("", max_len=32, pattern=r"[^<>&\"\x00-\x1f\x7f]*")
    hold_s: int = setting(5, min=5, max=600)
    latch: bool = False  # stays active until cleared by hand
    active_level: str = setting("high", choices=("high", "low"))


@dataclass(frozen=True)
class AlarmIOSettings:
    inputs: list[AlarmInput] = setting(factory=list, max_items=16)
    outputs: list[AlarmOutput] = setting(factory=list, max_items=8)

    def input(self, input_id: int) -> AlarmInput | None:
        return next((i for i in self.inputs if i.id == input_id), None)

    def output(self, output_id: int) -> AlarmOutput | None:
        return next((o for o in self.outputs if o.id == output_id), None)


@dataclass(frozen=True)
class ArmingPeriod:
    day: str = setting("monday", choices=WEEKDAYS)
    start: str = setting("00:00", pattern=TIME_OF_DAY)
    end: str = setting("24:00", pattern=TIME_OF_DAY)

    def check(self) -> None:
        check_period(self)


def armed_all_week() -> list[ArmingPeriod]:
    return [ArmingPeriod(day=day) for day in WEEKDAYS]


@dataclass(frozen=True)
class EventTrigger:
    """What an event does (`Event/triggers`), and when it is armed (`Event/schedules`).

    `source` is the video channel for video events, the input id for `io`, and 0 for the
    device's exceptions. Exceptions are always armed; their schedule is ignored.
    """

    event: str = setting("vmd", choices=EVENT_TYPES)
    source: int = setting(1, min=0, max=32)
    enabled: bool = True
    schedule: list[ArmingPeriod] = setting(
        factory=armed_all_week, max_items=7 * 8, check=check_week
    )
    center: bool = True  # alertStream subscribers and the HTTP hosts
    email: bool = False
    ftp: bool = False  # upload the event's pictures
    record: list[int] = setting(factory=list, max_items=32)  # channels whose tracks record
    outputs: list[int] = setting(factory=list, max_items=8)  # relays to close
    ptz_preset: int = setting(0, min=0, max=255)  # 0: none

    @property
    def key(self) -> tuple[str, int]:
        return self.event, self.source


def default_triggers(video_channels: int = 1, inputs: int = 0) -> list[EventTrigger]:
    video = [
        EventTrigger(event=e, source=c) for c in range(1, video_channels + 1) for e in VIDEO_EVENTS
    ]
    io = [EventTrigger(event="io", source=i) for i in range(1, inputs + 1)]
    return video + io + [EventTrigger(event=e, source=0) for e in EXCEPTION_EVENTS]


@dataclass(frozen=True)
class MailReceiver:
    name: str = setting("", max_len=32, pattern=r"[^<>&\"\x00-\x1f\x7f]*")
    address: str = setting("", max_len=128, pattern=MAIL_ADDRESS)


@dataclass(frozen=True)
class MailSettings:
    """E-mail (m 8.2.3): SSL on 465 or STARTTLS on 25, auth, <= 3 receivers, 3 snapshots."""

    host: str = setting("", max_len=128, pattern=HOST)
    port: int = setting(25, min=1, max=65535)
    security: str = setting("none", choices=("none", "SSL", "STARTTLS"))
    verify_certificate: bool = True
    auth: bool = False
    user: str = setting("", max_len=64, pattern=r"[^<>&\"\x00-\x1f\x7f]*")
    sender_name: str = setting("Vigil Camera", max_len=32, pattern=r"[^<>&\"\x00-\x1f\x7f]*")
    sender_address: str = setting("", max_len=128, pattern=MAIL_ADDRESS)
    receivers: list[MailReceiver] = setting(factory=list, max_items=3)
    attach_pictures: bool = True
    picture_interval_s: int = setting(2, min=1, max=10)  # between the 3 attached snapshots


@dataclass(frozen=True)
class FtpSettings:
    """Picture upload: `directory` on the server, then a folder per day when `dated_folders`."""

    enabled: bool = False
    protocol: str = setting("FTP", choices=("FTP", "FTPS"))
    host: str = setting("", max_len=128, pattern=HOST)
    port: int = setting(21, min=1, max=65535)
    verify_certificate: bool = True  # FTPS
    anonymous: bool = False
    user: str = setting("", max_len=64, pattern=r"[^<>&\"\x00-\x1f\x7f]*")
    directory: str = setting("", max_len=128, pattern=PATH_TEXT)
    dated_folders: bool = True


@dataclass(frozen=True)
class HttpHost:
    """An alarm server that receives each alert as an HTTP POST of its XML."""

    id: int = setting(1, min=1, max=4)
    protocol: str = setting("HTTP", choices=("HTTP", "HTTPS"))
    host: str = setting("", max_len=128, pattern=HOST)
    port: int = setting(80, min=1, max=65535)
    path: str = setting("/", max_len=128, pattern=r"/[A-Za-z0-9_./?=&%-]*")
    auth: str = setting("none", choices=("none", "basic", "digest"))
    user: str = setting("", max_len=64, pattern=r"[^<>&\"\x00-\x1f\x7f]*")
    verify_certificate: bool = True


def _check_unique(items: list[AlarmInput] | list[AlarmOutput] | list[HttpHost], what: str) -> None:
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{what} ids must be unique")


@dataclass(frozen=True)
class EventSettings:
    detection: list[ChannelDetection] = setting(factory=lambda: [ChannelDetection()], max_items=32)
    alarm_io: AlarmIOSettings = setting(factory=AlarmIOSettings)
    triggers: list[EventTrigger] = setting(factory=default_triggers, max_items=512)
    mailing: MailSettings = setting(factory=MailSettings)
    ftp: FtpSettings = setting(factory=FtpSettings)
    http_hosts: list[HttpHost] = setting(factory=list, max_items=4)

    def check(self) -> None:
        channels = [d.channel for d in self.detection]
        if len(set(channels)) != len(channels):
            raise ValueError("one detection section per channel")
        keys = [t.key for t in self.triggers]
        if len(set(keys)) != len(keys):
            raise ValueError("one trigger per event and source")
        _check_unique(self.alarm_io.inputs, "alarm input")
        _check_unique(self.alarm_io.outputs, "alarm output")
        _check_unique(self.http_hosts, "HTTP host")
        outputs = {o.id for o in self.alarm_io.outputs}
        for trigger in self.triggers:
            missing = set(trigger.outputs) - outputs
            if missing:
                raise ValueError(
                    f"{trigger.event}-{trigger.source}: no alarm output {min(missing)}"
                )

    def channel(self, channel: int) -> ChannelDetection | None:
        return next((d for d in self.detection if d.channel == channel), None)

    def trigger(self, event: str, source: int) -> EventTrigger | None:
        return next((t for t in self.triggers if t.key == (event, source)), None)
