"""The IP address filter: off, allow list or deny list of addresses, networks and ranges."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vigil.config.model import IpFilterSettings
from vigil.security.lockout import normalize_address

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class _Range:
    first: IPAddress
    last: IPAddress

    def __contains__(self, ip: IPAddress) -> bool:
        return ip.version == self.first.version and self.first <= ip <= self.last


def _parse(entry: str) -> _Range:
    if "-" in entry:
        first, last = (ipaddress.ip_address(p.strip()) for p in entry.split("-", 1))
        return _Range(first, last)
    net = ipaddress.ip_network(entry, strict=False)
    return _Range(net[0], net[-1])


class IpFilter:
    def __init__(self, settings: IpFilterSettings) -> None:
        self.apply(settings, settings)

    def apply(self, _old: IpFilterSettings, new: IpFilterSettings) -> None:
        self._mode = new.mode
        self._ranges = [_parse(e) for e in new.entries]

    def allows(self, address: str) -> bool:
        if self._mode == "off":
            return True
        try:
            ip = ipaddress.ip_address(normalize_address(address))
        except ValueError:
            return False
        listed = any(ip in r for r in self._ranges)
        return listed if self._mode == "allow" else not listed
