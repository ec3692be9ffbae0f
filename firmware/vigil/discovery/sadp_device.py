"""The device as SADP sees it: its ProbeMatch fields, and the commands SADP may carry out.

Activation and password checks go through the same `Accounts` and `Lockout` as HTTP, so a
wrong password over SADP counts toward the same per-address lock.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable

from vigil.board.description import BoardDescription
from vigil.board.network import NetworkDriver
from vigil.config.model import ADMIN_NAME, Config
from vigil.config.schema import ConfigError
from vigil.config.store import ConfigStore
from vigil.discovery.sadp import SadpRefused
from vigil.security.accounts import AccountError, Accounts
from vigil.security.lockout import Lockout
from vigil.system.devicelog import DeviceLog
from vigil.system.identity import BUILD_DATE, DeviceIdentity

log = logging.getLogger(__name__)


def _flag(value: bool) -> str:
    return "true" if value else "false"


@dataclasses.dataclass
class SadpDeviceAdapter:
    identity: DeviceIdentity
    store: ConfigStore
    accounts: Accounts
    lockout: Lockout
    network: NetworkDriver
    devicelog: DeviceLog
    board: BoardDescription
    request_reboot: Callable[[], Awaitable[None]]

    def probe_match_fields(self) -> dict[str, str]:
        config = self.store.current
        state = self.network.state(self.board.interface_name(1))
        is_nvr = self.identity.device_type == "NVR"
        boot = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.identity.boot_time))
        return {
            "DeviceType": self.identity.device_type,
            "DeviceDescription": self.identity.model,
            "DeviceSN": self.identity.serial,
            "CommandPort": str(config.ports.http),
            "HttpPort": str(config.ports.http),
            "MAC": self.identity.mac_dashed,
            "IPv4Address": state.ipv4_address,
            "IPv4SubnetMask": state.ipv4_mask,
            "IPv4Gateway": state.ipv4_gateway,
            "IPv6Address": "::",
            "IPv6Gateway": "::",
            "IPv6MaskLen": "64",
            "DHCP": _flag(config.network[0].dhcp),
            "AnalogChannelNum": "0" if is_nvr else "1",
            "DigitalChannelNum": "0",
            "SoftwareVersion": f"{self.identity.firmware_version} build {BUILD_DATE}",
            "DSPVersion": self.identity.firmware_version,
            "BootTime": boot,
            "Activated": _flag(self.accounts.activated),
            "PasswordResetAbility": "false",
        }

    async def activate(self, password: str, source: str) -> None:
        self._refuse_if_locked(source)
        try:
            await self.accounts.activate(password)
        except AccountError as exc:
            raise SadpRefused(exc.reason) from None
        self.devicelog.record(
            "Operation", "remoteActivate", user=ADMIN_NAME, source=source, details="over SADP"
        )

    async def update_network(self, password: str, changes: dict[str, str], source: str) -> None:
        self._check_admin(password, source)
        try:
            await self.store.update(lambda config: _network_changed(config, changes))
        except (ConfigError, ValueError) as exc:
            log.warning("SADP network update from %s refused: %s", source, exc)
            raise SadpRefused("badRequest") from None
        self.devicelog.record(
            "Operation",
            "remoteConfigWrite",
            user=ADMIN_NAME,
            source=source,
            details=f"SADP update {sorted(changes)}",
        )

    async def reboot(self, password: str, source: str) -> None:
        self._check_admin(password, source)
        self.devicelog.record(
            "Operation", "remoteReboot", user=ADMIN_NAME, source=source, details="over SADP"
        )
        await self.request_reboot()

    async def reset_password(self, sealed_code: str, source: str) -> None:
        # Vigil keeps no vendor reset code: only the physical reset button restores access.
        raise SadpRefused("physicalResetRequired")

    def _refuse_if_locked(self, source: str) -> None:
        if self.lockout.remaining(source):
            raise SadpRefused("locked")

    def _check_admin(self, password: str, source: str) -> None:
        if not self.accounts.activated:
            raise SadpRefused("notActivated")
        self._refuse_if_locked(source)
        if not self.accounts.verify(ADMIN_NAME, password):
            self.lockout.failed(source)
            raise SadpRefused("locked" if self.lockout.remaining(source) else "badPassword")
        self.lockout.succeeded(source)


def _network_changed(config: Config, changes: dict[str, str]) -> Config:
    first = config.network[0]
    fields: dict[str, object] = {}
    if "DHCP" in changes:
        if changes["DHCP"] not in ("true", "false"):
            raise ValueError("DHCP is true or false")
        fields["dhcp"] = changes["DHCP"] == "true"
    for tag, name in (
        ("IPv4Address", "ipv4_address"),
        ("IPv4SubnetMask", "ipv4_mask"),
        ("IPv4Gateway", "ipv4_gateway"),
    ):
        if tag in changes:
            fields[name] = changes[tag]
    updated = dataclasses.replace(
        config, network=[dataclasses.replace(first, **fields), *config.network[1:]]
    )
    if "HttpPort" in changes:
        ports = dataclasses.replace(config.ports, http=int(changes["HttpPort"]))
        updated = dataclasses.replace(updated, ports=ports)
    return updated
