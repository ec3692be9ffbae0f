"""A lean RTSP client for the benchmark: plays an H.264 stream over TCP, measures, never decodes.

One `RtspClient` is one RTSP connection doing DESCRIBE, SETUP (RTP/AVP/TCP interleaved) and
PLAY, with Digest authentication when the server asks for it (the credentials and replies
are Vigil's own RTSP pull client's). It reads the interleaved stream in large chunks and looks
at each RTP header only: sequence gaps (packets and frames lost), marker bits (frames), and, at
the start of a frame, the first bytes of its NAL units (a keyframe; a key that names the frame).
RTCP sender reports map RTP time to the server's wall clock, so each frame's arrival can be
compared with the time the server says it was taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from vigil.media.rtsp_pull import Credentials, Response, parse_message, split_credentials

NTP_UNIX_OFFSET = 2_208_988_800
RTP_CLOCK = 90_000
FRAME_KEY_BYTES = 64  # bytes of a frame's first slice that identify it across servers
RTCP_SR = 200
NAL_SPS = 7
NAL_IDR = 5
STAP_A = 24
FU_A = 28
KEYFRAME_NALS = frozenset((NAL_IDR, NAL_SPS))
_U32 = struct.Struct(">I")
_SR = struct.Struct(">IIII")  # ssrc, NTP seconds, NTP fraction, RTP timestamp


class RtspFailure(Exception):
    """The server refused or broke the RTSP exchange."""


@dataclass(frozen=True, slots=True)
class FrameSeen:
    """One complete frame: its key, the server's wall time for it (if known), its arrival."""

    key: bytes
    taken_at: float | None
    arrived_at: float


@dataclass
class ClientMeasures:
    """What one client saw. The window counters only count between start/stop_window."""

    play_sent_at: float = 0.0
    first_packet_ms: float | None = None
    first_keyframe_ms: float | None = None  # PLAY -> first packet of a keyframe
    decodable_ms: float | None = None  # PLAY -> last packet of that keyframe (marker)
    counting: bool = False
    window_started: float = 0.0
    window_s: float = 0.0
    packets: int = 0
    octets: int = 0
    frames: int = 0
    gaps: int = 0
    lost_packets: int = 0
    lost_frames: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    frames_seen: list[FrameSeen] = field(default_factory=list)
    sender_reports: int = 0


def _frame_start_info(buf: bytearray, off: int, end: int) -> tuple[bool, bytes | None]:
    """(a keyframe NAL starts here, key of the first slice starting here) for one payload."""
    if off >= end:
        return False, None
    nal = buf[off] & 0x1F
    if nal < STAP_A:
        key = bytes(buf[off + 1 : min(end, off + 1 + FRAME_KEY_BYTES)]) if nal <= 5 else None
        return nal in KEYFRAME_NALS, key
    if nal == STAP_A:
        keyframe, key, pos = False, None, off + 1
        while pos + 3 <= end:
            size = buf[pos] << 8 | buf[pos + 1]
            inner = buf[pos + 2] & 0x1F
            keyframe = keyframe or inner in KEYFRAME_NALS
            if key is None and 1 <= inner <= 5:
                key = bytes(buf[pos + 3 : min(end, pos + 2 + size, pos + 3 + FRAME_KEY_BYTES)])
            pos += 2 + size
        return keyframe, key
    if nal == FU_A and off + 1 < end:
        header = buf[off + 1]
        if header & 0x80:  # the start of a fragmented NAL unit
            inner = header & 0x1F
            key = bytes(buf[off + 2 : min(end, off + 2 + FRAME_KEY_BYTES)]) if inner <= 5 else None
            return inner in KEYFRAME_NALS, key
    return False, None


