"""An RTSP client on the event loop: one camera's H.264/H.265 stream as access units.

One `RtspPull` is one RTSP connection: DESCRIBE, SETUP (RTP/AVP/TCP interleaved, the only
transport that crosses NATs and loses nothing), PLAY, with Digest (or Basic) authentication
when the camera asks for it. Interleaved RTP is read in large chunks straight off the socket
by the event loop and depacketized (RFC 6184: single NAL units, STAP-A, FU-A; RFC 7798:
single, AP, FU) into Annex B access units, one call of `on_unit` per access unit, on the loop
itself: no thread, no hand-over, no decoding. Only what the recorder and the hub need is
looked at: NAL unit types (keyframes), the RTP timestamp, and the SPS for the picture size.

A unit ends at its marker bit, or when a packet of another timestamp begins the next. A gap
in the sequence numbers (a camera that skipped packets) drops the unit being assembled.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import socket
import struct
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from vigil.security.digest import parse_params

MAX_HEAD = 64 * 1024
MAX_UNIT = 16 * 1024 * 1024  # bytes of one access unit; beyond this the camera is broken
START = b"\x00\x00\x00\x01"
DEFAULT_KEEPALIVE_S = 25.0  # below the usual 60 s session timeout
USER_AGENT = "Vigil"
FULL_READ = 256 * 1024  # what asyncio's socket transport reads at most at a time
_RTP_HEAD = struct.Struct(">BBHI")  # V/P/X/CC, M/PT, sequence number, timestamp
_BYTES = [bytes((value,)) for value in range(256)]


class PullError(Exception):
    """The camera refused or broke the RTSP exchange."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]


@dataclass(frozen=True, slots=True)
class Track:
    """The video track the SDP offers: its codec, payload type, control URL, parameter sets."""

    codec: str  # "H264" or "H265"
    payload_type: int
    control: str
    parameter_sets: bytes  # Annex B, from sprop-parameter-sets / sprop-vps/sps/pps


class Credentials:
    """Digest (RFC 7616/2617, MD5, qop=auth when offered) or Basic answers."""

    def __init__(self, user: str | None, password: str | None) -> None:
        self.user, self.password = user or "", password or ""
        self.present = user is not None
        self._digest: dict[str, str] | None = None
        self._basic = False
        self._count = 0

    def take(self, challenges: list[str]) -> bool:
        """Adopt a challenge among the WWW-Authenticate values; False if none fits."""
        if not self.present:
            return False
        for value in challenges:
            if value[:7].lower() == "digest ":
                params = parse_params(value[7:])
                if params.get("algorithm", "MD5").upper() == "MD5":
                    self._digest, self._count = params, 0
                    return True
        if any(value[:6].lower() == "basic " for value in challenges):
            self._basic = True
            return True
        return False

    def header(self, method: str, uri: str) -> str | None:
        c = self._digest
        if c is None:
            if self._basic:
                token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
                return f"Basic {token}"
            return None
        self._count += 1

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.user}:{c['realm']}:{self.password}")
        ha2 = md5(f"{method}:{uri}")
        fields = [
            f'username="{self.user}"',
            f'realm="{c["realm"]}"',
            f'nonce="{c["nonce"]}"',
            f'uri="{uri}"',
            "algorithm=MD5",
        ]
        if "auth" in c.get("qop", "").split(","):
            nc, cnonce = f"{self._count:08x}", secrets.token_hex(8)
            response = md5(f"{ha1}:{c['nonce']}:{nc}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = md5(f"{ha1}:{c['nonce']}:{ha2}")
        fields.append(f'response="{response}"')
        if "opaque" in c:
            fields.append(f'opaque="{c["opaque"]}"')
        return "Digest " + ", ".join(fields)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without user:password, user, password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return urlunsplit(parts._replace(netloc=netloc)), user, password


def _sprop_sets(fmtp: dict[str, str], names: tuple[str, ...]) -> bytes:
    units = []
    for name in names:
        for item in fmtp.get(name, "").split(","):
            item = item.strip()
            if item:
                with contextlib.suppress(ValueError):
                    units.append(START + base64.b64decode(item + "=" * (-len(item) % 4)))
    return b"".join(units)


def parse_sdp(sdp: str, base: str) -> Track:
    """The first H.264 or H.265 video track of `sdp`; `base` resolves a relative control."""
    media: list[list[str]] = []
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
    for lines in media:
        if not lines[0].startswith("m=video"):
            continue
        formats = lines[0].split()[3:]
        rtpmap: dict[str, str] = {}
        fmtps: dict[str, dict[str, str]] = {}
        control = ""
        for line in lines[1:]:
            if line.startswith("a=rtpmap:"):
                pt, _, name = line[len("a=rtpmap:") :].partition(" ")
                rtpmap[pt] = name.split("/")[0].upper()
            elif line.startswith("a=fmtp:"):
                pt, _, params = line[len("a=fmtp:") :].partition(" ")
                fmtps[pt] = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (p.partition("=") for p in params.split(";"))
                }
            elif line.startswith("a=control:"):
                control = line[len("a=control:") :].strip()
        for pt in formats:
            codec = {"H264": "H264", "H265": "H265", "HEVC": "H265"}.get(rtpmap.get(pt, ""))
            if codec is None:
                continue
            fmtp = fmtps.get(pt, {})
            names = (
                ("sprop-parameter-sets",)
                if codec == "H264"
                else ("sprop-vps", "sprop-sps", "sprop-pps")
            )
            if control.startswith("rtsp://") or control.startswith("rtsps://"):
                url = control
            elif control and control != "*":
                url = base if base.endswith("/") else base + "/"
                url += control
            else:
                url = base
            return Track(codec, int(pt), url, _sprop_sets(fmtp, names))
    raise PullError("the source offers no H.264 or H.265 video")


