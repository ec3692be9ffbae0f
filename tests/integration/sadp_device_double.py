"""A test double of the daemon's SadpDevice, and a script running the real responder with it.

`RecordingDevice` stands in for the daemon (the test of the real daemon over SADP comes with
it): it keeps activation and the admin password in memory, refuses the way the daemon does, and
records every call. Run as a script (inside a network namespace), it starts a real
`SadpResponder` with a real `DeviceKey`, writes JSON events to stdout (`ready`, `call`,
`applied`) and takes JSON orders on stdin (`apply` discovery settings, `quit`). Logs go to
stderr so the test can check what was logged.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import string
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.line_protocol import emit, orders
from vigil.config.model import DiscoverySettings
from vigil.discovery.sadp import SadpRefused, SadpResponder
from vigil.security.devicekey import DeviceKey

Emit = Callable[[dict[str, Any]], None]


def _strong(password: str) -> bool:
    classes = (
        any(c.isupper() for c in password),
        any(c.islower() for c in password),
        any(c.isdigit() for c in password),
        any(c in string.punctuation for c in password),
    )
    return 8 <= len(password) <= 64 and sum(classes) >= 3


class RecordingDevice:
    """Test double of the daemon behind SADP; see the module docstring."""

    def __init__(self, serial: str, mac: str, ipv4: str, emit: Emit, delay: float = 0.0) -> None:
        self.serial, self.mac, self.ipv4 = serial, mac, ipv4
        self.emit = emit
        self.delay = delay  # lets a test hold a command open while other probes arrive
        self.admin_password: str | None = None
        self.network = {
            "IPv4Address": ipv4,
            "IPv4SubnetMask": "255.255.255.0",
            "IPv4Gateway": "",
            "DHCP": "false",
            "HttpPort": "80",
        }
        self.calls: list[dict[str, Any]] = []

    def _record(self, name: str, **details: Any) -> None:
        call = {"event": "call", "name": name, **details}
        self.calls.append(call)
        self.emit(call)

    def probe_match_fields(self) -> dict[str, str]:
        return {
            "DeviceType": "IPCamera",
            "DeviceDescription": "VGL-TEST-1",
            "DeviceSN": self.serial,
            "CommandPort": "8000",
            "HttpPort": self.network["HttpPort"],
            "MAC": self.mac,
            "IPv4Address": self.network["IPv4Address"],
            "IPv4SubnetMask": self.network["IPv4SubnetMask"],
            "IPv4Gateway": self.network["IPv4Gateway"],
            "IPv6Address": "::",
            "IPv6Gateway": "::",
            "IPv6MaskLen": "64",
            "DHCP": self.network["DHCP"],
            "AnalogChannelNum": "1",
            "DigitalChannelNum": "0",
            "SoftwareVersion": "V0.1.0 build 261121",
            "DSPVersion": "V0.1.0",
            "BootTime": "2026-11-21 10:15:00",
            "Activated": "true" if self.admin_password else "false",
            "PasswordResetAbility": "false",
        }

    def _check_admin(self, password: str) -> None:
        if self.admin_password is None:
            raise SadpRefused("notActivated")
        if password != self.admin_password:
            raise SadpRefused("badPassword")

    async def activate(self, password: str, source: str) -> None:
        self._record("activate", password=password, source=source)
        await asyncio.sleep(self.delay)
        if self.admin_password is not None:
            raise SadpRefused("alreadyActivated")
        if not _strong(password):
            raise SadpRefused("weakPassword")
        self.admin_password = password

    async def update_network(self, password: str, changes: dict[str, str], source: str) -> None:
        self._record("update_network", password=password, changes=changes, source=source)
        self._check_admin(password)
        self.network.update(changes)

    async def reboot(self, password: str, source: str) -> None:
        self._record("reboot", password=password, source=source)
        self._check_admin(password)

    async def reset_password(self, code: str, source: str) -> None:
        self._record("reset_password", code=code, source=source)
        raise SadpRefused("physicalResetRequired")


async def _serve(args: argparse.Namespace) -> None:
    device = RecordingDevice(args.serial, args.mac, args.ipv4, emit)
    key = DeviceKey(args.key)
    settings = DiscoverySettings(sadp_port=args.port, multicast_enabled=not args.no_multicast)
    responder = SadpResponder(
        device, key, args.mac, port=settings.sadp_port, multicast=settings.multicast_enabled
    )
    await responder.start()
    emit({"event": "ready", "port": responder.port})
    try:
        async for order in orders():
            if order["order"] == "apply":
                new = dataclasses.replace(settings, **order["settings"])
                await responder.apply(settings, new)
                settings = new
                emit({"event": "applied", "running": responder.running})
    finally:
        await responder.stop()
        emit({"event": "stopped"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--serial", required=True)
    parser.add_argument("--mac", required=True)
    parser.add_argument("--ipv4", required=True)
    parser.add_argument("--port", type=int, default=37020)
    parser.add_argument("--no-multicast", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
