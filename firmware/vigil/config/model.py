"""The configuration model: one frozen dataclass per section, defaults from SPEC.md.

Instances are immutable; a change is a new tree built with `checked_replace` and handed to the
ConfigStore, which validates, persists and notifies. Password verifiers are not here: they are
secrets and live in `security.users.PasswordVault`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from vigil.config.events import EventSettings
from vigil.config.image import ImageSettings
from vigil.config.ptz import PtzSettings
from vigil.config.schema import check_ip, setting
from vigil.config.serial import MAX_SERIAL_PORTS, SerialPortSettings, check_ports
from vigil.config.weekly import TIME_OF_DAY, WEEKDAYS, check_period, check_week

# Printable text without XML/markup-breaking characters: names shown in UIs and OSD.
DISPLAY_TEXT = r"[^<>&\"\x00-\x1f\x7f]*"
USER_NAME = r"[A-Za-z0-9_.@-]{1,32}"
# Hikvision's POSIX-style zone: "CST-8:00:00" is UTC+8 (the sign is inverted, as in POSIX TZ).
TIME_ZONE = r"[A-Za-z]{3,6}[+-]?\d{1,2}(:\d{2}){0,2}"

PERMISSIONS = (
    "preview",
    "playBack",
    "record",
    "ptzControl",
    "voiceTalk",
    "alarmOut",
    "logOrStateCheck",
    "parameterConfig",
    "upgrade",
    "restartOrShutdown",
)
LEVEL_PERMISSIONS = {
    "Administrator": PERMISSIONS,
    "Operator": ("preview", "playBack", "record", "ptzControl", "voiceTalk", "logOrStateCheck"),
    "Viewer": ("preview", "playBack", "logOrStateCheck"),
}
MAX_USERS = 32  # admin + 31 (m 9.20.1)
ADMIN_NAME = "admin"


@dataclass(frozen=True)
class DeviceSettings:
    name: str = setting("Vigil Camera", max_len=32, pattern=DISPLAY_TEXT)
    location: str = setting("", max_len=64, pattern=DISPLAY_TEXT)
    telecontrol_id: int = setting(88, min=1, max=255)  # the "device No." of keyboards/remotes


@dataclass(frozen=True)
class NtpServer:
    id: int = setting(1, min=1, max=4)
    addressing: str = setting("hostname", choices=("hostname", "ipaddress"))
    host: str = setting("pool.ntp.org", max_len=64, pattern=r"[A-Za-z0-9.:-]+")
    port: int = setting(123, min=1, max=65535)
    interval_min: int = setting(60, min=1, max=10080)

    def check(self) -> None:
        if self.addressing == "ipaddress":
            check_ip(self.host)


@dataclass(frozen=True)
class TimeSettings:
    mode: str = setting("manual", choices=("manual", "NTP"))
    time_zone: str = setting("UTC+0:00:00", pattern=TIME_ZONE)
    ntp_servers: list[NtpServer] = setting(factory=lambda: [NtpServer()], max_items=4)

    def check(self) -> None:
        ids = [s.id for s in self.ntp_servers]
        if len(ids) != len(set(ids)):
            raise ValueError("NTP server ids must be unique")


@dataclass(frozen=True)
class NetworkInterface:
    id: int = setting(1, min=1, max=8)
    dhcp: bool = True
    ipv4_address: str = setting("", check=check_ip)
    ipv4_mask: str = setting("", check=check_ip)
    ipv4_gateway: str = setting("", check=check_ip)
    dns1: str = setting("", check=check_ip)
    dns2: str = setting("", check=check_ip)
    mtu: int = setting(1500, min=576, max=9000)

    def check(self) -> None:
        if self.dhcp:
            return
        if not (self.ipv4_address and self.ipv4_mask):
            raise ValueError("a static address needs ipv4_address and ipv4_mask")
        net = ipaddress.IPv4Network(f"0.0.0.0/{self.ipv4_mask}", strict=False)
        if net.prefixlen == 0:
            raise ValueError(f"{self.ipv4_mask} is not a usable subnet mask")


@dataclass(frozen=True)
class PortSettings:
    http: int = setting(80, min=1, max=65535)
    https: int = setting(443, min=1, max=65535)
    https_enabled: bool = True
    rtsp: int = setting(554, min=1, max=65535)

    def check(self) -> None:
        used = [self.http, self.rtsp] + ([self.https] if self.https_enabled else [])
        if len(used) != len(set(used)):
            raise ValueError("the HTTP, HTTPS and RTSP ports must differ")


def _check_filter_entry(entry: str) -> None:
    """An address, a CIDR network, or a range `first-last` of one IP version."""
    if "-" in entry:
        first, last = (ipaddress.ip_address(p.strip()) for p in entry.split("-", 1))
        if first.version != last.version or first > last:
            raise ValueError(f"{entry!r} is not a valid address range")
        return
    ipaddress.ip_network(entry, strict=False)


def _check_filter_entries(entries: list[str]) -> None:
    for entry in entries:
        try:
            _check_filter_entry(entry)
        except ValueError:
            raise ValueError(f"{entry!r} is not an address, network or range") from None


@dataclass(frozen=True)
class IpFilterSettings:
    mode: str = setting("off", choices=("off", "allow", "deny"))
    entries: list[str] = setting(factory=list, max_items=64, check=_check_filter_entries)


@dataclass(frozen=True)
class SecuritySettings:
    lockout_enabled: bool = True
    lockout_attempts: int = setting(5, min=3, max=20)
    lockout_minutes: int = setting(30, min=1, max=120)
    basic_auth: bool = False  # honoured only over TLS
    digest_algorithms: list[str] = setting(
        factory=lambda: ["SHA-256", "MD5"], max_items=2, check=lambda v: _check_algorithms(v)
    )
    ip_filter: IpFilterSettings = setting(factory=IpFilterSettings)


def _check_algorithms(algorithms: list[str]) -> None:
    if not algorithms or len(set(algorithms)) != len(algorithms):
        raise ValueError("offer at least one digest algorithm, each once")
    for name in algorithms:
        if name not in ("SHA-256", "MD5"):
            raise ValueError(f"{name!r} is not SHA-256 or MD5")


@dataclass(frozen=True)
class DiscoverySettings:
    sadp_enabled: bool = True
    multicast_enabled: bool = True  # m 7.1.2: multicast discovery can be switched off
    mdns_enabled: bool = True
    sadp_port: int = setting(37020, min=1, max=65535)


def _check_permissions(permissions: list[str]) -> None:
    for name in permissions:
        if name not in PERMISSIONS:
            raise ValueError(f"{name!r} is not a permission")


@dataclass(frozen=True)
class User:
    id: int = setting(1, min=1, max=MAX_USERS)
    name: str = setting(ADMIN_NAME, pattern=USER_NAME)
    level: str = setting("Administrator", choices=tuple(LEVEL_PERMISSIONS))
    permissions: list[str] = setting(factory=lambda: list(PERMISSIONS), check=_check_permissions)

    def check(self) -> None:
        is_admin = self.name == ADMIN_NAME
        if is_admin != (self.level == "Administrator") or is_admin != (self.id == 1):
            raise ValueError("only the built-in user 1 'admin' is an Administrator")

    def may(self, permission: str) -> bool:
        return self.level == "Administrator" or permission in self.permissions


CODECS = ("H264", "H265", "MJPEG")
MAX_SUB_STREAM_PIXELS = 1280 * 720  # SPEC §3: the sub stream is at most 720p


@dataclass(frozen=True)
class StreamSettings:
    """One encoded stream of a channel; ids follow ISAPI (101 main, 102 sub, 103 third)."""

    id: int = setting(101, min=101, max=3299)
    enabled: bool = True
    name: str = setting("Main Stream", max_len=32, pattern=DISPLAY_TEXT)
    codec: str = setting("H264", choices=CODECS)
    width: int = setting(1920, min=160, max=3840)
    height: int = setting(1080, min=90, max=2160)
    fps: int = setting(25, min=1, max=30)
    rate_control: str = setting("VBR", choices=("CBR", "VBR"))
    max_bitrate_kbps: int = setting(4096, min=32, max=16384)
    quality: int = setting(60, min=1, max=100)  # VBR picture quality (Hikvision fixedQuality)
    gop: int = setting(50, min=1, max=400)
    profile: str = setting("main", choices=("baseline", "main", "high"))

    def check(self) -> None:
        if not 1 <= self.id % 100 <= 3:
            raise ValueError(f"stream {self.id}: ids are channel*100 + 1..3")
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even")
        if self.id % 100 == 2 and self.width * self.height > MAX_SUB_STREAM_PIXELS:
            raise ValueError("the sub stream is at most 1280x720")


def _default_streams() -> list[StreamSettings]:
    return [
        StreamSettings(),
        StreamSettings(id=102, name="Sub Stream", width=640, height=360, fps=15,
                       max_bitrate_kbps=512, gop=30),
        StreamSettings(id=103, name="Third Stream", enabled=False, codec="MJPEG", width=640,
                       height=360, fps=5, max_bitrate_kbps=1024, gop=5),
    ]  # fmt: skip


def fit_to_sensor(
    streams: list[StreamSettings], max_width: int, max_height: int, max_fps: int
) -> list[StreamSettings]:
    """The streams scaled down (aspect kept, even sizes) and slowed to what a sensor gives, the
    GOP keeping its length in seconds: a 720p sensor's main stream is 720p by default."""
    fitted = []
    for stream in streams:
        scale = min(1.0, max_width / stream.width, max_height / stream.height)
        fps = min(stream.fps, max_fps)
        fitted.append(
            replace(
                stream,
                width=max(160, int(stream.width * scale) & ~1),
                height=max(90, int(stream.height * scale) & ~1),
                fps=fps,
                gop=max(1, round(stream.gop * fps / stream.fps)),
            )
        )
    return fitted