def parse_message(buf: bytearray, pos: int, n: int) -> tuple[int, Response | None]:
    """The RTSP message at `pos` of an interleaved stream's buffer (filled up to `n`): the bytes
    it takes (0: not complete yet) and the reply, if it is one (requests from the server are
    skipped). A head over `MAX_HEAD` bytes is a `PullError`."""
    head_end = buf.find(b"\r\n\r\n", pos, min(n, pos + MAX_HEAD))
    if head_end < 0:
        if n - pos >= MAX_HEAD:
            raise PullError("oversized RTSP message")
        return 0, None
    lines = bytes(buf[pos:head_end]).decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    length_text = next((v for k, v in headers if k == "content-length"), "0")
    length = int(length_text) if length_text.isdigit() else 0
    body_start = head_end + 4
    if body_start + length > n:
        return 0, None
    used = body_start + length - pos
    first = lines[0].split(" ", 2)
    if not (first[0].startswith("RTSP/") and len(first) >= 2 and first[1].isdigit()):
        return used, None
    body = bytes(buf[body_start : body_start + length])
    return used, Response(int(first[1]), tuple(headers), body)


# -- the shared read grid ----------------------------------------------------------------------
class ReadGrid:
    """The instants at which paced connections read their sockets: one timer for them all.

    A camera's frame comes in a burst; reading it as it comes wakes the process once per
    frame per camera, and waking up costs more than the reading. Paced, a connection's socket
    is not watched by the event loop at all: every camera's bytes wait in their socket buffers
    until the grid's next instant, and one wake-up reads them all (a `recv` per camera, no
    selector registration to undo and redo). At most `every` seconds of delay; TCP's flow
    control covers a larger burst."""

    _grids: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, ReadGrid]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float) -> None:
        self.loop, self.every = loop, every
        self._readers: dict[RtspPull, None] = {}  # in the order they joined
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop, every: float) -> ReadGrid:
        grids = cls._grids.setdefault(loop, {})
        grid = grids.get(every)
        if grid is None:
            grid = grids[every] = cls(loop, every)
        return grid

    def add(self, reader: RtspPull) -> None:
        self._readers[reader] = None
        if self._timer is None:
            self._schedule()

    def discard(self, reader: RtspPull) -> None:
        self._readers.pop(reader, None)
        if not self._readers and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        every = self.every
        self._timer = self.loop.call_at((self.loop.time() // every + 1) * every, self._tick)

    def _tick(self) -> None:
        self._timer = None  # a reader that leaves and comes back meanwhile schedules anew
        for reader in list(self._readers):
            reader.read_now()
        if self._readers and self._timer is None:
            self._schedule()


# -- the connection -----------------------------------------------------------------------------
UnitCallback = Callable[[bytes, int, bool, float], None]  # data, RTP timestamp, key, arrival


class RtspPull(asyncio.Protocol):
    """One RTSP/TCP connection playing one video track; `await open()`, then units flow."""

    def __init__(
        self,
        url: str,
        on_unit: UnitCallback,
        on_track: Callable[[Track], None],
        *,
        read_every: float = 0.0,
    ) -> None:
        """`on_track` is called with the track before PLAY (units may follow at once).
        `read_every` (seconds): once playing, read the socket at most this often, on a grid
        that every connection of the loop shares (`ReadGrid`)."""
        self._read_every = read_every
        self._grid: ReadGrid | None = None
        self._sock: socket.socket | None = None  # ours to read while paced (a dup)
        self.url, user, password = split_credentials(url)
        self._auth = Credentials(user, password)
        self._on_unit = on_unit
        self._on_track = on_track
        self.track: Track | None = None
        self.last_media = 0.0  # monotonic time of the last unit (or of the connection)
        self.closed: asyncio.Future[str] | None = None
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._cseq = 0
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._session: str | None = None
        self._keepalive_s = DEFAULT_KEEPALIVE_S
        self._channel = 0
        self._payload_type = -1
        self._payload = self._h264_payload  # the depacketizer of the track's codec
        # Depacketizer state.
        self._next_seq = -1
        self._timestamp = -1
        self._pieces: list[bytes | bytearray] = []
        self._size = 0
        self._key = False
        self._damaged = False

    # -- connection ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.last_media = time.monotonic()

    def connection_lost(self, exc: Exception | None) -> None:
        self._unpace()
        reason = f"connection lost: {exc}" if exc else "the source closed the connection"
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PullError(reason))
        self._pending.clear()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(reason)

    async def open(self) -> Track:
        """Connect, DESCRIBE, SETUP and PLAY: the track played."""
        loop = asyncio.get_running_loop()
        parts = urlsplit(self.url)
        if parts.scheme != "rtsp":
            raise PullError(f"unsupported scheme {parts.scheme!r}")
        self.closed = loop.create_future()
        await loop.create_connection(lambda: self, parts.hostname, parts.port or 554)
        describe = await self._request("DESCRIBE", self.url, [("Accept", "application/sdp")])
        base = describe.header("content-base") or describe.header("content-location") or self.url
        track = parse_sdp(describe.body.decode("utf-8", "replace"), base)
        setup = await self._request(
            "SETUP", track.control, [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")]
        )
        session = setup.header("session")
        if not session:
            raise PullError("SETUP answered without a Session")
        name, *params = (p.strip() for p in session.split(";"))
        self._session = name
        for param in params:
            key, _, value = param.partition("=")
            if key.lower() == "timeout" and value.isdigit() and int(value) > 0:
                self._keepalive_s = min(DEFAULT_KEEPALIVE_S, int(value) / 2)
        for part in (setup.header("transport") or "").split(";"):
            if part.startswith("interleaved="):
                self._channel = int(part[len("interleaved=") :].partition("-")[0])
        self._payload_type = track.payload_type
        self._payload = self._h265_payload if track.codec == "H265" else self._h264_payload
        self.track = track
        self._on_track(track)
        await self._request("PLAY", self.url, [("Range", "npt=0.000-")])
        self.last_media = time.monotonic()
        if self._read_every > 0:
            self._pace(loop)
        return track

    def _pace(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on the grid reads the socket, not the transport (which still writes)."""
        assert self._transport is not None
        if self._transport.is_closing():
            return
        self._sock = self._transport.get_extra_info("socket").dup()
        self._sock.setblocking(False)
        self._transport.pause_reading()
        self._grid = ReadGrid.of(loop, self._read_every)
        self._grid.add(self)

    @property
    def read_every(self) -> float:
        return self._read_every

    def pace(self, every: float) -> None:
        """Read the socket at most every `every` seconds from now on (a grid of its own)."""
        self._read_every = every
        grid = self._grid
        if grid is not None and grid.every != every:
            grid.discard(self)
            self._grid = ReadGrid.of(grid.loop, every)
            self._grid.add(self)

    def _unpace(self) -> None:
        if self._grid is not None:
            self._grid.discard(self)
            self._grid = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def read_now(self) -> None:
        """Read what the socket holds (the grid's call)."""
        sock = self._sock
        try:
            while sock is not None:
                data = sock.recv(FULL_READ)
                if not data:
                    self._fail("the source closed the connection")
                    return
                self.data_received(data)
                if len(data) < FULL_READ:  # drained; a full read: more may be waiting
                    return
                sock = self._sock
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(f"connection lost: {exc}")

    @property
    def keepalive_s(self) -> float:
        return self._keepalive_s

    def keep_alive(self) -> None:
        """A request that keeps the session alive (its answer is not waited for)."""
        if self._transport is not None and not self._transport.is_closing():
            self._send("GET_PARAMETER", self.url, [])

    def close(self) -> None:
        """TEARDOWN (not waited for) and close the connection."""
        self._unpace()
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._send("TEARDOWN", self.url, [])
        transport.close()

    # -- requests ------------------------------------------------------------------------------
    def _send(self, method: str, uri: str, headers: list[tuple[str, str]]) -> int:
        assert self._transport is not None
        self._cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self._cseq}", f"User-Agent: {USER_AGENT}"]
        if self._session:
            lines.append(f"Session: {self._session}")
        authorization = self._auth.header(method, uri)
        if authorization:
            lines.append(f"Authorization: {authorization}")
        lines += [f"{name}: {value}" for name, value in headers]
        self._transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return self._cseq

    async def _exchange(self, method: str, uri: str, headers: list[tuple[str, str]]) -> Response:
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[self._send(method, uri, headers)] = future
        return await future

    async def _request(self, method: str, uri: str, headers: list[tuple[str, str]]) -> Response:
        response = await self._exchange(method, uri, headers)
        if response.status == 401 and self._auth.take(response.all("www-authenticate")):
            response = await self._exchange(method, uri, headers)
        if response.status != 200:
            raise PullError(f"{method} answered {response.status}")
        return response

    # -- the stream ----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self._buf
        buf += data
        pos, n = 0, len(buf)
        channel = self._channel
        try:
            while n - pos >= 4:
                if buf[pos] != 0x24:  # not "$": an RTSP message
                    used = self._message(buf, pos, n)
                    if not used:
                        break
                    pos += used
                    continue
                end = pos + 4 + (buf[pos + 2] << 8 | buf[pos + 3])
                if end > n:
                    break
                if buf[pos + 1] == channel and end - pos >= 16:
                    self._rtp(buf, pos + 4, end, now)
                pos = end  # RTCP and other channels: not needed here
        except PullError as exc:
            self._fail(str(exc))
            return
        if pos:
            del buf[:pos]

    def _fail(self, reason: str) -> None:
        self._unpace()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(reason)
        if self._transport is not None:
            self._transport.close()

    def _message(self, buf: bytearray, pos: int, n: int) -> int:
        """Bytes used by the RTSP message at `pos` (0: not complete yet); replies go to their
        requests by CSeq."""
        used, response = parse_message(buf, pos, n)
        cseq = response.header("cseq") if response is not None else None
        if response is not None and cseq is not None and cseq.isdigit():
            future = self._pending.pop(int(cseq), None)
            if future is not None and not future.done():
                future.set_result(response)
        return used

    def _rtp(self, buf: bytearray, p: int, end: int, now: float) -> None:
        first, second, seq, timestamp = _RTP_HEAD.unpack_from(buf, p)
        if first >> 6 != 2 or second & 0x7F != self._payload_type:
            return
        off = p + 12 + 4 * (first & 0x0F)
        if first & 0x10:  # header extension
            if off + 4 > end:
                return
            off += 4 + 4 * (buf[off + 2] << 8 | buf[off + 3])
        if first & 0x20:  # padding
            end -= buf[end - 1]
        if off >= end:
            return
        next_seq = self._next_seq
        gap = seq != next_seq and next_seq >= 0  # packets lost
        self._next_seq = (seq + 1) & 0xFFFF
        if timestamp != self._timestamp:
            if self._pieces:  # the previous unit ended without its marker
                self._damaged |= gap
                self._emit(now)
            self._timestamp = timestamp
        elif gap:
            self._damaged = True  # the unit being assembled is incomplete
        self._payload(buf, off, end)
        if second & 0x80:
            self._emit(now)

    def _h264_payload(self, buf: bytearray, off: int, end: int) -> None:
        pieces = self._pieces
        kind = buf[off] & 0x1F
        if kind == 28:  # FU-A
            if off + 2 > end:
                return
            fu = buf[off + 1]
            if fu & 0x80:
                inner = fu & 0x1F
                self._key = self._key or inner == 5
                pieces.append(START)
                pieces.append(_BYTES[(buf[off] & 0xE0) | inner])
            elif not pieces:
                self._damaged = True  # the start of this NAL unit was never seen
            pieces.append(buf[off + 2 : end])
            self._size += end - off
        elif kind == 24:  # STAP-A
            pos = off + 1
            while pos + 2 < end:
                size = buf[pos] << 8 | buf[pos + 1]
                pos += 2
                if size == 0 or pos + size > end:
                    break
                self._key = self._key or buf[pos] & 0x1F == 5
                pieces.append(START)
                pieces.append(buf[pos : pos + size])
                pos += size
            self._size += end - off
        elif 1 <= kind <= 23:
            self._key = self._key or kind == 5
            pieces.append(START)
            pieces.append(buf[off:end])
            self._size += end - off
        if self._size > MAX_UNIT:
            raise PullError("an access unit larger than 16 MiB")

    def _h265_payload(self, buf: bytearray, off: int, end: int) -> None:
        if off + 2 > end:
            return
        pieces = self._pieces
        kind = (buf[off] >> 1) & 0x3F
        if kind == 49:  # FU
            if off + 3 > end:
                return
            fu = buf[off + 2]
            if fu & 0x80:
                inner = fu & 0x3F
                self._key = self._key or 16 <= inner <= 21
                pieces.append(START)
                pieces.append(bytes(((buf[off] & 0x81) | inner << 1, buf[off + 1])))
            elif not pieces:
                self._damaged = True
            pieces.append(buf[off + 3 : end])
        elif kind == 48:  # AP (no DONL: sprop-max-don-diff is not offered)
            pos = off + 2
            while pos + 2 < end:
                size = buf[pos] << 8 | buf[pos + 1]
                pos += 2
                if size < 2 or pos + size > end:
                    break
                self._key = self._key or 16 <= (buf[pos] >> 1) & 0x3F <= 21
                pieces.append(START)
                pieces.append(buf[pos : pos + size])
                pos += size
        elif kind < 48:
            self._key = self._key or 16 <= kind <= 21
            pieces.append(START)
            pieces.append(buf[off:end])
        self._size += end - off
        if self._size > MAX_UNIT:
            raise PullError("an access unit larger than 16 MiB")

    def _emit(self, now: float) -> None:
        pieces, key, damaged = self._pieces, self._key, self._damaged
        self._pieces = []
        self._size = 0
        self._key = False
        self._damaged = False
        if pieces and not damaged:
            self.last_media = now
            self._on_unit(b"".join(pieces), self._timestamp, key, now)
