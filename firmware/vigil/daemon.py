"""vigild: builds the services from the board description and the config, runs them, stops them.

The only module that knows every subsystem. Start order: storage of state (config, secrets,
log), then the security services, the card, the media plane, recording, then the listeners;
stop is the reverse, and every task and socket is closed before the process exits (or
re-executes itself for a simulated reboot).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import faulthandler
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from vigil.api.app import build_app
from vigil.api.context import ApiContext, EventsControl, SystemControl
from vigil.api.server import HttpService
from vigil.board.clock import local_iso, make_clock, parse_time_zone
from vigil.board.description import BoardDescription, BoardError, load_board
from vigil.board.gpio import make_pin_factory
from vigil.board.network import NetworkError, SimNetwork, make_network
from vigil.board.simcontrol import SimControl
from vigil.config.events import (
    AlarmInput,
    AlarmIOSettings,
    AlarmOutput,
    EventSettings,
    default_triggers,
)
from vigil.config.model import (
    Config,
    DiscoverySettings,
    NetworkInterface,
    PortSettings,
    SecuritySettings,
    fit_to_sensor,
)
from vigil.config.ptz import PtzSettings
from vigil.config.store import ConfigStore
from vigil.discovery.mdns import MdnsAdvertiser
from vigil.discovery.sadp import SadpResponder
from vigil.discovery.sadp_device import SadpDeviceAdapter
from vigil.events.alarm_io import AlarmIO
from vigil.events.alerts import AlertDevice, AlertHub, alert_xml
from vigil.events.bus import Event, EventBus
from vigil.events.detection import DetectionService
from vigil.events.exceptions import DeviceExceptions, NetworkExceptions
from vigil.events.ftp_upload import FtpUploadAction
from vigil.events.http_push import http_push_actions
from vigil.events.linkage import Action, ActionRunner
from vigil.events.mail import MailAction
from vigil.events.notify import NotifyTester
from vigil.events.rules import LinkageHooks, Rules
from vigil.media.daynight import DayNight
from vigil.media.rtsp.auth import LIVE_PERMISSION, AccountsRtspAuth, RtspDigest
from vigil.media.rtsp.playback import PLAYBACK_PERMISSION
from vigil.media.rtsp.playback_session import PlaybackCardUser
from vigil.media.service import LOCAL_CHANNEL, MediaService
from vigil.ptz.controller import PtzController
from vigil.ptz.line import SerialLine
from vigil.ptz.simdome import SimDome
from vigil.record.index import RecordingIndex
from vigil.record.pictures import PictureTaker
from vigil.record.service import RecordingService
from vigil.record.storage import StorageManager
from vigil.security.accounts import Accounts
from vigil.security.credentials import Credentials
from vigil.security.devicekey import DeviceKey
from vigil.security.digest import DigestAuth
from vigil.security.ipfilter import IpFilter
from vigil.security.lockout import Lockout
from vigil.security.passwords import PasswordVault
from vigil.security.tls import ServerCertificate
from vigil.system.devicelog import DeviceLog
from vigil.system.identity import DeviceIdentity, load_identity
from vigil.system.memory import disable_transparent_huge_pages
from vigil.system.service_manager import ServiceManager
from vigil.system.timesync import NtpSync
from vigil.system.upgrade import BootError, make_updater

log = logging.getLogger("vigild")
REALM = "Vigil"
REBOOT_DELAY_S = 0.5  # lets the HTTP answer leave before the listeners close
ADDRESS_TTL_S = 10.0
# The device log's Alarm records (minor type + Start/Stop; motionStart as on Hikvision devices).
# Exceptions are logged as Exception records where they are detected.
ALARM_LOG_WORDS = {
    "vmd": "motion",
    "io": "alarmIn",
    "tamperdetection": "hideAlarm",
    "videoloss": "videoLoss",
    "defocus": "defocus",
    "scenechangedetection": "sceneChange",
}


def board_defaults(board: BoardDescription) -> Config:
    """SPEC defaults, with what the board decides (ports, interfaces) filled in."""
    return Config(
        network=[NetworkInterface(id=i) for i in range(1, len(board.network.interfaces) + 1)],
        ports=PortSettings(http=board.ports.http, https=board.ports.https, rtsp=board.ports.rtsp),
        discovery=DiscoverySettings(sadp_port=board.ports.sadp),
        events=board_events(board),
        streams=fit_to_sensor(
            Config().streams, board.sensor.max_width, board.sensor.max_height, board.sensor.max_fps
        ),
    )


def board_events(board: BoardDescription) -> EventSettings:
    """The board's alarm inputs and relays, each with its default trigger."""
    inputs = [AlarmInput(id=i) for i in range(1, len(board.alarm_io.inputs) + 1)]
    outputs = [AlarmOutput(id=i) for i in range(1, len(board.alarm_io.outputs) + 1)]
    return EventSettings(
        alarm_io=AlarmIOSettings(inputs=inputs, outputs=outputs),
        triggers=default_triggers(inputs=len(inputs)),
    )