# Hikvision's videoDestPortNo of a main stream; the sub and third streams take the next even
# ports, so a receiver bound to one stream's port never gets another's packets.
MULTICAST_PORT_BASE = 8860
# 224.0.0.0/24 is link-local network control (all-hosts, routers, mDNS): video there would
# reach every host's kernel and flood protocols that are no business of a camera.
_LOCAL_CONTROL_BLOCK = ipaddress.IPv4Network("224.0.0.0/24")


def default_multicast_address(stream_id: int) -> str:
    """239.255.42.1 for stream 101: organisation-local scope (RFC 2365), one group per stream."""
    return f"239.255.{41 + stream_id // 100}.{stream_id % 100}"


def default_multicast_port(stream_id: int) -> int:
    """8860 for a main stream (as on Hikvision devices), 8862 for the sub stream, 8864 next."""
    return MULTICAST_PORT_BASE + 2 * (stream_id % 100 - 1)


def _check_multicast_address(value: str) -> None:
    if not value:
        return  # the stream's default group
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None
    if not address.is_multicast:
        raise ValueError(f"{value} is not a multicast address (224.0.0.0/4)")
    if address in _LOCAL_CONTROL_BLOCK:
        raise ValueError(f"{value} is in 224.0.0.0/24, reserved for local network control")


