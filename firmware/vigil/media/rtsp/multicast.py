"""RTSP multicast (RFC 2326 §12.39 `multicast`): one sender per stream, shared by its sessions.

A client that asks for `RTP/AVP;multicast` in SETUP is told the stream's configured group
(`destination`, `port`, `ttl`); it joins the group itself. However many clients do so, the
stream has one `MulticastSender`: one hub subscription, one UDP socket, each packet sent once.
The sender runs while at least one of its sessions is playing (or about to: between the PLAY
request and its reply) and stops, closing its socket, when the last one pauses or ends.

Receivers send their RTCP reports to the group, which the server does not join: multicast
sessions are kept alive by RTSP requests (GET_PARAMETER or OPTIONS), as clients do anyway.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from vigil.media.hub import RtpBatch, StreamHub, Subscription
from vigil.media.rtsp.session import (
    UDP_BACKLOG_LIMIT,
    RtspSession,
    SenderReports,
    SessionInfo,
    cancel_writer,
    rtp_header_fields,
)

log = logging.getLogger(__name__)


class _GroupProtocol(asyncio.DatagramProtocol):
    """Nothing is expected on the sending socket; send errors are reported once per start."""

    def __init__(self, group: str) -> None:
        self._group = group
        self._warned = False

    def error_received(self, exc: Exception) -> None:
        # asyncio reports a failed sendto here instead of raising: typically no route to the
        # group on this network. Once is enough to tell the administrator.
        if not self._warned:
            self._warned = True
            log.warning("multicast to %s failed: %s", self._group, exc)


class MulticastSink:
    """The group's address, ports and TTL, and the socket that sends to them while open."""

    transport_name = "MULTICAST"

    def __init__(self, address: str, port: int, ttl: int, *, interface: str | None) -> None:
        """`interface`: the IPv4 address to send from (the server's listening address), or
        None to let the routing table choose."""
        self.address = address
        self.port = port
        self.ttl = ttl
        self.interface = interface
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        return self.address, self.port, self.ttl

    def header(self) -> str:
        # No `ssrc`: RFC 2326 allows it for unicast only.
        return (
            f"RTP/AVP;multicast;destination={self.address};port={self.port}-{self.port + 1};"
            f"ttl={self.ttl}"
        )

    async def open(self) -> None:
        if self._transport is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.ttl)
            if self.interface is not None:
                # Out of the interface the clients reach the camera on, and from its address,
                # rather than wherever the routing table's multicast route points.
                sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.interface)
                )
                sock.bind((self.interface, 0))
            sock.setblocking(False)
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _GroupProtocol(self.address), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        self._transport = transport

    def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    async def ready(self) -> bool:
        # As for unicast UDP: never wait on the socket; drop a unit when the backlog is full.
        transport = self._transport
        return transport is not None and transport.get_write_buffer_size() <= UDP_BACKLOG_LIMIT

    def send(self, batch: RtpBatch) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        for packet in batch.packets:
            transport.sendto(packet, (self.address, self.port))

    def send_rtcp(self, packet: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.sendto(packet, (self.address, self.port + 1))

    @property
    def gone(self) -> bool:
        return False  # a group has no peer that can leave; the sessions decide


class MulticastSender:
    """One stream's multicast: one subscription and one socket for all its sessions."""

    def __init__(self, hub: StreamHub, sink: MulticastSink) -> None:
        self.hub = hub
        self.stream_id = hub.stream_id
        self.sink = sink
        # The sessions playing, and those between PLAY and its reply: the sender runs for them.
        self.members: set[MulticastSession] = set()
        self._lock = asyncio.Lock()  # one start or stop at a time
        self._subscription: Subscription | None = None
        self._pending: RtpBatch | None = None  # the first batch, taken to answer PLAY
        self._writer: asyncio.Task[None] | None = None
        self._ending: asyncio.Task[None] | None = None
        self._next_sequence: int | None = None
        self._reports = SenderReports()
        self.packets = 0
        self.octets = 0
        self.dropped = 0  # units dropped because the socket's backlog was full
        self.starts = 0

    async def prepare(self, session: MulticastSession, wait: float) -> tuple[int, int | None]:
        """Make `session` a member and get the sender ready; (first sequence, RTP time).

        A session that joins a running sender gets the sequence of the next packet sent; the
        first one gets the first packet of the hub's cached GOP, as a unicast session would.
        """
        async with self._lock:
            if session.ended:
                return self.hub.packetizer.next_sequence, None
            self.members.add(session)
            if self._writer is None:
                try:
                    await self.sink.open()
                except BaseException:
                    # No socket (the interface went away): this PLAY fails, and a member
                    # that can never start must not keep the sender from stopping.
                    self.members.discard(session)
                    raise
                if self._subscription is None:
                    self._subscription = self.hub.subscribe()
                if self._pending is None:
                    first = await self._subscription.next_within(wait)
                    if first is not None and first.packets:
                        self._pending = first
            if self._pending is not None:
                return rtp_header_fields(self._pending.packets[0])
            if self._next_sequence is not None:
                return self._next_sequence, None
            return self.hub.packetizer.next_sequence, None

    def start(self, session: MulticastSession) -> bool:
        """Start sending (if not yet) for a prepared member; False if it is no member."""
        if session not in self.members or self._subscription is None:
            return False
        if self._writer is None:
            pending, self._pending = self._pending, None
            self.starts += 1
            self._writer = asyncio.get_running_loop().create_task(
                self._write(self._subscription, pending), name=f"rtsp-multicast-{self.stream_id}"
            )
            log.info(
                "multicast of stream %d to %s:%d (ttl %d) started",
                self.stream_id,
                self.sink.address,
                self.sink.port,
                self.sink.ttl,
            )
        return True

    async def leave(self, session: MulticastSession) -> None:
        """`session` stops watching; the last one to leave stops the sender."""
        self.members.discard(session)
        if self.members:
            return
        async with self._lock:
            if not self.members:  # nobody joined while the lock was awaited
                await self._stop()

    async def _stop(self) -> None:
        writer, self._writer = self._writer, None
        if await cancel_writer(writer):
            log.info("multicast of stream %d stopped", self.stream_id)
        self._pending = None
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()
        self.sink.close()

    # -- the hot path -------------------------------------------------------------------------
    async def _write(self, subscription: Subscription, pending: RtpBatch | None) -> None:
        reason = "stream ended"
        try:
            batch = pending if pending is not None else await subscription.next()
            while batch is not None:
                if await self.sink.ready():
                    self.sink.send(batch)
                    self.packets += len(batch.packets)
                    self.octets += batch.octets
                    if batch.packets:
                        sequence = rtp_header_fields(batch.packets[-1])[0]
                        self._next_sequence = (sequence + 1) & 0xFFFF
                    if report := self._reports.after(batch, self.hub.packetizer):
                        self.sink.send_rtcp(report)
                else:
                    self.dropped += 1
                batch = await subscription.next()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must end the sessions, not leave them without media
            log.exception("multicast sender of stream %d failed", self.stream_id)
            reason = "internal error"
        # The hub closed the subscription (codec change, stream disabled): the sessions that
        # watched end; one that joins from now on gets a new subscription.
        self._writer = None
        if self._subscription is subscription:
            self._subscription = None
        subscription.close()
        members = list(self.members)
        self._ending = asyncio.get_running_loop().create_task(self._end(members, reason))

    async def _end(self, members: list[MulticastSession], reason: str) -> None:
        for session in members:
            await session.end(reason)
        async with self._lock:
            if not self.members:  # the socket closes even if the members had left already
                await self._stop()


class MulticastSession(RtspSession):
    """A client's multicast session: its state and counts; the media is the sender's."""

    def __init__(
        self,
        session_id: str,
        sender: MulticastSender,
        *,
        client: str,
        user: str,
        owner: object,
        on_end: Callable[[RtspSession, str], None],
    ) -> None:
        super().__init__(
            session_id,
            sender.hub,
            sender.sink,
            client=client,
            user=user,
            owner=owner,
            on_end=on_end,
        )
        self.sender = sender
        self._since: tuple[int, int] | None = None  # the sender's counts when this one joined

    async def prepare_play(self, wait: float) -> tuple[int, int | None]:
        return await self.sender.prepare(self, wait)

    def start_writer(self) -> None:
        if self.ended or self._since is not None:
            return
        if self.sender.start(self):
            self.state = "PLAYING"
            self._since = (self.sender.packets, self.sender.octets)

    async def _stop_writer(self) -> None:
        if self._since is not None:
            packets, octets = self._since
            self.packets += self.sender.packets - packets
            self.octets += self.sender.octets - octets
            self._since = None
        await self.sender.leave(self)

    def info(self) -> SessionInfo:
        info = super().info()
        if self._since is None:
            return info
        packets, octets = self._since
        return SessionInfo(
            session_id=info.session_id,
            stream_id=info.stream_id,
            client=info.client,
            transport=info.transport,
            user=info.user,
            state=info.state,
            packets=self.packets + self.sender.packets - packets,
            octets=self.octets + self.sender.octets - octets,
            skips=info.skips,
            started=info.started,
        )