def reset_config(current: Config, defaults: Config, mode: str) -> Config:
    """SPEC §2: Restore (basic) keeps users, network and ports; Default (full) keeps nothing."""
    if mode == "full":
        return defaults
    return dataclasses.replace(
        defaults, users=current.users, network=current.network, ports=current.ports
    )


class Vigil:
    def __init__(
        self, board: BoardDescription, data_dir: Path, bind: str, sim_card: Path | None = None
    ) -> None:
        self.board, self.data_dir, self.bind = board, data_dir, bind
        self.sim_card = sim_card
        self.stopped = asyncio.Event()
        self.reboot_requested = False
        self._stop_steps: list[Callable[[], Awaitable[None] | None]] = []
        self._address, self._address_checked = "0.0.0.0", -ADDRESS_TTL_S
        self.ptz: PtzController | None = None  # the board's dome, once started

    # -- building ---------------------------------------------------------------------------
    def build(self, overrides: dict[str, int]) -> Config:
        secrets = self.data_dir / "secrets"
        self.identity: DeviceIdentity = load_identity(self.board, self.data_dir)
        self._boot_slot()
        self.store = ConfigStore(self.data_dir / "config.toml", board_defaults(self.board))
        config = self.store.load()
        self.vault = PasswordVault(secrets / "passwords.json", REALM)
        self.vault.load()
        self.credentials = Credentials(secrets / "credentials.json")
        self.credentials.load()
        self.devicelog = DeviceLog(self.data_dir / "log.db", config.log.max_records)
        self.clock = make_clock(self.board.clock.driver, self.data_dir)
        self.network = make_network(self.board.network.driver, self.data_dir, self.identity.mac)
        self.device_key = DeviceKey(secrets / "device-key.pem")
        self.accounts = Accounts(self.store, self.vault)
        self.lockout = Lockout(config.security, self._record_lock)
        self.ipfilter = IpFilter(config.security.ip_filter)
        self.digest = DigestAuth(REALM, self._ha1)
        self.bus = EventBus(self.clock.now)
        self.exceptions = DeviceExceptions(self.bus)
        self.ntp = NtpSync(self.clock, lambda: self.store.current.time, self._record_ntp)
        return self._with_overrides(config, overrides)

    def _boot_slot(self) -> None:
        """The firmware slot this start runs (the simulated bootloader's choice; BootError if
        its vigild cannot start) and the version it reports."""
        update = self.board.update
        self.updater = make_updater(
            update.driver,
            update.keyring,
            self.board.board.name,
            self.data_dir,
            self.identity.firmware_version,
            lambda major, minor, details: self.devicelog.record(major, minor, details=details),
        )
        version = self.updater.boot() if self.updater is not None else None
        if version:
            self.identity = dataclasses.replace(self.identity, firmware_version=version)

    def _with_overrides(self, config: Config, overrides: dict[str, int]) -> Config:
        ports = {k: v for k, v in overrides.items() if k in ("http", "https", "rtsp")}
        config = dataclasses.replace(config, ports=dataclasses.replace(config.ports, **ports))
        if "sadp" in overrides:
            discovery = dataclasses.replace(config.discovery, sadp_port=overrides["sadp"])
            config = dataclasses.replace(config, discovery=discovery)
        return config

    def _ha1(self, user: str, algorithm: str) -> str | None:
        return self.vault.ha1(user, algorithm) if self.accounts.user(user) else None

    def _record_lock(self, address: str, minutes: int) -> None:
        self.exceptions.address_locked(address, minutes)
        self.devicelog.record(
            "Exception",
            "illegalAccess",
            source=address,
            details=f"illaccess: address locked for {minutes} min after failed logins",
        )

    def _record_storage_event(self, kind: str, active: bool, details: str) -> None:
        """diskerror / diskfull: events of the device, and lines of its log."""
        self.exceptions.storage_event(kind, active, details)
        minor = {"diskerror": "diskError", "diskfull": "diskFull"}[kind]
        if active:
            self.devicelog.record("Exception", minor, details=details)
        else:
            self.devicelog.record("Information", f"{minor}Cleared", details=details)

    def _log_alarm(self, event: Event) -> None:
        word = ALARM_LOG_WORDS.get(event.type)
        if word is not None:
            minor = word + ("Start" if event.active else "Stop")
            self.devicelog.record("Alarm", minor, channel=event.source, details=event.description)

    def _record_ntp(self, success: bool, message: str) -> None:
        if success:
            self.devicelog.record("Information", "ntpSync", details=message)
        else:
            self.devicelog.record("Exception", "ntpSyncFailed", details=message)

    # -- running ----------------------------------------------------------------------------
    async def start(self, config: Config) -> None:
        await self.store.replace(config)
        self.devicelog.open()
        self._stop_steps.append(self.devicelog.close)
        self.devicelog.record(
            "Information", "startDVR", details=f"Vigil {self.identity.firmware_version}"
        )
        await self._start_events()
        await self._start_storage()
        await self._start_media()
        await self._start_detection()
        await self._start_recording()
        await self._start_alarm_io()
        await self._start_day_night()
        await self._start_ptz()
        await self._start_http()
        await self.ntp.start()
        self._stop_steps.append(self.ntp.stop)
        await self._start_discovery()
        self._subscribe()
        if self.updater is not None:  # serving: the slot is good (rauc status mark-good)
            await self.updater.mark_good()

    async def _start_storage(self) -> None:
        self.storage = StorageManager.for_board(
            self.board.storage,
            self.data_dir,
            lambda: self.store.current.storage,
            sim_card=self.sim_card,
        )
        self.storage.subscribe_events(self._record_storage_event)
        await self.storage.start()
        self._stop_steps.append(self.storage.stop)

    async def _start_media(self) -> None:
        digest = RtspDigest(REALM, self._ha1)  # one for both: a nonce is checked where issued

        def rtsp_auth(permission: str) -> AccountsRtspAuth:
            return AccountsRtspAuth(
                digest, self.accounts, self.lockout, lambda: self.store.current.security, permission
            )

        self.media = MediaService(
            self.board,
            self.store,
            bind=self.bind,
            rtsp_auth=rtsp_auth(LIVE_PERMISSION),
            allow=self.ipfilter.allows,
            playback_auth=rtsp_auth(PLAYBACK_PERMISSION),
        )
        await self.media.start()
        self._stop_steps.append(self.media.stop)

    async def _start_detection(self) -> None:
        """The local channel's video detectors, on its sub stream's pictures."""
        assert self.media.channel is not None
        self.detection = DetectionService(
            self.bus,
            lambda: self.store.current.events,  # read for each picture: changes apply live
            {LOCAL_CHANNEL: self.media.channel},
            self._local_now,
        )
        await self.detection.start()
        self._stop_steps.append(self.detection.stop)
        if self.sim_control is not None:
            self.sim_control.on("scene", self.media.set_scene)

    async def _start_recording(self) -> None:
        self.recording = RecordingService(
            self.storage,
            self.store,
            self.media.hubs.get,
            self.clock,
            users=[PlaybackCardUser(self.media.end_playback), self._picture_taker()],
        )
        self.media.recordings = self._recordings
        await self.recording.start()
        self._stop_steps.append(self.recording.stop)

    def _picture_taker(self) -> PictureTaker:
        def stream_size(stream_id: int) -> tuple[int, int]:
            stream = self.store.current.stream(stream_id)
            if stream is None:
                raise LookupError(f"no stream {stream_id}")
            return stream.width, stream.height

        return PictureTaker(
            lambda: self.store.current.picture,
            self.media.snapshot,
            stream_size,
            lambda: self.network.state(self.board.interface_name(1)).ipv4_address,
            quota_percent=lambda: self.store.current.storage.picture_quota_percent,
            time_zone=lambda: self.store.current.time.time_zone,
        )

    async def _start_events(self) -> None:
        """The bus and the rules that link events to actions, first: every service after them
        may publish (a card that is full at start is an event too)."""
        self.bus.bind(asyncio.get_running_loop())
        self.alerts = AlertHub(self._alert_device)
        self.sim_control = SimControl(self.data_dir / "sim.sock") if self._simulated() else None
        actions: list[Action] = self._notifications()
        self.rules = Rules(
            self.bus,
            lambda: self.store.current.events,
            self._local_now,
            self.alerts,
            ActionRunner(),
            actions,
            LinkageHooks(
                record=lambda channel, kind, on: self.recording.trigger(channel, kind, on),
                output=self._trigger_output,
                ptz_preset=self._ptz_preset,
            ),
        )
        self._stop_steps.append(self.rules.stop)
        self._stop_steps.append(self.bus.clear)
        self._stop_steps.append(self.bus.subscribe(self._log_alarm))
        interfaces = self.board.network.interfaces
        self.network_events = NetworkExceptions(self.network, interfaces, self.bus)
        await self.network_events.start()
        self._stop_steps.append(self.network_events.stop)
        if self.board.network.driver == "linux":
            await self._configure_interfaces()
        if self.sim_control is not None and isinstance(self.network, SimNetwork):
            self.sim_control.on("link", self.network.link_control(interfaces))
        if self.sim_control is not None:
            await self.sim_control.start()
            self._stop_steps.append(self.sim_control.stop)

    def _notifications(self) -> list[Action]:
        """Mail, FTP and HTTP-host actions (read their settings at each event), and the tests."""
        mail = MailAction(
            lambda: self.store.current.events.mailing,
            self.credentials,
            self._event_snapshot,
            lambda: self.store.current.device.name,
            lambda at: local_iso(at, self.store.current.time.time_zone),
        )
        ftp = FtpUploadAction(
            lambda: self.store.current.events.ftp,
            self.credentials,
            self._event_snapshot,
            lambda: self.network.state(self.board.interface_name(1)).ipv4_address,
            lambda: self.store.current.time.time_zone,
        )

        def render(event: Event) -> bytes:
            return alert_xml(event, self._alert_device())

        self.notify = NotifyTester(mail, ftp, render, self.clock.now)
        hosts = http_push_actions(
            lambda: self.store.current.events.http_hosts, self.credentials, render
        )
        return [mail, ftp, *hosts]

    async def _event_snapshot(self, channel: int) -> bytes:
        """A JPEG of `channel` for mail and FTP, at the picture settings' size and quality."""
        picture = self.store.current.picture
        stream = self.store.current.stream(channel * 100 + picture.stream % 100)
        if stream is None:
            raise LookupError(f"channel {channel} has no stream {picture.stream % 100:02d}")
        return await self.media.snapshot(channel, stream.width, stream.height, picture.quality)

    def _simulated(self) -> bool:
        """Whether any hardware is the simulator's: then its control socket is served."""
        board = self.board
        drivers = (board.sensor.driver, board.alarm_io.driver, board.network.driver)
        return "sim" in drivers

    async def _start_alarm_io(self) -> None:
        """Alarm inputs and relays, once what their linkage drives (recording) is running."""
        board = self.board.alarm_io
        self.alarm_io = AlarmIO(
            board, lambda: self.store.current.events.alarm_io, self.bus, make_pin_factory(board)
        )
        await self.alarm_io.start()
        self._stop_steps.append(self.alarm_io.stop)
        if self.sim_control is not None and board.driver == "sim":
            self.sim_control.on("input", self.alarm_io.sim_input)

    async def _start_day_night(self) -> None:
        """IR-cut, illuminator and light sensor, following the local channel's image settings."""
        self.day_night = DayNight.for_board(
            self.board.day_night,
            lambda: self.store.current.image.channel(LOCAL_CHANNEL).day_night,
            self.bus,
            self._local_now,
            monochrome=self.media.set_monochrome,
            record=lambda minor, details: self.devicelog.record(
                "Information", minor, channel=LOCAL_CHANNEL, details=details
            ),
        )
        await self.day_night.start()
        self._stop_steps.append(self.day_night.stop)
        if self.sim_control is not None and self.day_night.light is not None:
            self.sim_control.on("light", self.day_night.sim_light)

    async def _start_ptz(self) -> None:
        """The dome on the board's RS-485 line, if it has one; the linkage's go-to-preset."""
        board = self.board.ptz
        if not board.present:
            return
        config = self.store.current
        device = board.device
        if board.driver == "sim":
            dome = SimDome(config.ptz)
            self._stop_steps.append(dome.stop)
            self.store.subscribe("ptz", lambda _old, new: dome.apply(new))
            device = dome.path
        line = SerialLine(device, config.serial[0], rs485=board.rs485)
        self.ptz = PtzController(line, config.ptz, self._save_ptz)
        await self.ptz.start()
        self._stop_steps.append(self.ptz.stop)
        self.store.subscribe("serial", line.apply_ports)
        self.store.subscribe("ptz", lambda _old, new: self._apply_ptz(new))

    async def _save_ptz(self, settings: PtzSettings) -> None:
        await self.store.update(lambda config: dataclasses.replace(config, ptz=settings))

    async def _apply_ptz(self, settings: PtzSettings) -> None:
        if self.ptz is not None:
            await self.ptz.apply(settings)

    async def _ptz_preset(self, channel: int, preset: int) -> None:
        if self.ptz is None:
            log.warning("no PTZ dome on this board to send to preset %d", preset)
            return
        await self.ptz.linkage_preset(channel, preset)

    def _trigger_output(self, output_id: int) -> None:
        try:
            self.alarm_io.trigger(output_id)
        except LookupError:
            log.warning("no alarm output %d to trigger", output_id)

    def _local_now(self) -> datetime:
        return self.clock.now().astimezone(parse_time_zone(self.store.current.time.time_zone))

    def _alert_device(self) -> AlertDevice:
        """What every alert says about the device; the address is looked up at most every 10 s."""
        now = time.monotonic()
        if now - self._address_checked > ADDRESS_TTL_S:
            state = self.network.state(self.board.interface_name(1))
            self._address = state.ipv4_address or "0.0.0.0"
            self._address_checked = now
        return AlertDevice(
            ip_address=self._address,
            port=self.store.current.ports.http,
            protocol="HTTP",
            mac_address=self.identity.mac,
            time_zone=self.store.current.time.time_zone,
            channel_name=self.store.current.device.name,
        )

    def _recordings(self) -> tuple[Path, RecordingIndex] | None:
        """Where RTSP playback finds the footage: the recording service's, while it has a card."""
        root, index = self.recording.root, self.recording.index
        return (root, index) if root is not None and index is not None else None

    async def _start_http(self) -> None:
        certificate = ServerCertificate(self.data_dir / "secrets", f"vigil-{self.identity.serial}")
        ctx = ApiContext(
            board=self.board,
            identity=self.identity,
            store=self.store,
            accounts=self.accounts,
            digest=self.digest,
            lockout=self.lockout,
            devicelog=self.devicelog,
            clock=self.clock,
            network=self.network,
            device_key=self.device_key,
            certificate=certificate,
            system=SystemControl(
                reboot=self.request_reboot,
                factory_reset=self.factory_reset,
                check_ports=self._check_ports,
                sync_time=self.ntp.sync_once,
            ),
            media=self.media,
            storage=self.storage,
            recording=self.recording,
            events=EventsControl(
                bus=self.bus,
                alerts=self.alerts,
                alarm_io=self.alarm_io,
                notify=self.notify,
                credentials=self.credentials,
            ),
            day_night=self.day_night,
            ptz=self.ptz,
            upgrade=self.updater,
        )
        self.http = HttpService(
            build_app(ctx),
            self.bind,
            self.store.current.ports,
            self.ipfilter,
            certificate.context,
        )
        await self.http.start()
        self._stop_steps.append(self.http.stop)
        self._stop_steps.append(self.alerts.close)  # before the listeners: streams end at once

    async def _check_ports(self, ports: object) -> None:
        assert isinstance(ports, PortSettings)
        self.http.check_ports(ports)

    async def _start_discovery(self) -> None:
        settings = self.store.current.discovery
        adapter = SadpDeviceAdapter(
            identity=self.identity,
            store=self.store,
            accounts=self.accounts,
            lockout=self.lockout,
            network=self.network,
            devicelog=self.devicelog,
            board=self.board,
            request_reboot=self.request_reboot,
        )
        self.sadp = SadpResponder(
            adapter,
            self.device_key,
            self.identity.mac_dashed,
            port=settings.sadp_port,
            multicast=settings.multicast_enabled,
            bind=self.bind,
        )
        if settings.sadp_enabled:
            await self.sadp.start()
        self._stop_steps.append(self.sadp.stop)
        self.mdns = MdnsAdvertiser.for_device(self.identity, self.store.current, self.bind)
        self._stop_steps.append(self.mdns.stop)
        if settings.mdns_enabled:
            self.mdns.start_soon()

    def _subscribe(self) -> None:
        store = self.store
        store.subscribe("ports", self.http.apply)
        store.subscribe("events", self.alarm_io.apply)
        store.subscribe("ports", self.media.apply_ports)
        store.subscribe("streams", self.media.apply_streams)
        store.subscribe("image", self.media.apply_image)
        store.subscribe("image", self.day_night.apply)
        store.subscribe("time", self.media.apply_time)
        store.subscribe("storage", self.storage.apply)
        store.subscribe("record", self.recording.apply_record)
        store.subscribe("streams", self.recording.apply_streams)
        store.subscribe("security", self._apply_security)
        store.subscribe("time", self.ntp.apply)
        store.subscribe("network", self._apply_network)
        store.subscribe("discovery", self._apply_discovery)
        store.subscribe("log", lambda _old, new: self.devicelog.set_max_records(new.max_records))
        store.subscribe("ports", lambda _o, _n: self.mdns.update_ports(self.store.current.ports))

    def _apply_security(self, old: SecuritySettings, new: SecuritySettings) -> None:
        self.lockout.apply(old, new)
        self.ipfilter.apply(old.ip_filter, new.ip_filter)

    async def _configure_interfaces(self) -> None:
        """A real board's interfaces are the daemon's own: at start they are brought up as the
        saved settings say (DHCP on a new device), as a change would (`_apply_network`)."""
        for settings in self.store.current.network:
            name = self.board.interface_name(settings.id)
            try:
                await self.network.apply(name, settings)
            except NetworkError as exc:  # the device still serves wherever it can be reached
                log.error("network interface %s could not be configured: %s", name, exc)

    async def _apply_network(
        self, old: list[NetworkInterface], new: list[NetworkInterface]
    ) -> None:
        for settings in new:
            if settings not in old:
                name = self.board.interface_name(settings.id)
                await self.network.apply(name, settings)
                log.info("network interface %s reconfigured", name)
        self.sadp.refresh_multicast()  # group membership follows the interfaces' addresses

    async def _apply_discovery(self, old: DiscoverySettings, new: DiscoverySettings) -> None:
        await self.sadp.apply(old, new)
        if new.mdns_enabled and not old.mdns_enabled:
            self.mdns.start_soon()
        elif old.mdns_enabled and not new.mdns_enabled:
            await self.mdns.stop()

    async def stop(self) -> None:
        while self._stop_steps:
            step = self._stop_steps.pop()
            try:
                result = step()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("stopping %s failed", step)

    # -- whole-device actions -----------------------------------------------------------------
    async def request_reboot(self) -> None:
        log.info("reboot requested")
        self.reboot_requested = True
        asyncio.get_running_loop().call_later(REBOOT_DELAY_S, self.stopped.set)

    async def factory_reset(self, mode: str) -> None:
        new = reset_config(self.store.current, self.store.defaults, mode)
        await self.store.replace(new)
        if mode == "full":
            self.vault.wipe()
            self.credentials.wipe()
        log.warning("factory reset (%s); rebooting", mode)
        await self.request_reboot()

    def print_banner(self) -> None:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::") else self.bind
        lines = [f"Vigil {self.identity.firmware_version} on board {self.board.board.name}"]
        lines.append("  web page: " + "  ".join(self.http.urls(host)))
        lines += [f"  {u}ISAPI/System/deviceInfo" for u in self.http.urls(host)]
        rtsp = self.store.current.ports.rtsp
        lines += [
            f"  rtsp://{host}:{rtsp}/Streaming/Channels/{s.id}"
            for s in self.store.current.streams
            if s.enabled
        ]
        if not self.accounts.activated:
            https = self.http.urls(host)[-1]
            lines.append(
                "  Not activated. Set the admin password with `vigil activate "
                f"{self.identity.serial}` or PUT {https}ISAPI/System/activate"
            )
        print("\n".join(lines), flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vigild", description="The Vigil camera daemon.")
    parser.add_argument("--board", default="sim", help="board name (sim) or path to board.toml")
    parser.add_argument("--data-dir", type=Path, default=Path("/data/vigil"))
    parser.add_argument("--bind", help="listen address (default: the board's)")
    for name in ("http", "https", "rtsp", "sadp"):
        parser.add_argument(f"--{name}-port", type=int, help=f"override the {name} port")
    parser.add_argument(
        "--sim-card",
        type=Path,
        help="board sim: card image file (made if missing) or loop device to use as the card",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> bool:
    """Run until SIGTERM/SIGINT or a reboot request; True if a reboot was asked for."""
    board = load_board(args.board)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    vigil = Vigil(board, args.data_dir, args.bind or board.network.bind, args.sim_card)
    overrides = {
        name: getattr(args, f"{name}_port")
        for name in ("http", "https", "rtsp", "sadp")
        if getattr(args, f"{name}_port")
    }
    config = vigil.build(overrides)
    loop = asyncio.get_running_loop()

    def terminate() -> None:
        vigil.reboot_requested = False  # the system's stop wins over a reboot still pending
        vigil.stopped.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, terminate)
    service_manager = ServiceManager()
    try:
        await vigil.start(config)
        vigil.print_banner()
        service_manager.ready(f"serving on board {board.board.name}")
        await vigil.stopped.wait()
    finally:
        log.info("stopping")
        await service_manager.stopping()
        await vigil.stop()
    return vigil.reboot_requested


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # `kill -USR1 <pid>` writes every thread's stack to the log: what an operator (or a test)
    # needs to see when something hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    disable_transparent_huge_pages()
    try:
        reboot = asyncio.run(run(args))
    except (BoardError, BootError) as exc:
        sys.exit(f"vigild: {exc}")
    if reboot:
        board = load_board(args.board)
        if board.power.driver == "linux":
            os.execv("/sbin/reboot", ["reboot"])
        # The simulated board reboots by starting the daemon afresh in this process.
        log.info("restarting (simulated reboot)")
        os.execv(sys.executable, [sys.executable, "-m", "vigil", *sys.argv[1:]])
