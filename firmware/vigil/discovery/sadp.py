"""The SADP-style responder: answers inquiries and hands commands for this device to the daemon.

Listens on UDP 37020 for Probes sent to the multicast group 239.255.255.250 (when multicast
discovery is on), to broadcast and to the device's own address, and answers by unicast to the
sender. `inquiry` is answered to anyone. `activate`, `update`, `reboot` and `resetPassword` are
answered only when their `<MAC>` is this device's; their `<Password>` is sealed to the device key
(`vigil.security.devicekey`), opened here and passed to the daemon through `SadpDevice`.

Everything arriving here is hostile until parsed: malformed datagrams are dropped with a warning
that is rate-limited, inquiry replies are rate-limited (a spoofed source must not turn the device
into an amplifier), and commands run as a bounded number of tasks so a slow one never delays the
answer to another probe.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import ipaddress
import logging
import math
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

import psutil

from vigil.config.model import DiscoverySettings
from vigil.discovery.sadp_messages import (
    ACTIVATE,
    DEVICE_FIELDS,
    INQUIRY,
    REASON_PATTERN,
    REBOOT,
    SADP_GROUP,
    SADP_PORT,
    UPDATE,
    ForeignMessage,
    Probe,
    SadpError,
    build_command_reply,
    build_inquiry_match,
    check_update_changes,
    normalize_mac,
    parse_probe,
)
from vigil.security.devicekey import DeviceKey

log = logging.getLogger(__name__)

# Linux: without IP_MULTICAST_ALL=0 a socket bound to INADDR_ANY also receives the groups that
# *other* sockets on the host joined, and "multicast discovery off" would not be off.
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
MAX_PENDING_COMMANDS = 8
REMEMBERED_COMMANDS = 64
COMMAND_GRACE_S = 5.0
INQUIRY_REPLIES_PER_S = 50.0
INQUIRY_REPLY_BURST = 100.0


class SadpRefused(Exception):
    """The daemon refuses a command; `reason` is a short machine-friendly word (`badPassword`)."""

    def __init__(self, reason: str) -> None:
        if not REASON_PATTERN.fullmatch(reason):
            raise ValueError(f"{reason!r} is not a machine-friendly reason")
        super().__init__(reason)
        self.reason = reason


class SadpDevice(Protocol):
    """What the responder needs from the daemon. Secrets arrive already unsealed.

    `source` is the sender's IP address (for lockout and the device log). A method that returns
    normally means `success`; `SadpRefused(reason)` means `failed` with that reason. Methods must
    return promptly: `reboot` schedules the reboot so that the reply can still leave.
    """

    def probe_match_fields(self) -> dict[str, str]:
        """Every ProbeMatch field of `DEVICE_FIELDS` (not Uuid, Types, PublicKey, Challenge)."""
        ...

    async def activate(self, password: str, source: str) -> None:
        """Set the first admin password (refuse `alreadyActivated`, `weakPassword`, …)."""
        ...

    async def update_network(self, password: str, changes: dict[str, str], source: str) -> None:
        """Apply `changes` (a validated subset of UPDATE_FIELDS) after checking the password."""
        ...

    async def reboot(self, password: str, source: str) -> None:
        """Check the admin password and schedule a reboot."""
        ...

    async def reset_password(self, code: str, source: str) -> None:
        """Reset the admin password with a reset code (the unsealed `<Password>`)."""
        ...


class _RateLimitedWarning:
    """At most one warning line per interval, so that a flood cannot fill the log.

    The first warning of a quiet spell is logged at once. Those that follow within the interval
    are counted, and when the interval ends the latest of them is logged with the count: a
    steady flood gives one line per interval, each a fresh example of what is arriving.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last = -math.inf
        self._suppressed = 0
        self._latest: tuple[str, tuple[object, ...]] = ("", ())
        self._flush_handle: asyncio.TimerHandle | None = None

    def warning(self, msg: str, *args: object) -> None:
        now = self._clock()
        if now - self._last >= self._interval and not self._suppressed:
            self._last = now
            self._logger.warning(msg, *args)
            return
        self._suppressed += 1
        self._latest = (msg, args)
        if self._flush_handle is None:
            delay = max(0.0, self._interval - (now - self._last))
            with contextlib.suppress(RuntimeError):  # no running loop: reported by flush()
                loop = asyncio.get_running_loop()
                self._flush_handle = loop.call_later(delay, self.flush)

    def flush(self) -> None:
        """Log the latest suppressed warning with the count now (at the interval's end, stop)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._suppressed:
            msg, args = self._latest
            self._logger.warning(
                msg + " (latest of %d such warnings in %.0f s)",
                *args,
                self._suppressed,
                self._interval,
            )
            self._last = self._clock()
            self._suppressed = 0


class _TokenBucket:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._on_datagram = on_datagram
        # transport.close() closes the socket one loop iteration later; stop() waits for it so
        # that the port is really free when it returns.
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier reply (the client went away): nothing to do.
        log.debug("SADP socket error: %s", exc)


def _ipv4_interfaces() -> list[tuple[int, str]]:
    """(ifindex, name) of every interface that has an IPv4 address."""
    with_ipv4 = {
        name
        for name, addresses in psutil.net_if_addrs().items()
        if any(a.family == socket.AF_INET for a in addresses)
    }
    return [(index, name) for index, name in socket.if_nameindex() if name in with_ipv4]


def _membership(ifindex: int) -> bytes:
    # struct ip_mreqn: by interface index, so the membership survives an address change.
    return struct.pack("=4s4si", socket.inet_aton(SADP_GROUP), socket.inet_aton("0.0.0.0"), ifindex)


def _replyable(host: str, port: int) -> bool:
    """A unicast sender we can answer; a spoofed group or broadcast source gets nothing."""
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return False
    limited_broadcast = ipaddress.IPv4Address("255.255.255.255")
    return port != 0 and not (
        address.is_multicast or address.is_unspecified or address == limited_broadcast
    )


class SadpResponder:
    """Answers SADP probes for one device; see the module docstring for the rules."""

    def __init__(
        self,
        device: SadpDevice,
        key: DeviceKey,
        mac_dashed: str,
        *,
        port: int = SADP_PORT,
        multicast: bool = True,
        bind: str = "0.0.0.0",
    ) -> None:
        self._device = device
        self._key = key
        self._mac = normalize_mac(mac_dashed)
        self._port = port
        self._multicast = multicast
        self._bind = bind
        self._sock: socket.socket | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._endpoint: _Endpoint | None = None
        self._joined: set[int] = set()
        self._commands: set[asyncio.Task[None]] = set()
        # Datagram digest -> reply (None while it runs): a retransmitted or multiply delivered
        # (multicast + broadcast) command runs once and gets the same answer again.
        self._recent: collections.OrderedDict[bytes, bytes | None] = collections.OrderedDict()
        self._ignored = _RateLimitedWarning(log)
        self._inquiry_budget = _TokenBucket(INQUIRY_REPLIES_PER_S, INQUIRY_REPLY_BURST)

    @property
    def running(self) -> bool:
        return self._transport is not None

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        if self._sock is not None:
            return int(self._sock.getsockname()[1])
        return self._port

    @property
    def multicast(self) -> bool:
        return self._multicast

    def _open_socket(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            sock.bind((self._bind, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    async def _attach(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        transport, endpoint = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._received), sock=sock
        )
        self._sock, self._transport, self._endpoint = sock, transport, endpoint
        self._joined.clear()
        if self._multicast:
            self.refresh_multicast()
        log.info(
            "SADP responder on %s:%d (multicast %s)",
            self._bind,
            self.port,
            "on" if self._multicast else "off",
        )

    async def _detach(self) -> None:
        transport, endpoint = self._transport, self._endpoint
        self._sock, self._transport, self._endpoint = None, None, None
        self._joined.clear()
        if transport is None or endpoint is None:
            return
        transport.close()  # closes the socket; the group memberships go with it
        await endpoint.closed

    async def start(self) -> None:
        if self.running:
            return
        await self._attach(self._open_socket(self._port))

    async def stop(self) -> None:
        """Close the socket, let running commands finish briefly, cancel the rest."""
        await self._detach()
        pending = list(self._commands)
        if pending:
            _, late = await asyncio.wait(pending, timeout=COMMAND_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._ignored.flush()

    async def apply(self, old: DiscoverySettings, new: DiscoverySettings) -> None:
        """Follow a discovery settings change live; on a failed rebind nothing changes."""
        del old  # the responder's own state is the truth; `old` is what the store believed
        if not new.sadp_enabled:
            await self._detach()
            self._port, self._multicast = new.sadp_port, new.multicast_enabled
            log.info("SADP responder off")
            return
        if not self.running or new.sadp_port != self._port:
            sock = self._open_socket(new.sadp_port)  # raises before anything is torn down
            await self._detach()
            self._port, self._multicast = new.sadp_port, new.multicast_enabled
            await self._attach(sock)
            return
        if new.multicast_enabled != self._multicast:
            self._multicast = new.multicast_enabled
            if self._multicast:
                self.refresh_multicast()
            else:
                self._leave_all()
            log.info("SADP multicast discovery %s", "on" if self._multicast else "off")

    def refresh_multicast(self) -> None:
        """Join the group on interfaces that gained an IPv4 address (call on network changes)."""
        if self._sock is None or not self._multicast:
            return
        if self._bind != "0.0.0.0":
            # Linux delivers group traffic only to sockets bound to the wildcard (or the group):
            # a socket on one unicast address would join for nothing.
            log.info("SADP bound to %s answers unicast probes only", self._bind)
            return
        for ifindex, name in _ipv4_interfaces():
            if ifindex in self._joined:
                continue
            try:
                self._sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _membership(ifindex)
                )
            except OSError as exc:
                log.debug("cannot join %s on %s: %s", SADP_GROUP, name, exc)
                continue
            self._joined.add(ifindex)
            log.debug("joined %s on %s", SADP_GROUP, name)
        if not self._joined:
            # No addressed interface yet: let the kernel pick one by route, better than none.
            try:
                self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _membership(0))
                self._joined.add(0)
            except OSError as exc:
                log.warning("cannot join the SADP group %s: %s", SADP_GROUP, exc)

    def _leave_all(self) -> None:
        if self._sock is None:
            return
        for ifindex in self._joined:
            with contextlib.suppress(OSError):  # the interface may have gone away
                self._sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, _membership(ifindex)
                )
        self._joined.clear()

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._transport is None or self._transport.is_closing():
            log.debug("reply to %s:%d dropped: the SADP socket is closed", *addr)
            return
        self._transport.sendto(data, addr)

    def _received(self, data: bytes, addr: tuple[str, int]) -> None:
        host, port = addr
        try:
            probe = parse_probe(data)
        except ForeignMessage:
            return  # another device's answer on the group: normal traffic, not an error
        except SadpError as exc:
            self._ignored.warning(
                "ignored SADP datagram from %s:%d (%d bytes): %s", host, port, len(data), exc
            )
            return
        if not _replyable(host, port):
            self._ignored.warning(
                "ignored SADP %s from unanswerable %s:%d", probe.types, host, port
            )
            return
        if probe.types == INQUIRY:
            self._answer_inquiry(probe, addr)
            return
        try:
            target = normalize_mac(probe.mac)
        except SadpError:
            target = ""
        if target != self._mac:
            log.debug("SADP %s from %s is for %r, not this device", probe.types, host, probe.mac)
            return
        digest = hashlib.sha256(data).digest()
        if digest in self._recent:
            reply = self._recent[digest]
            if reply is not None:
                self._send(reply, addr)
            return
        if len(self._commands) >= MAX_PENDING_COMMANDS:
            self._ignored.warning(
                "dropped SADP %s from %s: too many commands running", probe.types, host
            )
            return
        self._recent[digest] = None
        while len(self._recent) > REMEMBERED_COMMANDS:
            self._recent.popitem(last=False)
        task = asyncio.get_running_loop().create_task(self._run_command(probe, addr, digest))
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    def _answer_inquiry(self, probe: Probe, addr: tuple[str, int]) -> None:
        if not self._inquiry_budget.take():
            self._ignored.warning("SADP inquiry from %s not answered: reply rate limit", addr[0])
            return
        try:
            fields = dict(self._device.probe_match_fields())
            fields.setdefault("MAC", self._mac)
            extra = set(fields) - set(DEVICE_FIELDS)
            if extra:
                log.debug("ProbeMatch fields not in the SADP set left out: %s", sorted(extra))
            reply = build_inquiry_match(
                probe.uuid, fields, self._key.public_key_b64(), self._key.challenge()
            )
        except Exception:
            log.exception("cannot build the SADP ProbeMatch")
            return
        self._send(reply, addr)

    async def _run_command(self, probe: Probe, addr: tuple[str, int], digest: bytes) -> None:
        reason = await self._execute(probe, addr[0])
        log.info(
            "SADP %s from %s: %s", probe.types, addr[0], "success" if reason is None else reason
        )
        reply = build_command_reply(probe.uuid, probe.types, self._mac, reason)
        if digest in self._recent:
            self._recent[digest] = reply
        self._send(reply, addr)

    async def _execute(self, probe: Probe, source: str) -> str | None:
        """Run one command; None for success, otherwise the failure reason."""
        changes: dict[str, str] = {}
        try:
            if probe.types == UPDATE:
                changes = check_update_changes(probe.changes)
            if not probe.password:
                raise SadpError("no <Password>")
        except SadpError as exc:
            log.info("SADP %s from %s is a bad request: %s", probe.types, source, exc)
            return "badRequest"
        try:
            # RSA decryption takes about a millisecond of CPU: off the event loop.
            secret = await asyncio.to_thread(self._key.open_sealed, probe.password)
        except ValueError as exc:
            log.info("SADP %s from %s: cannot open the password: %s", probe.types, source, exc)
            return "badRequest"
        try:
            if probe.types == ACTIVATE:
                await self._device.activate(secret, source)
            elif probe.types == UPDATE:
                await self._device.update_network(secret, changes, source)
            elif probe.types == REBOOT:
                await self._device.reboot(secret, source)
            else:
                await self._device.reset_password(secret, source)
        except SadpRefused as exc:
            return exc.reason
        except Exception:
            log.exception("SADP %s from %s failed in the daemon", probe.types, source)
            return "internalError"
        return None