@dataclass(frozen=True)
class StreamMulticast:
    """RTSP multicast of one stream (SPEC §1, §7): off unless enabled; a client asks for it
    in SETUP and then receives the group that every multicast viewer of the stream shares.

    `address` "" and `video_port` 0 stand for the stream's defaults (see `RtspSettings.
    multicast_for`), so a configuration that never named a group still gets a distinct one
    per stream. RTP goes to `video_port`, RTCP to the port after it.
    """

    stream_id: int = setting(101, min=101, max=3299)
    enabled: bool = False
    address: str = setting("", check=_check_multicast_address)
    video_port: int = setting(0, min=0, max=65534)
    ttl: int = setting(1, min=1, max=255)  # 1: the camera's own subnet only

    def check(self) -> None:
        if self.video_port % 2:
            # RFC 3550 §11: RTP on an even port, RTCP on the odd one above it.
            raise ValueError(f"the video port must be even, not {self.video_port}")
        if 0 < self.video_port < 1024:
            raise ValueError("the video port is 1024..65534 (0: the stream's default)")


@dataclass(frozen=True)
class RtspSettings:
    max_clients_per_stream: int = setting(20, min=1, max=64)
    multicast: list[StreamMulticast] = setting(factory=list, max_items=96)

    def check(self) -> None:
        ids = [m.stream_id for m in self.multicast]
        if len(set(ids)) != len(ids):
            raise ValueError("one multicast entry per stream")
        groups = [(m.address, m.video_port) for m in map(self.multicast_for, ids) if m.enabled]
        if len(set(groups)) != len(groups):
            # Every receiver of either stream would get both streams' packets mixed.
            raise ValueError("streams with multicast enabled need different groups or ports")

    def multicast_for(self, stream_id: int) -> StreamMulticast:
        """The stream's multicast settings with the defaults filled in (off if never set)."""
        entry = next((m for m in self.multicast if m.stream_id == stream_id), None)
        entry = entry or StreamMulticast(stream_id=stream_id)
        return replace(
            entry,
            address=entry.address or default_multicast_address(stream_id),
            video_port=entry.video_port or default_multicast_port(stream_id),
        )


