"""One RTSP session: its transport (TCP interleaved or UDP), its state, and its writer task.

The writer reads the session's hub `Subscription` and hands the hub's packets, unchanged, to
the transport. A TCP client that reads slowly makes the writer wait for the socket to drain;
meanwhile the hub drops that subscriber's backlog and restarts it at the next keyframe, so the
wait never reaches the publisher or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vigil.media.hub import INTERLEAVED_HEADER, RtpBatch, StreamHub, Subscription
from vigil.media.rtp.base import Packetizer

log = logging.getLogger(__name__)

SR_INTERVAL_S = 5.0
TCP_HIGH_WATER = 64 * 1024  # above this the writer waits; the kernel send buffer is on top
UDP_BACKLOG_LIMIT = 1 << 20  # queued datagrams of the shared socket before batches are dropped


async def cancel_writer(writer: asyncio.Task[None] | None) -> bool:
    """Cancel a writer task and wait for it; False if there was none (or it is us)."""
    if writer is None or writer is asyncio.current_task():
        return False
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer
    return True


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What Streaming/status shows of a session."""

    session_id: str
    stream_id: int
    client: str
    transport: str  # "TCP", "UDP" or "MULTICAST"
    user: str
    state: str  # "READY" or "PLAYING"
    packets: int
    octets: int
    skips: int
    started: float  # wall-clock time.time() of SETUP


class MediaSink(Protocol):
    transport_name: str

    def header(self) -> str:
        """The Transport header value that answers SETUP."""
        ...

    async def ready(self) -> bool:
        """Wait until a batch may be sent; False when it should be dropped instead."""
        ...

    def send(self, batch: RtpBatch) -> None: ...

    def send_rtcp(self, packet: bytes) -> None: ...

    @property
    def gone(self) -> bool:
        """The peer can no longer be reached (connection closed)."""
        ...


class DescribedSession(Protocol):
    """What a live or a playback session has for `session_info`."""

    id: str
    stream_id: int
    client: str
    sink: MediaSink
    user: str
    state: str
    packets: int
    octets: int
    started: float

    @property
    def skips(self) -> int: ...


def session_info(session: DescribedSession) -> SessionInfo:
    """What `/ISAPI/Streaming/status` shows of a live or playback session (same attributes)."""
    return SessionInfo(
        session_id=session.id,
        stream_id=session.stream_id,
        client=session.client,
        transport=session.sink.transport_name,
        user=session.user,
        state=session.state,
        packets=session.packets,
        octets=session.octets,
        skips=session.skips,
        started=session.started,
    )