class RtspClient(asyncio.Protocol):
    """One RTSP/TCP connection playing one H.264 stream (`await play()`, then `close()`)."""

    def __init__(
        self,
        url: str,
        *,
        fps: int = 25,
        record_frames: bool = False,
        record_always: bool = False,
        keepalive_s: float = 20.0,
    ) -> None:
        self.url, user, password = split_credentials(url)
        self._auth = Credentials(user, password)
        self._frame_ticks = RTP_CLOCK // fps
        self._record_frames = record_frames
        self._record_always = record_always  # frames outside the window too (a reference)
        self._keepalive_s = keepalive_s
        self.m = ClientMeasures()
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._cseq = 0
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._closed: asyncio.Future[None] | None = None
        self._session: str | None = None
        self._rtp_channel = 0
        self._rtcp_channel = 1
        # RTP state
        self._next_seq: int | None = None
        self._last_ts = 0
        self._last_marker = True
        self._frame_start = True  # the next packet begins a frame
        self._key: bytes | None = None
        self._keyframe_in_progress = False
        self._sr_wall: float | None = None
        self._sr_rtp = 0
        self._keepalive: asyncio.Task[None] | None = None
        self.error: str | None = None

    # -- connection -----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RtspFailure(f"connection lost: {exc}"))
        self._pending.clear()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if self.error is None and self.m.counting:
            self.error = f"connection lost while playing: {exc}"

    async def play(self, timeout: float = 15.0) -> None:
        """Connect, DESCRIBE, SETUP and PLAY; media flows into the measures from then on."""
        await asyncio.wait_for(self._play(), timeout)

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        parts = urlsplit(self.url)
        self._closed = loop.create_future()
        await loop.create_connection(lambda: self, parts.hostname, parts.port or 554)
        describe = await self._request("DESCRIBE", self.url, [("Accept", "application/sdp")])
        base = describe.header("content-base") or self.url
        control = next(
            (
                line[len("a=control:") :].strip()
                for line in describe.body.decode(errors="replace").splitlines()
                if line.startswith("a=control:") and line.strip() != "a=control:*"
            ),
            "",
        )
        if control.startswith("rtsp://"):
            track = control
        else:
            track = base.rstrip("/") + "/" + control if control else base
        setup = await self._request(
            "SETUP", track, [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")]
        )
        session = setup.header("session")
        if not session:
            raise RtspFailure("SETUP without a Session")
        self._session = session.split(";")[0].strip()
        transport = setup.header("transport") or ""
        for part in transport.split(";"):
            if part.startswith("interleaved="):
                rtp, _, rtcp = part[len("interleaved=") :].partition("-")
                self._rtp_channel, self._rtcp_channel = int(rtp), int(rtcp or int(rtp) + 1)
        self.m.play_sent_at = time.time()
        await self._request("PLAY", self.url, [("Range", "npt=0.000-")])
        self._keepalive = loop.create_task(self._keep_alive())

    async def _keep_alive(self) -> None:
        # Any request on the connection keeps the session (and the connection) alive.
        while True:
            await asyncio.sleep(self._keepalive_s)
            self._send_request("OPTIONS", self.url, [])

    async def close(self, timeout: float = 3.0) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._request("TEARDOWN", self.url, []), timeout)
        transport.close()
        if self._closed is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._closed), timeout)

    # -- requests -------------------------------------------------------------------------------
    def _send_request(
        self, method: str, uri: str, headers: list[tuple[str, str]]
    ) -> asyncio.Future[Response]:
        assert self._transport is not None
        self._cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self._cseq}", "User-Agent: vigil-bench"]
        if self._session:
            lines.append(f"Session: {self._session}")
        authorization = self._auth.header(method, uri)
        if authorization:
            lines.append(f"Authorization: {authorization}")
        lines += [f"{name}: {value}" for name, value in headers]
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[self._cseq] = future
        self._transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return future

    async def _request(self, method: str, uri: str, headers: list[tuple[str, str]]) -> Response:
        response = await self._send_request(method, uri, headers)
        if response.status == 401 and self._auth.take(response.all("www-authenticate")):
            response = await self._send_request(method, uri, headers)
        if response.status != 200:
            raise RtspFailure(f"{method} answered {response.status}")
        return response

    def _on_response(self, response: Response) -> None:
        cseq = response.header("cseq")
        future = self._pending.pop(int(cseq), None) if cseq and cseq.isdigit() else None
        if future is not None and not future.done():
            future.set_result(response)

    # -- windows --------------------------------------------------------------------------------
    def start_window(self) -> None:
        m = self.m
        m.packets = m.octets = m.frames = m.gaps = m.lost_packets = m.lost_frames = 0
        m.latencies_ms = []
        if not self._record_always:
            m.frames_seen = []
        m.window_started = time.time()
        m.counting = True

    def stop_window(self) -> None:
        self.m.counting = False
        self.m.window_s = time.time() - self.m.window_started

    # -- the stream -----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self._buf
        buf += data
        pos, n = 0, len(buf)
        rtp_channel, rtcp_channel = self._rtp_channel, self._rtcp_channel
        while n - pos >= 4:
            if buf[pos] != 0x24:  # not "$": an RTSP message
                used = self._parse_message(buf, pos, n)
                if used == 0:
                    break
                pos += used
                continue
            end = pos + 4 + (buf[pos + 2] << 8 | buf[pos + 3])
            if end > n:
                break
            channel = buf[pos + 1]
            if channel == rtp_channel:
                if end - pos >= 16:
                    self._on_rtp(buf, pos + 4, end, now)
            elif channel == rtcp_channel:
                self._on_rtcp(bytes(buf[pos + 4 : end]))
            pos = end
        if pos:
            del buf[:pos]

    def _parse_message(self, buf: bytearray, pos: int, n: int) -> int:
        """Bytes used by one RTSP message at `pos`, or 0 if it is not complete yet."""
        used, response = parse_message(buf, pos, n)
        if response is not None:
            self._on_response(response)
        return used

    def _on_rtp(self, buf: bytearray, p: int, end: int, now: float) -> None:
        m = self.m
        second = buf[p + 1]
        seq = buf[p + 2] << 8 | buf[p + 3]
        ts = _U32.unpack_from(buf, p + 4)[0]
        marker = second & 0x80
        expected = self._next_seq
        frame_start = self._frame_start
        if expected is not None and seq != expected:
            missing = (seq - expected) & 0xFFFF
            if missing < 0x8000 and m.counting:
                m.gaps += 1
                m.lost_packets += missing
                m.lost_frames += self._frames_damaged(ts, buf, p, end)
            frame_start = ts != self._last_ts  # resynchronise on the new frame
        self._next_seq = (seq + 1) & 0xFFFF
        if frame_start or self._key is None or m.decodable_ms is None:
            first = buf[p]
            off = p + 12 + 4 * (first & 0x0F)
            if first & 0x10 and off + 4 <= end:  # header extension
                off += 4 + 4 * (buf[off + 2] << 8 | buf[off + 3])
            keyframe, key = _frame_start_info(buf, off, end)
            if key is not None and self._key is None:
                self._key = key
            if keyframe and m.decodable_ms is None and not self._keyframe_in_progress:
                self._keyframe_in_progress = True
                m.first_keyframe_ms = (now - m.play_sent_at) * 1000
            if m.first_packet_ms is None:
                m.first_packet_ms = (now - m.play_sent_at) * 1000
        if m.counting:
            m.packets += 1
            m.octets += end - p
        if marker:
            if self._keyframe_in_progress:
                self._keyframe_in_progress = False
                m.decodable_ms = (now - m.play_sent_at) * 1000
            taken = self._wall_of(ts)
            if m.counting:
                m.frames += 1
                if taken is not None:
                    m.latencies_ms.append((now - taken) * 1000)
            if self._record_frames and (m.counting or self._record_always) and self._key:
                m.frames_seen.append(FrameSeen(self._key, taken, now))
            self._key = None
        self._frame_start = bool(marker)
        self._last_ts = ts
        self._last_marker = bool(marker)

    def _frames_damaged(self, ts: int, buf: bytearray, p: int, end: int) -> int:
        """Frames a gap before this packet damaged: whole frames between, the previous one if
        its end is missing, this one if its start may be missing."""
        if ts == self._last_ts:
            return 1
        step = ((ts - self._last_ts) & 0xFFFFFFFF) / self._frame_ticks
        between = max(0, round(step) - 1) if step < 1e5 else 0
        first = buf[p]
        off = p + 12 + 4 * (first & 0x0F)
        nal = buf[off] & 0x1F if off < end else 0
        starts_frame = nal in (STAP_A, NAL_SPS, 9) or (
            nal == FU_A and off + 1 < end and buf[off + 1] & 0x80
        )
        return max(1, between + (0 if self._last_marker else 1) + (0 if starts_frame else 1))

    def _on_rtcp(self, data: bytes) -> None:
        pos = 0
        while pos + 8 <= len(data):
            packet_type = data[pos + 1]
            size = ((data[pos + 2] << 8 | data[pos + 3]) + 1) * 4
            if packet_type == RTCP_SR and pos + 24 <= len(data):
                _, seconds, fraction, rtp = _SR.unpack_from(data, pos + 4)
                self._sr_wall = seconds - NTP_UNIX_OFFSET + fraction / 2**32
                self._sr_rtp = rtp
                self.m.sender_reports += 1
            pos += size

    def _wall_of(self, ts: int) -> float | None:
        """The server's wall-clock time for an RTP timestamp, from its last sender report."""
        if self._sr_wall is None:
            return None
        delta = ((ts - self._sr_rtp + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        return self._sr_wall + delta / RTP_CLOCK