@dataclass(frozen=True)
class LogSettings:
    max_records: int = setting(100_000, min=1_000, max=1_000_000)


@dataclass(frozen=True)
class StorageSettings:
    """What may fill the card (SPEC §4): quotas of its capacity, overwrite, expiry by age."""

    # on: the recorder deletes the oldest unlocked footage when space runs low; off: it stops
    # and `diskfull` is raised.
    overwrite: bool = True
    # Shares of the card's capacity; what both leave free is headroom for the index.
    record_quota_percent: int = setting(80, min=0, max=100)
    picture_quota_percent: int = setting(20, min=0, max=100)
    expiry_days: int = setting(0, min=0, max=365)  # 0: footage never expires by age

    def check(self) -> None:
        if self.record_quota_percent + self.picture_quota_percent > 100:
            raise ValueError("the record and picture quotas add up to more than 100 %")


# Record modes of a schedule period (SPEC §4, m 5.2.1): what makes the period record.
# "continuous" always; the others while such an event is active (plus pre/post-record);
# "motion|alarm" on either, "motion&alarm" on both at once, "event" on any event.
RECORD_MODES = ("continuous", "motion", "alarm", "motion|alarm", "motion&alarm", "event")


@dataclass(frozen=True)
class RecordPeriod:
    day: str = setting("monday", choices=WEEKDAYS)
    start: str = setting("00:00", pattern=TIME_OF_DAY)
    end: str = setting("24:00", pattern=TIME_OF_DAY)
    mode: str = setting("continuous", choices=RECORD_MODES)

    def check(self) -> None:
        check_period(self)


def all_week(mode: str = "continuous") -> list[RecordPeriod]:
    return [RecordPeriod(day=day, mode=mode) for day in WEEKDAYS]


@dataclass(frozen=True)
class RecordTrack:
    """A recording track (ISAPI `record/tracks/{id}`): track 101 records channel 1.

    `stream` is which of the channel's streams it records (the main one by default), so a
    small card can hold more days of the sub stream. Pre-record comes from RAM, whole GOPs.
    """

    id: int = setting(101, min=101, max=3299)
    enabled: bool = True  # the schedule is in force (off: only manual recording)
    stream: int = setting(101, min=101, max=3299)
    schedule: list[RecordPeriod] = setting(factory=all_week, max_items=7 * 8, check=check_week)
    pre_record_s: int = setting(5, min=0, max=30)
    post_record_s: int = setting(10, min=5, max=600)
    segment_seconds: int = setting(60, min=10, max=3600)

    def check(self) -> None:
        if self.stream // 100 != self.id // 100:
            raise ValueError(f"track {self.id} records a stream of channel {self.id // 100}")