class InterleavedSink:
    """RTP and RTCP as `$`-framed data on the client's RTSP connection."""

    transport_name = "TCP"

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        channels: tuple[int, int],
        ssrc: int,
        *,
        stall_timeout: float,
    ) -> None:
        self._writer = writer
        self._transport = writer.transport
        self.channels = channels
        self._ssrc = ssrc
        self._stall_timeout = stall_timeout

    def header(self) -> str:
        rtp, rtcp = self.channels
        return f"RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp};ssrc={self._ssrc:08X}"

    async def ready(self) -> bool:
        # The common case, a client that keeps up, costs one call: wait_for(drain()) makes a
        # task and a timer per unit per client, which at 50 clients was most of the fan-out.
        if self._transport.get_write_buffer_size() <= TCP_HIGH_WATER:
            return True
        # drain() waits while the transport's buffer is over TCP_HIGH_WATER (set by the
        # server). A client that reads nothing for the session timeout is gone, even if it
        # still sends keep-alives.
        try:
            await asyncio.wait_for(self._writer.drain(), self._stall_timeout)
        except TimeoutError:
            raise ConnectionError("the client stopped reading") from None
        return True

    def send(self, batch: RtpBatch) -> None:
        if not self._transport.is_closing():
            # One call per access unit, its framing shared with the stream's other clients.
            self._transport.write(batch.interleaved(self.channels[0]))

    def send_rtcp(self, packet: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.writelines(
                (INTERLEAVED_HEADER.pack(0x24, self.channels[1], len(packet)), packet)
            )

    @property
    def gone(self) -> bool:
        return self._transport.is_closing()


class UdpSink:
    """RTP and RTCP from the server's shared UDP port pair to the client's ports."""

    transport_name = "UDP"

    def __init__(
        self,
        rtp: asyncio.DatagramTransport,
        rtcp: asyncio.DatagramTransport,
        client_ip: str,
        client_ports: tuple[int, int],
        server_ports: tuple[int, int],
        ssrc: int,
    ) -> None:
        self._rtp, self._rtcp = rtp, rtcp
        self.rtp_address = (client_ip, client_ports[0])
        self.rtcp_address = (client_ip, client_ports[1])
        self._client_ports = client_ports
        self._server_ports = server_ports
        self._ssrc = ssrc
        self.dropped = 0

    def header(self) -> str:
        (c1, c2), (s1, s2) = self._client_ports, self._server_ports
        return f"RTP/AVP;unicast;client_port={c1}-{c2};server_port={s1}-{s2};ssrc={self._ssrc:08X}"

    async def ready(self) -> bool:
        # The socket is shared: never wait on it (that would stall every UDP client); when
        # the kernel buffer is full and asyncio's backlog grows, drop this client's unit.
        if self._rtp.get_write_buffer_size() > UDP_BACKLOG_LIMIT:
            self.dropped += 1
            return False
        return True

    def send(self, batch: RtpBatch) -> None:
        if self._rtp.is_closing():
            return
        for packet in batch.packets:
            self._rtp.sendto(packet, self.rtp_address)

    def send_rtcp(self, packet: bytes) -> None:
        if not self._rtcp.is_closing():
            self._rtcp.sendto(packet, self.rtcp_address)

    @property
    def gone(self) -> bool:
        return self._rtp.is_closing()


def rtp_header_fields(packet: bytes) -> tuple[int, int]:
    """(sequence number, timestamp) of an RTP packet."""
    sequence, timestamp = struct.unpack_from(">HI", packet, 2)
    return sequence, timestamp


class RtspSession:
    def __init__(
        self,
        session_id: str,
        hub: StreamHub,
        sink: MediaSink,
        *,
        client: str,
        user: str,
        owner: object,
        on_end: Callable[[RtspSession, str], None],
    ) -> None:
        self.id = session_id
        self.hub = hub
        self.stream_id = hub.stream_id
        self.packetizer = hub.packetizer
        self.sink = sink
        self.client = client  # peer address
        self.user = user
        self.owner = owner  # the connection that made it; TCP sessions live and die with it
        self._on_end = on_end
        self.state = "READY"
        self.started = time.time()
        self.last_seen = time.monotonic()
        self.packets = 0
        self.octets = 0
        self._past_skips = 0
        self._subscription: Subscription | None = None
        self._writer: asyncio.Task[None] | None = None
        self._pending: RtpBatch | None = None  # the first batch, taken to answer PLAY
        self._ending: asyncio.Task[None] | None = None
        self._reports = SenderReports()
        self.ended = False

    # -- state --------------------------------------------------------------------------------
    def touch(self) -> None:
        self.last_seen = time.monotonic()

    @property
    def skips(self) -> int:
        current = self._subscription.skips if self._subscription else 0
        return self._past_skips + current

    def info(self) -> SessionInfo:
        return session_info(self)

    async def prepare_play(self, wait: float) -> tuple[int, int | None]:
        """Subscribe and find where the client starts: (first sequence, its RTP timestamp).

        The subscription starts with the hub's cached GOP, so the first batch is normally at
        hand; if the encoder has produced nothing yet, RTP-Info carries only the sequence.
        """
        if self._subscription is None:
            self._subscription = self.hub.subscribe()
        first = await self._subscription.next_within(wait)
        if first is None or not first.packets:
            self._pending = None
            return self.packetizer.next_sequence, None
        self._pending = first
        return rtp_header_fields(first.packets[0])

    def start_writer(self) -> None:
        """Called once the PLAY response is on the wire, so media never precedes it."""
        if self._writer is not None or self.ended or self._subscription is None:
            return
        self.state = "PLAYING"
        pending, self._pending = self._pending, None
        self._writer = asyncio.get_running_loop().create_task(
            self._write(self._subscription, pending), name=f"rtsp-writer-{self.id}"
        )

    async def pause(self) -> None:
        await self._stop_writer()
        self.state = "READY"

    async def _stop_writer(self) -> None:
        writer, self._writer = self._writer, None
        await cancel_writer(writer)
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            self._past_skips += subscription.skips
            subscription.close()

    async def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        await self._stop_writer()
        self.state = "ENDED"
        self._on_end(self, reason)

    # -- the hot path -------------------------------------------------------------------------
    async def _write(self, subscription: Subscription, pending: RtpBatch | None) -> None:
        reason = "stream ended"
        try:
            batch = pending if pending is not None else await subscription.next()
            while batch is not None:
                if self.sink.gone:
                    reason = "connection closed"
                    break
                if await self.sink.ready():
                    self.sink.send(batch)
                    self.packets += len(batch.packets)
                    self.octets += batch.octets
                    if report := self._reports.after(batch, self.packetizer):
                        self.sink.send_rtcp(report)
                batch = await subscription.next()
        except (ConnectionError, OSError) as exc:
            reason = f"send failed: {exc}"
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must end this session, not linger silently
            log.exception("writer of session %s failed", self.id)
            reason = "internal error"
        # The writer ends the session itself: hub closed the subscription or the peer left.
        self._writer = None
        self._ending = asyncio.get_running_loop().create_task(self.end(reason))


class SenderReports:
    """RTCP sender reports of a live sender (a unicast session or a multicast group): one
    right after the first unit sent, then one every `SR_INTERVAL_S`."""

    def __init__(self) -> None:
        self._last: RtpBatch | None = None  # the last unit sent that had packets
        self._sent_at = float("-inf")

    def after(self, batch: RtpBatch, packetizer: Packetizer) -> bytes | None:
        """`batch` was sent: the SR that is due now, if one is."""
        if batch.packets:
            self._last = batch  # its header is read only when a report is due: per client
        now = time.monotonic()
        if self._last is None or now - self._sent_at < SR_INTERVAL_S:
            return None
        self._sent_at = now
        timestamp = rtp_header_fields(self._last.packets[-1])[1]
        return sender_report(packetizer, timestamp, self._last.au.captured_at)


def sender_report(packetizer: Packetizer, last_timestamp: int, last_captured: float) -> bytes:
    """An RTCP SR for now, given the RTP timestamp and capture time of the last unit sent."""
    # The SR maps "now" to an RTP time: advance the last unit's timestamp by the time since
    # its capture, so the mapping stays exact even when the unit left the cache late.
    elapsed = time.monotonic() - last_captured
    advance = int(elapsed * packetizer.clock_rate) if 0 <= elapsed < 10 else 0
    rtp_now = (last_timestamp + advance) & 0xFFFFFFFF
    return packetizer.sender_report(time.time(), rtp_now)
