"""Host side of SADP: find devices on the LAN and send them sealed commands.

A probe goes to the multicast group and to the limited broadcast address (a factory-fresh camera
is usually on another subnet, so unicast would not reach it); every device answers by unicast.
Commands carry the password sealed to the device's public key with its current challenge
(`vigil.security.keys.seal`). A command is retransmitted with the same bytes until a reply
comes: the device runs it once and repeats its answer.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vigil.discovery.sadp_messages import (
    INQUIRY,
    SADP_GROUP,
    SADP_PORT,
    Probe,
    ProbeMatch,
    SadpError,
    build_probe,
    is_true,
    new_uuid,
    normalize_mac,
    parse_probe_match,
)
from vigil.security.keys import seal

log = logging.getLogger(__name__)

LIMITED_BROADCAST = "255.255.255.255"
DEFAULT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 5.0
RETRANSMIT_S = 1.0
RECEIVE_BUFFER = 65535


class SadpClientError(Exception):
    """A failure to show the user as one line (no traceback)."""


@dataclass(frozen=True)
class FoundDevice:
    """One device's inquiry answer and the address it came from."""

    address: str
    match: ProbeMatch

    @property
    def model(self) -> str:
        return self.match.get("DeviceDescription")

    @property
    def serial(self) -> str:
        return self.match.get("DeviceSN")

    @property
    def ipv4(self) -> str:
        return self.match.get("IPv4Address")

    @property
    def mac(self) -> str:
        return self.match.mac

    @property
    def firmware(self) -> str:
        return self.match.get("SoftwareVersion")

    @property
    def activated(self) -> bool:
        return is_true(self.match.get("Activated"))

    def summary(self) -> dict[str, object]:
        """The JSON form: the table's columns, then every field except the key material."""
        hidden = {"PublicKey", "Challenge"}
        return {
            "model": self.model,
            "serial": self.serial,
            "ipv4": self.ipv4,
            "mac": self.mac,
            "firmware": self.firmware,
            "activated": self.activated,
            "address": self.address,
            "fields": {k: v for k, v in self.match.fields.items() if k not in hidden},
        }


