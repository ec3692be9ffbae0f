"""The RTSP 1.0 server (RFC 2326): live streams from the StreamHubs to RTSP clients, and
playback of recordings.

Clients reach `rtsp://host:port/Streaming/Channels/<id>` (SPEC §1), authenticate with Digest
on every request but OPTIONS, and receive the hub's RTP packets either interleaved on their
RTSP connection (TCP), from one shared pair of UDP ports, or, for a stream whose multicast is
enabled, from the stream's one multicast sender (`multicast.py`). Every input is bounded:
request size, header count, body size, time to finish a request, idle connections,
connections in total and sessions per stream (multicast sessions count like the others).

`/Streaming/tracks/<id>?starttime=...` URLs play recordings back (`playback.py`,
`playback_session.py`): they are authorised by `playback_auth` (the `playBack` permission),
set up over TCP or UDP unicast like live sessions, and count toward the stream's sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from vigil.config.model import RtspSettings, StreamMulticast
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer
from vigil.media.rtsp.auth import AuthStatus, RtspAuth
from vigil.media.rtsp.messages import (
    KNOWN_METHODS,
    MAX_HEAD,
    SUPPORTED_METHODS,
    Request,
    RtspError,
    Target,
    TransportSpec,
    build_response,
    parse_head,
    parse_target,
    parse_transport,
)
from vigil.media.rtsp.multicast import MulticastSender, MulticastSession, MulticastSink
from vigil.media.rtsp.playback import (
    FootageInfo,
    PlaybackTarget,
    Recordings,
    is_playback_uri,
    parse_playback_target,
    playback_sdp,
    probe_footage,
)
from vigil.media.rtsp.playback_session import PlaybackSession
from vigil.media.rtsp.sdp import TRACK_CONTROL, build_sdp
from vigil.media.rtsp.session import (
    TCP_HIGH_WATER,
    InterleavedSink,
    MediaSink,
    RtspSession,
    SessionInfo,
    UdpSink,
)
from vigil.security.lockout import normalize_address

log = logging.getLogger(__name__)

DEFAULT_SESSION_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 10.0  # to finish a request once its first byte has arrived
READY_TIMEOUT_S = 5.0  # for a stream's first keyframe (DESCRIBE, PLAY)
MAX_CONNECTIONS = 128
MAX_SESSIONS_PER_CONNECTION = 4
MAX_INTERLEAVED_CHANNEL = 255
MAX_PLAYBACK_SESSIONS = 8  # each reads the card in a worker thread
# The kernel's share of a TCP client's backlog. Fixed (not autotuned up to megabytes) so a
# client that stops reading is noticed in about a second and skipped by the hub, and so
# latency stays low; 256 KiB still carries 40 Mbit/s at 50 ms round trip.
TCP_SEND_BUFFER = 256 * 1024
UDP_PORT_RANGE = (30000, 60000)
PUBLIC = ", ".join(SUPPORTED_METHODS)
_TOKEN_START = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")

AnySession = RtspSession | PlaybackSession


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    content_type: str | None = None
    close: bool = False
    after: Callable[[], None] | None = None  # runs once the reply is written (PLAY's media)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP "port unreachable" from a client that went away: its session times out.
        log.debug("UDP error: %s", exc)


class _Connection:
    """One client's RTSP connection: reads requests and interleaved frames in order."""

    def __init__(
        self, server: RtspServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("", 0)
        local = writer.get_extra_info("sockname") or ("0.0.0.0", 0)
        self.peer_ip = str(peer[0])  # as the socket family writes it, for sendto
        self.client = normalize_address(self.peer_ip)  # one spelling per host, for checks
        self.peer = f"{self.client}:{peer[1]}"
        self.local_ip = normalize_address(str(local[0]))
        self.local_port = int(local[1])
        self.sessions: set[AnySession] = set()

    # -- reading ------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            while not self.writer.transport.is_closing():
                try:
                    first = await asyncio.wait_for(
                        self.reader.readexactly(1), self.server.idle_timeout
                    )
                except TimeoutError:
                    log.debug("closing idle RTSP connection from %s", self.peer)
                    return
                if first == b"$":
                    await self._read_interleaved()
                elif first[0] not in _TOKEN_START:
                    self._send(build_response(400, None))
                    return
                elif not await self._read_request(first):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return  # the peer left or stalled mid-message
        finally:
            await self._close()

    async def _read_interleaved(self) -> None:
        """A `$` frame from the client: an RTCP report keeps its session alive; the rest is
        read and dropped, so it can never be taken for a request."""
        header = await asyncio.wait_for(self.reader.readexactly(3), REQUEST_TIMEOUT_S)
        channel, length = header[0], int.from_bytes(header[1:3], "big")
        await asyncio.wait_for(self.reader.readexactly(length), REQUEST_TIMEOUT_S)
        for session in self.sessions:
            sink = session.sink
            if isinstance(sink, InterleavedSink) and channel == sink.channels[1]:
                session.touch()

    async def _read_request(self, first: bytes) -> bool:
        """Read, answer and return whether the connection stays open."""
        try:
            rest = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
        except asyncio.LimitOverrunError:
            # Over MAX_HEAD without a blank line: answer and drop what is still coming.
            self._send(build_response(400, None))
            return False
        head = first + rest
        try:
            request = parse_head(head)
            if request.content_length:
                body = await asyncio.wait_for(
                    self.reader.readexactly(request.content_length), REQUEST_TIMEOUT_S
                )
                request = replace(request, body=body)
        except RtspError as error:
            log.debug("bad request from %s: %s", self.peer, error.message)
            self._send(build_response(error.status, _cseq_hint(head)))
            return not error.close
        for session in self.sessions:
            session.touch()  # any request on the connection keeps its sessions alive
        try:
            reply = await self.server.handle(request, self)
        except RtspError as error:
            reply = Reply(error.status, close=error.close)
        except Exception:
            log.exception("RTSP %s from %s failed", request.method, self.peer)
            reply = Reply(500)
        cseq = request.cseq
        self._send(
            build_response(reply.status, cseq, reply.headers, reply.body, reply.content_type)
        )
        if reply.after is not None:
            reply.after()
        return not reply.close

    # -- writing ------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if not self.writer.transport.is_closing():
            self.writer.write(data)

    def free_channels(self, wanted: tuple[int, int] | None) -> tuple[int, int] | None:
        used = {
            channel
            for session in self.sessions
            if isinstance(session.sink, InterleavedSink)
            for channel in session.sink.channels
        }
        if wanted is not None:
            rtp, rtcp = wanted
            if rtcp == rtp + 1 and rtcp <= MAX_INTERLEAVED_CHANNEL and not {rtp, rtcp} & used:
                return wanted
        for rtp in range(0, MAX_INTERLEAVED_CHANNEL, 2):
            if not {rtp, rtp + 1} & used:
                return rtp, rtp + 1
        return None

    def abort(self) -> None:
        self.writer.transport.abort()

    async def _close(self) -> None:
        # A TCP client that leaves ends its sessions at once; UDP sessions outlive the
        # connection (RFC 2326 allows it) until TEARDOWN or their timeout.
        for session in list(self.sessions):
            if isinstance(session.sink, InterleavedSink):
                await session.end("connection closed")
        self.sessions.clear()
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


def _cseq_hint(head: bytes) -> str | None:
    """The CSeq of a request that failed to parse, so even its error reaches the client."""
    for line in head[:MAX_HEAD].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"cseq":
            text = value.strip()
            return text.decode() if text.isdigit() and len(text) <= 10 else None
    return None


class RtspServer:
    def __init__(
        self,
        *,
        hubs: Callable[[int], StreamHub | None],
        auth: RtspAuth,
        settings: Callable[[], RtspSettings],
        bind: str,
        port: int,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT_S,
        idle_timeout: float | None = None,
        max_connections: int = MAX_CONNECTIONS,
        ready_timeout: float = READY_TIMEOUT_S,
        allow: Callable[[str], bool] | None = None,
        recordings: Recordings | None = None,
        playback_auth: RtspAuth | None = None,
    ) -> None:
        """`hubs(stream_id)` gives the hub of an enabled stream, None for unknown/disabled.

        `session_timeout`: a session without a request or RTCP report for this long ends;
        `idle_timeout` (default: the same) closes a connection that sends nothing. `allow`
        is the IP filter, asked once per connection before any byte is read. Playback is
        offered when both `recordings` (where the footage is now) and `playback_auth` are given.
        """
        self._hubs = hubs
        self._auth = auth
        self._settings = settings
        self._bind = bind
        self._port = port
        self.session_timeout = session_timeout
        self.idle_timeout = idle_timeout if idle_timeout is not None else session_timeout
        self._max_connections = max_connections
        self._ready_timeout = ready_timeout
        self._allow = allow
        self._recordings = recordings
        self._playback_auth = playback_auth
        self._server: asyncio.Server | None = None
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._udp_ports: tuple[int, int] | None = None
        self._sessions: dict[str, AnySession] = {}
        self._udp_peers: dict[tuple[str, int], AnySession] = {}
        self._senders: dict[int, MulticastSender] = {}  # by stream, while it has sessions
        self._connections: dict[_Connection, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._sdp_session = int(time.time())
        self._stopping = False

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound TCP port (the real one when constructed with port 0)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def udp_ports(self) -> tuple[int, int] | None:
        return self._udp_ports

    async def start(self) -> None:
        self._stopping = False
        self._server = await self._listen(self._port)
        await self._open_udp()
        self._sweeper = asyncio.get_running_loop().create_task(
            self._sweep(), name="rtsp-session-sweeper"
        )
        log.info("RTSP listening on %s:%d (UDP %s)", self._bind, self.port, self._udp_ports)

    async def _listen(self, port: int) -> asyncio.Server:
        return await asyncio.start_server(
            self._on_client, self._bind, port, limit=MAX_HEAD, reuse_address=True
        )

    async def _open_udp(self) -> None:
        loop = asyncio.get_running_loop()
        # RTP on an even port and RTCP on the next (RFC 3550 §11); random, so two servers on
        # one host (tests, a NVR beside a camera) do not collide.
        for _ in range(32):
            even = random.randrange(*UDP_PORT_RANGE) & ~1
            try:
                rtp, _ = await loop.create_datagram_endpoint(
                    lambda: _Datagrams(self._on_rtp), local_addr=(self._bind, even)
                )
            except OSError:
                continue
            try:
                rtcp, _ = await loop.create_datagram_endpoint(
                    lambda: _Datagrams(self._on_rtcp), local_addr=(self._bind, even + 1)
                )
            except OSError:
                rtp.close()
                continue
            self._rtp, self._rtcp, self._udp_ports = rtp, rtcp, (even, even + 1)
            return
        log.warning("no free UDP port pair: RTSP offers TCP only")

    async def apply_port(self, port: int) -> None:
        """Listen on `port` instead; on failure keep the old port and raise OSError.

        Established connections and their sessions carry on: only the listener moves.
        """
        if self._server is None:
            self._port = port
            return
        if port == self.port:
            return
        new = await self._listen(port)
        old, self._server, self._port = self._server, new, port
        # Not wait_closed(): from Python 3.12 it also waits for the open connections.
        old.close()
        log.info("RTSP moved to port %d", port)

    async def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for session in list(self._sessions.values()):
            await session.end("server stopping")
        self._senders.clear()
        for connection in list(self._connections):
            connection.abort()
        tasks = list(self._connections.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._connections.clear()
        for transport in (self._rtp, self._rtcp):
            if transport is not None:
                transport.close()
        self._rtp = self._rtcp = None
        self._udp_ports = None
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        log.info("RTSP stopped")

    # -- status -------------------------------------------------------------------------------
    def sessions(self) -> list[SessionInfo]:
        return [session.info() for session in self._sessions.values()]

    def multicast_sender(self, stream_id: int) -> MulticastSender | None:
        """The stream's multicast sender while it has sessions (running or not)."""
        return self._senders.get(stream_id)

    # -- connections --------------------------------------------------------------------------
    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = normalize_address(str(peer[0])) if peer else ""
        if self._stopping or len(self._connections) >= self._max_connections:
            log.debug("refused RTSP connection from %s: limit reached", address)
            writer.transport.abort()
            return
        if self._allow is not None and not self._allow(address):
            log.info("IP filter refused an RTSP connection from %s", address)
            writer.transport.abort()
            return
        sock: socket.socket | None = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TCP_SEND_BUFFER)
        writer.transport.set_write_buffer_limits(high=TCP_HIGH_WATER)
        connection = _Connection(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._connections[connection] = task
        try:
            await connection.run()
        except asyncio.CancelledError:
            # stop() cancels connections; this task is nobody's to await, and Python 3.11's
            # stream callback would report a cancelled task as an error.
            pass
        finally:
            self._connections.pop(connection, None)

    # -- UDP ----------------------------------------------------------------------------------
    def _on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        """Clients send a few packets here to open their NAT; nothing to do with them."""

    def _on_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        # An RTCP packet: version 2 and a packet type in 200..206 (SR, RR, SDES, BYE, APP, FB).
        if len(data) < 8 or data[0] >> 6 != 2 or not 200 <= data[1] <= 206:
            return
        session = self._udp_peers.get((normalize_address(str(addr[0])), int(addr[1])))
        if session is not None:
            session.touch()

    # -- sessions -----------------------------------------------------------------------------
    async def _sweep(self) -> None:
        period = max(0.1, min(1.0, self.session_timeout / 4))
        while True:
            await asyncio.sleep(period)
            deadline = time.monotonic() - self.session_timeout
            for session in list(self._sessions.values()):
                if session.last_seen < deadline:
                    await session.end("timeout")
            for stream_id, sender in list(self._senders.items()):
                if not self._sender_current(sender, self._multicast_settings(stream_id)):
                    # Disabled or moved to another group: its viewers would otherwise keep
                    # receiving a group the configuration no longer names.
                    await self._end_multicast(sender, "multicast settings changed")

    def _session_ended(self, session: AnySession, reason: str) -> None:
        self._sessions.pop(session.id, None)
        if isinstance(session, MulticastSession):
            sender = session.sender
            if self._senders.get(session.stream_id) is sender and not self._multicast_sessions(
                sender
            ):
                del self._senders[session.stream_id]  # stopped already: it has no member
        sink = session.sink
        if isinstance(sink, UdpSink):
            key = (session.client, sink.rtcp_address[1])
            if self._udp_peers.get(key) is session:
                del self._udp_peers[key]
        owner = session.owner
        if isinstance(owner, _Connection):
            owner.sessions.discard(session)
            if reason == "stream ended" and isinstance(sink, InterleavedSink):
                # The stream changed codec or stopped: closing tells the client to reconnect
                # and read the new description.
                owner.writer.close()
        log.info(
            "RTSP session %s ended (%s): stream %d, %s, %d packets, %d bytes, %d skips, %.0f s",
            session.id,
            reason,
            session.stream_id,
            session.client,
            session.packets,
            session.octets,
            session.skips,
            time.time() - session.started,
        )

    def _owned(
        self, request: Request, connection: _Connection, user: str, kind: type = object
    ) -> AnySession:
        """The request's session, if it is this user's, from this client, and a `kind`."""
        session_id = request.session_id
        session = self._sessions.get(session_id) if session_id else None
        if session is None or session.user != user or not isinstance(session, kind):
            raise RtspError(454, "no such session")
        if isinstance(session.sink, InterleavedSink):
            if session.owner is not connection:
                raise RtspError(454, "session of another connection")
        elif session.client != connection.client:
            raise RtspError(454, "session of another client")
        session.touch()
        return session

    def _count(self, stream_id: int, *, playing: bool = False) -> int:
        return sum(
            1
            for s in self._sessions.values()
            if s.stream_id == stream_id and (not playing or s.state == "PLAYING")
        )

    # -- requests -----------------------------------------------------------------------------
    async def handle(self, request: Request, connection: _Connection) -> Reply:
        method = request.method
        if request.cseq is None:
            return Reply(400)
        if method not in KNOWN_METHODS:
            return Reply(501, [("Public", PUBLIC)])
        if method not in SUPPORTED_METHODS:
            return Reply(405, [("Allow", PUBLIC)])
        require = request.header("require")
        if require:
            return Reply(551, [("Unsupported", require[:200])])
        if method == "OPTIONS":
            return Reply(200, [("Public", PUBLIC)])
        playback = is_playback_uri(request.uri)
        auth = self._auth
        if playback:
            if self._playback_auth is None or self._recordings is None:
                return Reply(404)  # this server does not play recordings back
            auth = self._playback_auth
        result = auth.check(method, request.uri, request.header("authorization"), connection.client)
        if result.status is AuthStatus.CHALLENGE:
            return Reply(401, [("WWW-Authenticate", value) for value in result.challenges])
        if result.status in (AuthStatus.LOCKED, AuthStatus.NOT_ACTIVATED):
            return Reply(401)
        if result.status is AuthStatus.FORBIDDEN:
            return Reply(403)
        if playback:
            return await self._handle_playback(request, connection, result.user)
        handler = {
            "DESCRIBE": self._describe,
            "SETUP": self._setup,
            "PLAY": self._play,
            "PAUSE": self._pause,
            "TEARDOWN": self._teardown,
            "GET_PARAMETER": self._parameter,
            "SET_PARAMETER": self._parameter,
        }[method]
        return await handler(request, connection, result.user)

    def _target(self, request: Request, connection: _Connection) -> tuple[Target, StreamHub]:
        target = parse_target(request.uri)
        hub = self._hubs(target.stream_id)
        if hub is None:
            raise RtspError(404, "no such stream")
        return replace(target, base=self._absolute(target.base, connection)), hub

    def _absolute(self, base: str, connection: _Connection) -> str:
        """A base URL as the client must use it: with the address it reached us at."""
        if base.lower().startswith("rtsp"):
            return base
        host = connection.local_ip
        host = f"[{host}]" if ":" in host else host
        return f"rtsp://{host}:{connection.local_port}{base}"

    async def _describe(self, request: Request, connection: _Connection, user: str) -> Reply:
        target, hub = self._target(request, connection)
        if target.track is not None:
            raise RtspError(404, "DESCRIBE names a stream, not a track")
        if not await hub.wait_ready(self._ready_timeout):
            # No keyframe yet, so no parameter sets to describe: the client may retry.
            return Reply(503, [("Retry-After", "2")])
        unit = hub.last_unit
        sdp = build_sdp(
            hub.packetizer,
            stream_id=target.stream_id,
            session_id=self._sdp_session,
            server_address=connection.local_ip,
            width=unit.width if unit else 0,
            height=unit.height if unit else 0,
            frame_rate=hub.frame_rate,
        )
        return Reply(
            200,
            [("Content-Base", target.base)],
            body=sdp.encode(),
            content_type="application/sdp",
        )

    # -- multicast ----------------------------------------------------------------------------
    def _multicast_settings(self, stream_id: int) -> StreamMulticast | None:
        settings = self._settings().multicast_for(stream_id)
        return settings if settings.enabled else None

    def _multicast_interface(self) -> str | None:
        """The listening address when it is one IPv4 address: the sender's interface."""
        try:
            address = ipaddress.ip_address(self._bind)
        except ValueError:
            return None  # a host name or "" (all addresses): the routing table decides
        if address.version != 4 or address.is_unspecified:
            return None
        return str(address)

    def _sender_current(self, sender: MulticastSender, settings: StreamMulticast | None) -> bool:
        return (
            settings is not None
            and sender.sink.key == (settings.address, settings.video_port, settings.ttl)
            and self._hubs(sender.stream_id) is sender.hub
        )

    def _multicast_sessions(self, sender: MulticastSender) -> list[MulticastSession]:
        return [
            s
            for s in self._sessions.values()
            if isinstance(s, MulticastSession) and s.sender is sender
        ]

    async def _end_multicast(self, sender: MulticastSender, reason: str) -> None:
        for session in self._multicast_sessions(sender):
            await session.end(reason)
        if self._senders.get(sender.stream_id) is sender:
            del self._senders[sender.stream_id]

    async def _sender(self, hub: StreamHub, settings: StreamMulticast) -> MulticastSender:
        """The stream's one sender, made for the current settings if they changed."""
        sender = self._senders.get(hub.stream_id)
        while sender is not None and not self._sender_current(sender, settings):
            await self._end_multicast(sender, "multicast settings changed")
            sender = self._senders.get(hub.stream_id)
        if sender is None:
            sink = MulticastSink(
                settings.address,
                settings.video_port,
                settings.ttl,
                interface=self._multicast_interface(),
            )
            sender = self._senders[hub.stream_id] = MulticastSender(hub, sink)
        return sender

    # -- SETUP --------------------------------------------------------------------------------
    async def _choose_transport(
        self, specs: list[TransportSpec], connection: _Connection, hub: StreamHub
    ) -> MediaSink | MulticastSender | None:
        """The first offer this server can serve: a sink of its own, or the stream's sender."""
        for spec in specs:
            if spec.multicast:
                settings = self._multicast_settings(hub.stream_id)
                if spec.lower == "UDP" and settings is not None:
                    # The configured group whatever the client names: the administrator
                    # decides where the camera's multicast goes, not each client.
                    return await self._sender(hub, settings)
            else:
                sink = self._unicast_sink(spec, connection, hub.packetizer.ssrc)
                if sink is not None:
                    return sink
        return None

    def _unicast_sink(
        self, spec: TransportSpec, connection: _Connection, ssrc: int
    ) -> MediaSink | None:
        """A sink for a unicast offer: interleaved on the connection, or UDP to the client."""
        if spec.lower == "TCP":
            channels = connection.free_channels(spec.interleaved)
            if channels is None:
                return None
            return InterleavedSink(
                connection.writer, channels, ssrc, stall_timeout=self.session_timeout
            )
        if spec.client_port is None or not (self._rtp and self._rtcp and self._udp_ports):
            return None
        # Media goes only to the address the request came from, whatever a `destination=`
        # says: the server must not be a traffic reflector.
        return UdpSink(
            self._rtp, self._rtcp, connection.peer_ip, spec.client_port, self._udp_ports, ssrc
        )

    def _setup_transport(
        self, request: Request, connection: _Connection, user: str, target: Target | PlaybackTarget
    ) -> str:
        """The checks every SETUP passes (live or playback); the Transport header asked for."""
        if target.track not in (None, 1):
            raise RtspError(404, "no such track")
        if request.session_id:
            self._owned(request, connection, user)
            raise RtspError(455, "the session's one track is already set up")
        transport = request.header("transport")
        if not transport:
            raise RtspError(461, "no Transport header")
        return transport

    async def _setup(self, request: Request, connection: _Connection, user: str) -> Reply:
        target, hub = self._target(request, connection)
        transport = self._setup_transport(request, connection, user, target)
        limit = self._settings().max_clients_per_stream
        if self._count(target.stream_id) >= limit:
            return Reply(453)
        if len(connection.sessions) >= MAX_SESSIONS_PER_CONNECTION:
            return Reply(453)
        chosen = await self._choose_transport(parse_transport(transport), connection, hub)
        if chosen is None:
            return Reply(461)
        session: RtspSession
        if isinstance(chosen, MulticastSender):
            session = MulticastSession(
                secrets.token_hex(8),
                chosen,
                client=connection.client,
                user=user,
                owner=connection,
                on_end=self._session_ended,
            )
        else:
            session = RtspSession(
                secrets.token_hex(8),
                hub,
                chosen,
                client=connection.client,
                user=user,
                owner=connection,
                on_end=self._session_ended,
            )
        return self._register(session, connection)

    def _register(self, session: AnySession, connection: _Connection) -> Reply:
        """Keep a new session and answer its SETUP."""
        sink = session.sink
        self._sessions[session.id] = session
        connection.sessions.add(session)
        if isinstance(sink, UdpSink):
            self._udp_peers[(session.client, sink.rtcp_address[1])] = session
        log.info(
            "RTSP session %s started: %s %d for %s at %s over %s",
            session.id,
            "playback of" if isinstance(session, PlaybackSession) else "stream",
            session.stream_id,
            session.user,
            connection.peer,
            sink.transport_name,
        )
        return Reply(
            200,
            [
                ("Transport", sink.header()),
                ("Session", f"{session.id};timeout={int(self.session_timeout)}"),
            ],
        )

    async def _play(self, request: Request, connection: _Connection, user: str) -> Reply:
        session = self._owned(request, connection, user, RtspSession)
        assert isinstance(session, RtspSession)
        target, hub = self._target(request, connection)
        if target.stream_id != session.stream_id:
            raise RtspError(455, "the URL names another stream")
        if hub.packetizer is not session.packetizer:
            # The codec changed since SETUP: the client's description is stale.
            await session.end("stream changed")
            raise RtspError(454, "the stream changed; describe it again")
        headers = [("Session", f"{session.id};timeout={int(self.session_timeout)}")]
        if session.state == "PLAYING":
            return Reply(200, [("Range", "npt=now-"), *headers])
        limit = self._settings().max_clients_per_stream
        if self._count(session.stream_id, playing=True) >= limit:
            return Reply(453, headers)
        sequence, timestamp = await session.prepare_play(self._ready_timeout)
        if session.ended:
            raise RtspError(454, "session ended")
        info = f"url={target.base}{TRACK_CONTROL};seq={sequence}"
        if timestamp is not None:
            info += f";rtptime={timestamp}"
        return Reply(
            200,
            [("Range", "npt=now-"), ("RTP-Info", info), *headers],
            after=session.start_writer,
        )

    async def _pause(self, request: Request, connection: _Connection, user: str) -> Reply:
        session = self._owned(request, connection, user, RtspSession)
        await session.pause()
        return Reply(200, [("Session", session.id)])

    async def _teardown(self, request: Request, connection: _Connection, user: str) -> Reply:
        session = self._owned(request, connection, user)
        await session.end("teardown")
        return Reply(200, [("Session", session.id)])

    async def _parameter(self, request: Request, connection: _Connection, user: str) -> Reply:
        """Keep-alive with an empty body; no parameter is readable or settable yet."""
        headers: list[tuple[str, str]] = []
        if request.session_id:
            session = self._owned(request, connection, user)
            headers.append(("Session", session.id))
        if request.body.strip():
            return Reply(451, headers)
        return Reply(200, headers)

    # -- playback of recordings (playback.py) ---------------------------------------------------
    async def _handle_playback(self, request: Request, connection: _Connection, user: str) -> Reply:
        handler = {
            "DESCRIBE": self._playback_describe,
            "SETUP": self._playback_setup,
            "PLAY": self._playback_play,
            "PAUSE": self._playback_pause,
            "TEARDOWN": self._teardown,
            "GET_PARAMETER": self._parameter,
            "SET_PARAMETER": self._parameter,
        }[request.method]
        return await handler(request, connection, user)

    async def _footage(
        self, request: Request, connection: _Connection
    ) -> tuple[PlaybackTarget, FootageInfo]:
        """What the URL names, and what footage there is of it (404 if none)."""
        target = parse_playback_target(request.uri)
        target = replace(target, base=self._absolute(target.base, connection))
        recordings = self._recordings() if self._recordings is not None else None
        if recordings is None:
            raise RtspError(404, "no recordings (no card)")
        footage = await asyncio.to_thread(probe_footage, *recordings, target)
        if footage is None:
            raise RtspError(404, "no footage in that span")
        return target, footage

    async def _playback_describe(
        self, request: Request, connection: _Connection, user: str
    ) -> Reply:
        target, footage = await self._footage(request, connection)
        if target.track is not None:
            raise RtspError(404, "DESCRIBE names a track's span, not its trackID")
        sdp = playback_sdp(
            footage, target, session_id=self._sdp_session, server_address=connection.local_ip
        )
        return Reply(
            200, [("Content-Base", target.base)], body=sdp.encode(), content_type="application/sdp"
        )

    async def _playback_setup(self, request: Request, connection: _Connection, user: str) -> Reply:
        target, footage = await self._footage(request, connection)
        transport = self._setup_transport(request, connection, user, target)
        playing_back = sum(isinstance(s, PlaybackSession) for s in self._sessions.values())
        if (
            playing_back >= MAX_PLAYBACK_SESSIONS
            or self._count(target.track_id) >= self._settings().max_clients_per_stream
            or len(connection.sessions) >= MAX_SESSIONS_PER_CONNECTION
        ):
            return Reply(453)
        packetizer = make_packetizer(footage.first.codec)
        sink = self._playback_sink(parse_transport(transport), connection, packetizer.ssrc)
        if sink is None:
            return Reply(461)
        assert self._recordings is not None
        session = PlaybackSession(
            secrets.token_hex(8),
            target,
            footage,
            self._recordings,
            packetizer,
            sink,
            control_url=self._absolute(request.uri, connection),
            client=connection.client,
            user=user,
            owner=connection,
            on_end=self._session_ended,
        )
        return self._register(session, connection)

    def _playback_sink(
        self, specs: list[TransportSpec], connection: _Connection, ssrc: int
    ) -> MediaSink | None:
        """The first unicast offer this server can serve: a playback is one client's."""
        for spec in specs:
            sink = None if spec.multicast else self._unicast_sink(spec, connection, ssrc)
            if sink is not None:
                return sink
        return None

    async def _playback_play(self, request: Request, connection: _Connection, user: str) -> Reply:
        session = self._owned(request, connection, user, PlaybackSession)
        assert isinstance(session, PlaybackSession)
        headers = await session.play(request.header("range"), request.header("scale"))
        if session.ended:
            raise RtspError(454, "session ended")
        return Reply(
            200,
            [*headers, ("Session", f"{session.id};timeout={int(self.session_timeout)}")],
            after=session.start_writer,
        )

    async def _playback_pause(self, request: Request, connection: _Connection, user: str) -> Reply:
        session = self._owned(request, connection, user, PlaybackSession)
        assert isinstance(session, PlaybackSession)
        await session.pause()
        return Reply(200, [("Session", session.id)])

    async def end_playback(self, reason: str) -> None:
        """End every playback session (the card is going: no file may stay open)."""
        for session in list(self._sessions.values()):
            if isinstance(session, PlaybackSession):
                await session.end(reason)
