"""Illegal-login lock per source address (SPEC §2: 5 failures -> 30 min, configurable)."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil.config.model import SecuritySettings

log = logging.getLogger(__name__)

MAX_TRACKED = 4096  # bound the memory a scan from many addresses can take


def normalize_address(address: str) -> str:
    """One key per host: an IPv4-mapped IPv6 peer is the IPv4 host."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0
    last: float = field(default=0.0)


class Lockout:
    def __init__(
        self,
        settings: SecuritySettings,
        on_lock: Callable[[str, int], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._on_lock = on_lock
        self._clock = clock
        self._records: dict[str, _Record] = {}

    def apply(self, _old: SecuritySettings, new: SecuritySettings) -> None:
        self.settings = new
        if not new.lockout_enabled:
            self._records.clear()

    def remaining(self, address: str) -> int:
        """Seconds this address stays locked (0 when it may try)."""
        record = self._records.get(normalize_address(address))
        if record is None:
            return 0
        left = record.locked_until - self._clock()
        return max(0, int(left + 0.999))

    def failed(self, address: str) -> None:
        if not self.settings.lockout_enabled:
            return
        key = normalize_address(address)
        now = self._clock()
        record = self._records.get(key)
        if record is None:
            self._evict(now)
            record = self._records[key] = _Record()
        if record.locked_until and record.locked_until <= now:
            record.failures, record.locked_until = 0, 0.0  # the lock expired: a fresh start
        record.failures += 1
        record.last = now
        if record.failures >= self.settings.lockout_attempts and not record.locked_until:
            minutes = self.settings.lockout_minutes
            record.locked_until = now + minutes * 60
            log.warning(
                "locked %s for %d min after %d failed logins", key, minutes, record.failures
            )
            self._on_lock(key, minutes)

    def succeeded(self, address: str) -> None:
        self._records.pop(normalize_address(address), None)

    def _evict(self, now: float) -> None:
        if len(self._records) < MAX_TRACKED:
            return
        # Drop expired locks first, then the oldest unlocked counters.
        for key in [k for k, r in self._records.items() if r.locked_until <= now]:
            del self._records[key]
            if len(self._records) < MAX_TRACKED:
                return
        oldest = min(self._records, key=lambda k: self._records[k].last)
        del self._records[oldest]
