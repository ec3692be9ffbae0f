"""mDNS/DNS-SD advertisement of the device's web, HTTPS and RTSP services (zeroconf).

Only the given interface addresses are used (zeroconf `interfaces=[...]`), so the device never
announces itself on an interface it does not serve on. Every service carries the same TXT
record: model, serial, firmware and MAC, which is what a browser of `_http._tcp` needs to tell
cameras apart without opening each one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
from collections.abc import Sequence

import psutil
from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from vigil.config.model import Config, PortSettings
from vigil.system.identity import DeviceIdentity

log = logging.getLogger(__name__)

REQUIRED_TXT = ("model", "serial", "firmware", "mac")
_SERVICE_TYPE = re.compile(r"_[a-z0-9][a-z0-9-]{0,14}\._(tcp|udp)")
_NOT_HOST_CHAR = re.compile(r"[^a-z0-9-]+")
MAX_LABEL = 63  # RFC 1035: bytes in one DNS label


def service_type(name: str) -> str:
    """`_http._tcp` or `_http._tcp.local.` -> `_http._tcp.local.`; ValueError otherwise."""
    bare = name.strip().lower().removesuffix(".").removesuffix(".local")
    if not _SERVICE_TYPE.fullmatch(bare):
        raise ValueError(f"{name!r} is not a DNS-SD service type such as _http._tcp")
    return f"{bare}.local."


def host_label(name: str) -> str:
    """A DNS host label from a display name: `Vigil DS-2CD 123` -> `vigil-ds-2cd-123`."""
    label = _NOT_HOST_CHAR.sub("-", name.lower())
    label = re.sub("-{2,}", "-", label).strip("-")[:MAX_LABEL].strip("-")
    if not label:
        raise ValueError(f"{name!r} gives no usable host name")
    return label


def services_for(ports: PortSettings) -> list[tuple[str, int]]:
    """The services a device with these ports offers (HTTPS only when it is on)."""
    services = [("_http._tcp", ports.http), ("_rtsp._tcp", ports.rtsp)]
    if ports.https_enabled:
        services.append(("_https._tcp", ports.https))
    return services


def advertised_addresses(bind: str) -> list[str]:
    """The listen address itself, or for a wildcard every non-loopback IPv4 address.

    With no such address (a board before DHCP, a test sandbox) it is loopback, which keeps the
    advertiser valid and announces nothing beyond this host.
    """
    if bind not in ("0.0.0.0", "::", ""):
        return [bind]
    found = [
        a.address
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family == socket.AF_INET and not ipaddress.ip_address(a.address).is_loopback
    ]
    return sorted(set(found)) or ["127.0.0.1"]


class MdnsAdvertiser:
    """Advertises `services` [(type, port)] as instance `name` on the given addresses."""

    def __init__(
        self,
        name: str,
        host_ip_addresses: Sequence[str],
        services: list[tuple[str, int]],
        txt: dict[str, str],
        *,
        hostname: str | None = None,
    ) -> None:
        if not name or len(name.encode()) > MAX_LABEL or "." in name:
            raise ValueError(f"{name!r} is not an mDNS instance name (1-63 bytes, no dots)")
        if not host_ip_addresses:
            raise ValueError("mDNS needs at least one interface address")
        self._addresses = [str(ipaddress.ip_address(a)) for a in host_ip_addresses]
        missing = [k for k in REQUIRED_TXT if k not in txt]
        if missing:
            raise ValueError(f"the TXT record lacks {', '.join(missing)}")
        for key, value in txt.items():
            # RFC 6763 §6.1: one TXT string of "key=value" is at most 255 bytes.
            if not key or "=" in key or len(f"{key}={value}".encode()) > 255:
                raise ValueError(f"TXT entry {key!r} is not a key=value of 255 bytes or fewer")
        self._name = name
        self._server = f"{host_label(hostname or name)}.local."
        self._txt = dict(txt)
        self._wanted = self._check_services(services)
        self._zeroconf: AsyncZeroconf | None = None
        self._registered: dict[str, ServiceInfo] = {}
        self._starting: asyncio.Task[None] | None = None

    @classmethod
    def for_device(cls, identity: DeviceIdentity, config: Config, bind: str) -> MdnsAdvertiser:
        """The advertiser the daemon runs: Hikvision-style `<model> - <serial>` instance name."""
        name = f"{identity.model} - {identity.serial}"
        if len(name.encode()) > MAX_LABEL:
            name = identity.serial
        return cls(
            name,
            advertised_addresses(bind),
            services_for(config.ports),
            {
                "model": identity.model,
                "serial": identity.serial,
                "firmware": identity.firmware_version,
                "mac": identity.mac,
            },
            hostname=f"vigil-{identity.serial}",
        )

    @staticmethod
    def _check_services(services: list[tuple[str, int]]) -> dict[str, int]:
        wanted: dict[str, int] = {}
        for name, port in services:
            kind = service_type(name)
            if not 1 <= port <= 65535:
                raise ValueError(f"{port} is not a port for {kind}")
            if kind in wanted:
                raise ValueError(f"{kind} is given twice")
            wanted[kind] = port
        return wanted

    @property
    def registered(self) -> dict[str, ServiceInfo]:
        """The advertised services by type (names as finally registered, after any conflict)."""
        return dict(self._registered)

    def _info(self, kind: str, port: int, instance: str | None = None) -> ServiceInfo:
        return ServiceInfo(
            kind,
            instance or f"{self._name}.{kind}",
            port=port,
            properties=self._txt,
            server=self._server,
            parsed_addresses=self._addresses,
        )

    def _ip_version(self) -> IPVersion:
        versions = {ipaddress.ip_address(a).version for a in self._addresses}
        if versions == {4}:
            return IPVersion.V4Only
        if versions == {6}:
            return IPVersion.V6Only
        return IPVersion.All

    def start_soon(self) -> None:
        """Start in the background: probing takes seconds, and the device serves meanwhile.
        `stop` cancels a start still under way."""
        self._starting = asyncio.create_task(self.start(), name="mdns-start")
        self._starting.add_done_callback(_report_failure)

    async def start(self) -> None:
        if self._zeroconf is not None:
            return
        self._zeroconf = AsyncZeroconf(interfaces=self._addresses, ip_version=self._ip_version())
        try:
            await self._reconcile()
        except BaseException:
            await self.stop()
            raise
        log.info("mDNS: %s on %s", ", ".join(self._registered), ", ".join(self._addresses))

    async def stop(self) -> None:
        """Say goodbye for every service and close the sockets."""
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():
            starting.cancel()  # its own clean-up closes what it opened
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        zeroconf, self._zeroconf = self._zeroconf, None
        self._registered.clear()
        if zeroconf is None:
            return
        await zeroconf.async_unregister_all_services()
        await zeroconf.async_close()

    async def update(self, services: list[tuple[str, int]]) -> None:
        """Advertise exactly `services` from now on (a port change updates in place)."""
        self._wanted = self._check_services(services)
        if self._zeroconf is not None:
            await self._reconcile()

    async def update_ports(self, ports: PortSettings) -> None:
        """Follow a change of the HTTP/HTTPS/RTSP ports (or HTTPS being switched)."""
        await self.update(services_for(ports))

    async def _reconcile(self) -> None:
        zeroconf = self._zeroconf
        if zeroconf is None:
            return
        steps = [self._withdraw(zeroconf, k) for k in self._registered if k not in self._wanted]
        for kind, port in self._wanted.items():
            current = self._registered.get(kind)
            if current is None:
                steps.append(self._register(zeroconf, kind, port))
            elif current.port != port:
                steps.append(self._move(zeroconf, kind, port, current.name))
        # Each step waits out its probes and announcements (about 1.5 s): run them side by side.
        await asyncio.gather(*steps)

    async def _withdraw(self, zeroconf: AsyncZeroconf, kind: str) -> None:
        await (await zeroconf.async_unregister_service(self._registered.pop(kind)))

    async def _register(self, zeroconf: AsyncZeroconf, kind: str, port: int) -> None:
        info = self._info(kind, port)
        # Two devices given the same name (a cloned image): rename, do not fail.
        await (await zeroconf.async_register_service(info, allow_name_change=True))
        if info.name != f"{self._name}.{kind}":
            log.warning("mDNS name conflict: advertising as %s", info.name)
        self._registered[kind] = info

    async def _move(self, zeroconf: AsyncZeroconf, kind: str, port: int, instance: str) -> None:
        info = self._info(kind, port, instance=instance)
        await (await zeroconf.async_update_service(info))
        self._registered[kind] = info


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("mDNS advertisement failed: %s", task.exception())