@dataclass(frozen=True)
class RecordSettings:
    tracks: list[RecordTrack] = setting(factory=lambda: [RecordTrack()], max_items=96)

    def track(self, track_id: int) -> RecordTrack | None:
        return next((t for t in self.tracks if t.id == track_id), None)


@dataclass(frozen=True)
class PictureSettings:
    """JPEG capture to the card (SPEC §4): timed at an interval, and on events."""

    timed_enabled: bool = False
    timed_interval_s: int = setting(60, min=1, max=7 * 24 * 3600)
    event_enabled: bool = False
    event_count: int = setting(1, min=1, max=10)  # pictures per event
    event_interval_ms: int = setting(1000, min=100, max=60_000)  # between an event's pictures
    stream: int = setting(101, min=101, max=3299)  # whose resolution the pictures have
    quality: int = setting(80, min=1, max=100)


@dataclass(frozen=True)
class Config:
    device: DeviceSettings = setting(factory=DeviceSettings)
    time: TimeSettings = setting(factory=TimeSettings)
    network: list[NetworkInterface] = setting(factory=lambda: [NetworkInterface()], max_items=8)
    ports: PortSettings = setting(factory=PortSettings)
    security: SecuritySettings = setting(factory=SecuritySettings)
    discovery: DiscoverySettings = setting(factory=DiscoverySettings)
    users: list[User] = setting(factory=lambda: [User()], max_items=MAX_USERS)
    log: LogSettings = setting(factory=LogSettings)
    streams: list[StreamSettings] = setting(factory=_default_streams, max_items=96)
    rtsp: RtspSettings = setting(factory=RtspSettings)
    storage: StorageSettings = setting(factory=StorageSettings)
    record: RecordSettings = setting(factory=RecordSettings)
    picture: PictureSettings = setting(factory=PictureSettings)
    events: EventSettings = setting(factory=EventSettings)
    image: ImageSettings = setting(factory=ImageSettings)
    ptz: PtzSettings = setting(factory=PtzSettings)
    serial: list[SerialPortSettings] = setting(
        factory=lambda: [SerialPortSettings()], max_items=MAX_SERIAL_PORTS, check=check_ports
    )

    def check(self) -> None:
        stream_ids = [s.id for s in self.streams]
        if len(set(stream_ids)) != len(stream_ids):
            raise ValueError("stream ids must be unique")
        unknown = [m.stream_id for m in self.rtsp.multicast if m.stream_id not in stream_ids]
        if unknown:
            raise ValueError(f"multicast settings for stream {unknown[0]}, which does not exist")
        ids = [u.id for u in self.users]
        names = [u.name for u in self.users]
        if len(set(ids)) != len(ids) or len(set(names)) != len(names):
            raise ValueError("user ids and names must be unique")
        if ADMIN_NAME not in names:
            raise ValueError("the admin user cannot be removed")
        track_ids = [t.id for t in self.record.tracks]
        if len(set(track_ids)) != len(track_ids):
            raise ValueError("record track ids must be unique")
        missing = [t.stream for t in self.record.tracks if t.stream not in stream_ids]
        missing += [self.picture.stream] if self.picture.stream not in stream_ids else []
        if missing:
            raise ValueError(f"stream {missing[0]} is recorded but does not exist")
        iface_ids = [n.id for n in self.network]
        if len(set(iface_ids)) != len(iface_ids):
            raise ValueError("network interface ids must be unique")

    def stream(self, stream_id: int) -> StreamSettings | None:
        return next((s for s in self.streams if s.id == stream_id), None)

    def user(self, name: str) -> User | None:
        return next((u for u in self.users if u.name == name), None)
