"""What ISAPI handlers may use: the services `daemon.py` hands to the application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from pathlib import Path

    from vigil.board.clock import Clock
    from vigil.board.description import BoardDescription
    from vigil.board.network import NetworkDriver
    from vigil.config.events import FtpSettings, HttpHost, MailSettings
    from vigil.config.store import ConfigStore
    from vigil.events.alerts import AlertHub
    from vigil.events.bus import EventBus
    from vigil.media.daynight import DayNight
    from vigil.media.hub import StreamHub
    from vigil.media.isp import Capabilities
    from vigil.ptz.controller import PtzController
    from vigil.record.index import RecordingIndex
    from vigil.record.storage import CardStatus
    from vigil.security.accounts import Accounts
    from vigil.security.credentials import Credentials
    from vigil.security.devicekey import DeviceKey
    from vigil.security.digest import DigestAuth
    from vigil.security.lockout import Lockout
    from vigil.security.tls import ServerCertificate
    from vigil.system.devicelog import DeviceLog
    from vigil.system.identity import DeviceIdentity
    from vigil.system.upgrade import Updater


@dataclass
class SystemControl:
    """Actions on the whole device that only the daemon can carry out."""

    reboot: Callable[[], Awaitable[None]]
    factory_reset: Callable[[str], Awaitable[None]]  # "basic" | "full"
    check_ports: Callable[[object], Awaitable[None]]  # raises OSError if a port cannot be bound
    sync_time: Callable[[], Awaitable[float]]


@dataclass(frozen=True)
class StreamStatus:
    stream_id: int
    enabled: bool
    bitrate_kbps: float
    frame_rate: float
    clients: int


@dataclass(frozen=True)
class ClientStatus:
    stream_id: int
    address: str
    user: str
    transport: str
    started: float  # time.time()
    octets: int
    skips: int


class MediaControl(Protocol):
    """The media plane as the API sees it (implemented by `media.service.MediaService`)."""

    def stream_status(self) -> list[StreamStatus]: ...

    def client_status(self) -> list[ClientStatus]: ...

    async def snapshot(self, channel: int, width: int, height: int, quality: int) -> bytes: ...

    def hub(self, stream_id: int) -> StreamHub | None: ...  # None: no such stream, or disabled

    def image_capabilities(self, channel: int) -> Capabilities | None: ...  # None: no sensor


class StorageControl(Protocol):
    """The card slots as the API sees them (implemented by `record.storage.StorageManager`)."""

    def cards(self) -> list[CardStatus]: ...

    def card(self, card_id: int) -> CardStatus | None: ...

    async def format(self, card_id: int) -> None: ...  # starts it; raises StorageError

    async def usage(self, card_id: int) -> dict[str, int]: ...  # bytes in record/, picture/


@dataclass(frozen=True)
class TrackStatus:
    track_id: int
    stream_id: int
    recording: bool
    record_type: str | None  # what the segment being written is ("continuous", "manual"...)
    manual: bool


class RecordingControl(Protocol):
    """Recording as the API sees it (implemented by `record.service.RecordingService`)."""

    @property
    def root(self) -> Path | None: ...  # where footage and its index are; None: no card

    @property
    def index(self) -> RecordingIndex | None: ...  # open while a card takes footage

    def track_status(self, track_id: int) -> TrackStatus | None: ...

    async def manual(self, track_id: int, on: bool) -> None: ...  # LookupError: no such track


class AlarmIOControl(Protocol):
    """Alarm inputs and relay outputs (implemented by `events.alarm_io.AlarmIO`)."""

    def input_active(self, input_id: int) -> bool: ...  # LookupError: no such input

    def output_active(self, output_id: int) -> bool: ...  # LookupError: no such output

    async def set_output(self, output_id: int, active: bool) -> None: ...  # by hand


class NotifyTests(Protocol):
    """The "test" buttons: one attempt with the given settings; ActionFailed says why not."""

    async def test_mail(self, settings: MailSettings, password: str) -> None: ...

    async def test_ftp(self, settings: FtpSettings, password: str) -> None: ...

    async def test_http_host(self, host: HttpHost, password: str) -> None: ...


@dataclass
class EventsControl:
    bus: EventBus
    alerts: AlertHub  # what the alertStream subscribers are sent
    alarm_io: AlarmIOControl
    notify: NotifyTests
    credentials: Credentials  # passwords of the mail, FTP and HTTP host accounts


@dataclass
class ApiContext:
    board: BoardDescription
    identity: DeviceIdentity
    store: ConfigStore
    accounts: Accounts
    digest: DigestAuth
    lockout: Lockout
    devicelog: DeviceLog
    clock: Clock
    network: NetworkDriver
    device_key: DeviceKey
    certificate: ServerCertificate  # HTTPS
    system: SystemControl
    media: MediaControl
    storage: StorageControl
    recording: RecordingControl
    events: EventsControl
    ptz: PtzController | None = None  # None: the board has no PTZ line (api.isapi_ptz)
    day_night: DayNight | None = None  # None: not started (api.isapi_daynight)
    upgrade: Updater | None = None  # None: the board has no upgrades (api.isapi_upgrade)


CONTEXT = web.AppKey("vigil_context", ApiContext)


def context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]