class SadpClient:
    """Sends probes to `targets` on `port` from an ephemeral port (optionally bound to `bind`)."""

    def __init__(
        self,
        *,
        port: int = SADP_PORT,
        targets: Sequence[str] = (SADP_GROUP, LIMITED_BROADCAST),
        bind: str = "",
    ) -> None:
        if not targets:
            raise SadpClientError("no address to send probes to")
        self.port = port
        self.targets = list(targets)
        self.bind = bind
        self.warnings: list[str] = []

    def _socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if self.bind:
                # Bound to an address, Linux sends multicast and limited broadcast out of that
                # address's interface: the way to pick the NIC the cameras are on.
                sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.bind)
                )
            sock.bind((self.bind or "0.0.0.0", 0))
        except OSError as exc:
            sock.close()
            where = self.bind or "any address"
            raise SadpClientError(f"cannot open a socket on {where}: {exc}") from None
        return sock

    def _send(self, sock: socket.socket, data: bytes) -> None:
        failures = []
        for target in self.targets:
            try:
                sock.sendto(data, (target, self.port))
            except OSError as exc:
                failures.append(f"cannot send to {target}: {exc.strerror or exc}")
        if len(failures) == len(self.targets):
            raise SadpClientError("; ".join(failures))
        for failure in failures:
            if failure not in self.warnings:
                self.warnings.append(failure)

    def _receive(self, sock: socket.socket, deadline: float) -> tuple[ProbeMatch, str] | None:
        """The next parseable ProbeMatch before `deadline`, or None when time is up."""
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                data, addr = sock.recvfrom(RECEIVE_BUFFER)
            except TimeoutError:
                return None
            try:
                return parse_probe_match(data), addr[0]
            except SadpError as exc:
                log.debug("ignored a datagram from %s: %s", addr[0], exc)
        return None

    def discover(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        stop_when: Callable[[FoundDevice], bool] | None = None,
    ) -> list[FoundDevice]:
        """Every device that answers within `timeout`, one per MAC, in order of answer."""
        probe = Probe(uuid=new_uuid(), types=INQUIRY)
        data = build_probe(probe)
        found: dict[str, FoundDevice] = {}
        with self._socket() as sock:
            start = time.monotonic()
            deadline = start + timeout
            # A second copy a third of the way in covers one lost datagram on a busy LAN.
            resend_at: float | None = start + timeout / 3
            self._send(sock, data)
            while True:
                until = deadline if resend_at is None else min(deadline, resend_at)
                received = self._receive(sock, until)
                if received is None:
                    if resend_at is not None and time.monotonic() < deadline:
                        self._send(sock, data)
                        resend_at = None
                        continue
                    break
                match, address = received
                if match.uuid != probe.uuid or match.types != INQUIRY:
                    continue
                device = FoundDevice(address=address, match=match)
                key = device.mac or address
                if key in found:
                    continue
                found[key] = device
                if stop_when is not None and stop_when(device):
                    break
        return list(found.values())

    def command(
        self,
        device: FoundDevice,
        types: str,
        secret: str,
        changes: dict[str, str] | None = None,
        *,
        timeout: float = COMMAND_TIMEOUT,
    ) -> ProbeMatch:
        """Send a sealed command to `device` and return its reply (success or failed)."""
        public_key, challenge = device.match.get("PublicKey"), device.match.get("Challenge")
        if not public_key or not challenge:
            raise SadpClientError(f"{device.mac} did not publish a key: it takes no commands")
        try:
            sealed = seal(public_key, challenge, secret)
        except ValueError as exc:
            raise SadpClientError(str(exc)) from None
        probe = Probe(
            uuid=new_uuid(), types=types, mac=device.mac, password=sealed, changes=changes or {}
        )
        try:
            data = build_probe(probe)
        except SadpError as exc:
            raise SadpClientError(str(exc)) from None
        with self._socket() as sock:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self._send(sock, data)
                resend = min(deadline, time.monotonic() + RETRANSMIT_S)
                while (received := self._receive(sock, resend)) is not None:
                    match, _ = received
                    if (
                        match.uuid == probe.uuid
                        and match.types == types
                        and match.mac == device.mac
                    ):
                        return match
        raise SadpClientError(f"no answer from {device.mac} within {timeout:g} s")


def find_device(devices: Sequence[FoundDevice], wanted: str) -> FoundDevice:
    """The device named by MAC (`aa:bb:…` or `aa-bb-…`) or by serial (whole, or its end)."""
    try:
        mac = normalize_mac(wanted)
    except SadpError:
        mac = ""
    if mac:
        by_mac = [d for d in devices if d.mac == mac]
        if by_mac:
            return by_mac[0]
    serial = wanted.strip().upper()
    exact = [d for d in devices if d.serial.upper() == serial]
    if exact:
        return exact[0]
    # SADP shows the long serial (model + date + serial); people type the short one from the label.
    tail = [d for d in devices if serial and d.serial.upper().endswith(serial)]
    if len(tail) == 1:
        return tail[0]
    if len(tail) > 1:
        names = ", ".join(d.serial for d in tail)
        raise SadpClientError(
            f"{wanted!r} matches several devices ({names}): give the whole serial"
        )
    seen = f"{len(devices)} other device(s) answered" if devices else "no device answered"
    raise SadpClientError(f"no device with serial or MAC {wanted!r} answered ({seen})")


def is_exactly(device: FoundDevice, wanted: str) -> bool:
    """Whether `wanted` is this device's MAC or whole serial (safe to stop discovery early)."""
    try:
        if normalize_mac(wanted) == device.mac:
            return True
    except SadpError:
        pass
    return device.serial.upper() == wanted.strip().upper()
