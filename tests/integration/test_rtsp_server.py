"""The RTSP server with real clients over loopback: ffprobe, ffmpeg, GStreamer, raw sockets.

The server runs in-process on its own event loop thread, fed by a real StreamHub with the
real H.264 packetizer, fed by the real channel: the simulated sensor (`testsrc2` at real time)
and the channel's libx264 encoder. Auth is
the device's own adapter over real Accounts, a real PasswordVault and a real Lockout, so the
Digest exchange each client does is checked exactly as on the device.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import secrets
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from vigil.board.description import BoardSensor
from vigil.config.model import Config, RtspSettings, SecuritySettings, StreamSettings
from vigil.config.store import ConfigStore
from vigil.media.channel import VideoChannel
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer
from vigil.media.rtsp import AccountsRtspAuth, RtspServer, SessionInfo
from vigil.media.rtsp.auth import RtspDigest
from vigil.media.source import SimSensor
from vigil.security.accounts import Accounts
from vigil.security.lockout import Lockout
from vigil.security.passwords import PasswordVault

REALM = "Vigil"
PASSWORD = "Rtsp-Test-2026"
WATCHER_PASSWORD = "Look-Only-2026"
WIDTH, HEIGHT, FPS = 640, 360, 25
MAIN = "/Streaming/Channels/101"
T = TypeVar("T")


# -- the media source: the simulated sensor and the channel's libx264 encoder ----------------
# A keyframe every second; the best quality so there are enough bytes for a stalled reader to
# fill its buffers (and be skipped) within a few seconds.
STREAM = StreamSettings(
    id=101, width=WIDTH, height=HEIGHT, fps=FPS, gop=FPS, quality=100, max_bitrate_kbps=8192
)


# -- the rig: event loop thread, hub, auth, servers -----------------------------------------
@dataclasses.dataclass
class Limits:
    """A mutable holder the servers read their RtspSettings from."""

    max_clients: int = 20

    def __call__(self) -> RtspSettings:
        return RtspSettings(max_clients_per_stream=self.max_clients)


class Rig:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="rtsp-test-loop")
        self.thread.start()
        self.servers: list[RtspServer] = []
        self.locks: list[tuple[str, int]] = []
        self.hub = self.run(self._make_hub())
        self.channel = VideoChannel(1, SimSensor(BoardSensor()), self.hub.publish, self.loop)
        self.channel.configure([STREAM])
        self.run(self.channel.start())
        self.accounts, self.auth = self.run(self._make_auth(data / "device", activated=True))
        self.limits = Limits()
        self.main = self.start_server(limits=self.limits)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, function: Callable[[], T]) -> T:
        async def call() -> T:
            return function()

        return self.run(call())

    async def _make_hub(self) -> StreamHub:
        # A short queue (one second) so a stalled client is skipped quickly in the test.
        return StreamHub(101, make_packetizer("H264"), queue_units=FPS)

    async def _make_auth(
        self, folder: Path, *, activated: bool, lockout_attempts: int = 20
    ) -> tuple[Accounts, AccountsRtspAuth]:
        security = SecuritySettings(lockout_attempts=lockout_attempts)
        store = ConfigStore(folder / "config.toml", Config(security=security))
        store.load()
        vault = PasswordVault(folder / "secrets" / "passwords.json", REALM)
        vault.load()
        accounts = Accounts(store, vault)
        if activated:
            await accounts.activate(PASSWORD)
            await accounts.add("watcher", "Viewer", WATCHER_PASSWORD, ["playBack"])

        def lookup(user: str, algorithm: str) -> str | None:
            return vault.ha1(user, algorithm) if accounts.user(user) else None

        lockout = Lockout(security, lambda address, minutes: self.locks.append((address, minutes)))
        auth = AccountsRtspAuth(
            RtspDigest(REALM, lookup), accounts, lockout, lambda: store.current.security
        )
        return accounts, auth

    def make_auth(self, name: str, **kwargs: Any) -> AccountsRtspAuth:
        return self.run(self._make_auth(self.data / name, **kwargs))[1]

    def start_server(
        self, *, limits: Callable[[], RtspSettings] | None = None, **kwargs: Any
    ) -> RtspServer:
        async def start() -> RtspServer:
            server = RtspServer(
                hubs=lambda stream_id: self.hub if stream_id == 101 else None,
                auth=kwargs.pop("auth", self.auth),
                settings=limits or Limits(),
                bind="127.0.0.1",
                port=0,
                **kwargs,
            )
            await server.start()
            return server

        server = self.run(start())
        self.servers.append(server)
        return server

    def stop_server(self, server: RtspServer) -> None:
        self.run(server.stop())
        self.servers.remove(server)

    def sessions(self, server: RtspServer | None = None) -> list[SessionInfo]:
        return self.call((server or self.main).sessions)

    def close(self) -> None:
        for server in list(self.servers):
            self.stop_server(server)
        self.run(self.channel.stop())

        async def leftovers() -> set[asyncio.Task[Any]]:
            return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

        remaining = self.run(leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        assert not remaining, f"tasks left after stop: {remaining}"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(tmp_path_factory.mktemp("rtsp"))
    try:
        deadline = time.monotonic() + 20
        while not rig.call(lambda: rig.hub.last_unit is not None):
            assert time.monotonic() < deadline, "the encoder produced nothing"
            time.sleep(0.1)
        yield rig
    finally:
        rig.close()


def url(server: RtspServer, path: str = MAIN, user: str = "admin", password: str = PASSWORD) -> str:
    credentials = f"{user}:{password}@" if user else ""
    return f"rtsp://{credentials}127.0.0.1:{server.port}{path}"


def run(*command: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def ffprobe(source: str, transport: str = "tcp") -> subprocess.CompletedProcess[str]:
    return run(
        "ffprobe", "-v", "error", "-rtsp_transport", transport, "-select_streams", "v:0",
        "-show_entries", "stream=codec_name,width,height", "-of", "json", source,
    )  # fmt: skip


def gstreamer(
    source: str, protocol: str, password: str = PASSWORD
) -> subprocess.CompletedProcess[str]:
    return run(
        "gst-launch-1.0", "-q", "rtspsrc", f"location={source}", "user-id=admin",
        f"user-pw={password}", f"protocols={protocol}", "!", "decodebin", "!", "fakesink",
        "num-buffers=50",
    )  # fmt: skip


# -- a raw RTSP client: for what the real clients never send ----------------------------------
@dataclasses.dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class RawClient:
    """Speaks RTSP over a plain socket; Digest MD5 with qop=auth computed here with hashlib."""

    def __init__(self, server: RtspServer, *, rcvbuf: int | None = None, timeout: float = 10):
        self.port = server.port
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", self.port))
        self.buffer = b""
        self.cseq = 0
        self.nonce: str | None = None
        self.password = PASSWORD
        self.opaque = ""
        self.nc = 0
        self.frames: list[tuple[int, bytes]] = []  # interleaved frames seen while reading

    def url(self, path: str = MAIN) -> str:
        return f"rtsp://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _authorization(self, method: str, uri: str, user: str, password: str) -> str:
        self.nc += 1
        nc, cnonce = f"{self.nc:08x}", secrets.token_hex(8)
        ha1, ha2 = _md5(f"{user}:{REALM}:{password}"), _md5(f"{method}:{uri}")
        response = _md5(f"{ha1}:{self.nonce}:{nc}:{cnonce}:auth:{ha2}")
        return (
            f'Digest username="{user}", realm="{REALM}", nonce="{self.nonce}", uri="{uri}", '
            f'response="{response}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}", '
            f'opaque="{self.opaque}"'
        )

    def request(
        self,
        method: str,
        uri: str | None = None,
        headers: tuple[str, ...] = (),
        *,
        user: str = "admin",
        password: str | None = None,
        auth: bool = True,
    ) -> Reply:
        uri = uri or self.url()
        password = password or self.password
        for _ in range(2):
            self.cseq += 1
            lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self.cseq}", *headers]
            if auth and self.nonce:
                lines.append("Authorization: " + self._authorization(method, uri, user, password))
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            reply = self.read_reply()
            assert reply.get("CSeq") == str(self.cseq)
            md5 = [c for c in reply.get_all("WWW-Authenticate") if "algorithm=MD5" in c]
            if reply.status != 401 or not auth or not md5 or self.nonce:
                return reply
            params = dict(
                part.strip().split("=", 1) for part in md5[0][len("Digest ") :].split(",")
            )
            self.nonce, self.opaque, self.nc = (
                params["nonce"].strip('"'),
                params["opaque"].strip('"'),
                0,
            )
        return reply

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by the server")
        self.buffer += data

    def read_reply(self) -> Reply:
        while True:
            while len(self.buffer) < 4:
                self._fill()
            if self.buffer[:1] == b"$":
                length = struct.unpack(">H", self.buffer[2:4])[0]
                while len(self.buffer) < 4 + length:
                    self._fill()
                self.frames.append((self.buffer[1], self.buffer[4 : 4 + length]))
                self.buffer = self.buffer[4 + length :]
                continue
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                self._fill()
                continue
            head, rest = self.buffer[:end].decode(), self.buffer[end + 4 :]
            lines = head.split("\r\n")
            headers = [tuple(p.strip() for p in line.split(":", 1)) for line in lines[1:]]
            length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
            while len(rest) < length:
                self.buffer = rest
                self._fill()
                rest = self.buffer
            self.buffer = rest[length:]
            status = int(lines[0].split(" ")[1])
            return Reply(status, headers, rest[:length])  # type: ignore[arg-type]

    def read_frames(self, seconds: float) -> list[tuple[int, bytes]]:
        """The interleaved frames that arrive within `seconds` (the socket is kept drained)."""
        frames: list[tuple[int, bytes]] = []
        end = time.monotonic() + seconds
        self.sock.settimeout(0.05)
        while time.monotonic() < end:
            with contextlib.suppress(TimeoutError):
                self._fill()
            while len(self.buffer) >= 4:
                length = struct.unpack(">H", self.buffer[2:4])[0]
                if len(self.buffer) < 4 + length:
                    break
                frames.append((self.buffer[1], self.buffer[4 : 4 + length]))
                self.buffer = self.buffer[4 + length :]
        return frames

    def raw_reply(self, data: bytes) -> Reply | None:
        """Send bytes as they are; the reply, or None if the server just closed."""
        try:
            self.sock.sendall(data)
            return self.read_reply()
        except (EOFError, ConnectionError):
            return None

    def closed_by_server(self, within: float) -> bool:
        self.sock.settimeout(within)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def setup(
        self, transport: str = "RTP/AVP/TCP;unicast;interleaved=0-1", path: str = MAIN
    ) -> Reply:
        return self.request(
            "SETUP", self.url(path.rstrip("/") + "/trackID=1"), (f"Transport: {transport}",)
        )

    def play(self, session: str) -> Reply:
        return self.request(
            "PLAY", self.url(MAIN + "/"), (f"Session: {session}", "Range: npt=0.000-")
        )

    def start_playing(self, transport: str = "RTP/AVP/TCP;unicast;interleaved=0-1") -> str:
        assert self.request("DESCRIBE", headers=("Accept: application/sdp",)).status == 200
        reply = self.setup(transport)
        assert reply.status == 200, reply
        session = reply.get("Session").split(";")[0]  # type: ignore[union-attr]
        reply = self.play(session)
        assert reply.status == 200, reply
        return session


RECEIVER_REPORT = struct.pack(">BBHI", 0x80, 201, 1, 0x12345678)  # an RTCP RR, no blocks
NTP_UNIX_OFFSET = 2_208_988_800


def check_sender_report(packet: bytes, ssrc: int) -> None:
    """An RTCP SR (RFC 3550 §6.4.1) of the stream, carrying the wall clock of now."""
    _, packet_type, _, sender, seconds, fraction = struct.unpack_from(">BBHIII", packet)
    assert packet_type == 200 and sender == ssrc
    assert abs(seconds + fraction / 2**32 - NTP_UNIX_OFFSET - time.time()) < 10


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


# -- real clients -----------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ffprobe_reports_codec_and_size(rig: Rig, transport: str) -> None:
    result = ffprobe(url(rig.main), transport)
    assert result.returncode == 0, result.stderr
    (stream,) = json.loads(result.stdout)["streams"]
    assert stream == {"codec_name": "h264", "width": WIDTH, "height": HEIGHT}


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ffmpeg_decodes_frames(rig: Rig, transport: str) -> None:
    result = run(
        "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport, "-i", url(rig.main),
        "-frames:v", "50", "-f", "null", "-", "-progress", "pipe:1", "-nostats",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = [int(line[6:]) for line in result.stdout.splitlines() if line.startswith("frame=")]
    assert frames[-1] == 50
    assert "error" not in result.stderr.lower(), result.stderr
    # ffmpeg tears down at the end: nothing lingers on the server.
    assert wait_until(lambda: not rig.sessions(), 5)


def test_ffmpeg_keeps_its_session_alive(rig: Rig) -> None:
    # Session timeout 2 s: ffmpeg must send keep-alives (it reads `Session: ...;timeout=2`).
    server = rig.start_server(session_timeout=2.0)
    try:
        result = run(
            "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "udp", "-i", url(server),
            "-t", "5", "-f", "null", "-", "-progress", "pipe:1", "-nostats",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        frames = [int(ln[6:]) for ln in result.stdout.splitlines() if ln.startswith("frame=")]
        assert frames[-1] >= 4 * FPS
    finally:
        rig.stop_server(server)


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_gstreamer_plays(rig: Rig, protocol: str) -> None:
    result = gstreamer(url(rig.main, user=""), protocol)
    assert result.returncode == 0, result.stdout + result.stderr


def test_isapi_url_and_case_insensitive_paths(rig: Rig) -> None:
    for path in ("/ISAPI/Streaming/channels/101", "/streaming/CHANNELS/101?transportmode=unicast"):
        result = ffprobe(url(rig.main, path))
        assert result.returncode == 0, result.stderr


def test_wrong_password_gets_401_and_no_media(rig: Rig) -> None:
    result = ffprobe(url(rig.main, password="Wrong-Pass-1"))
    assert result.returncode != 0
    assert "401" in result.stderr
    failed = gstreamer(url(rig.main, user=""), "tcp", password="Wrong-Pass-1")
    assert failed.returncode != 0
    assert "Unauthorized" in failed.stdout + failed.stderr
    with RawClient(rig.main) as client:
        reply = client.request("DESCRIBE", auth=False)
        assert reply.status == 401
        challenges = reply.get_all("WWW-Authenticate")
        # One header per algorithm, MD5 last: ffmpeg keeps only the last one.
        assert [c.split("algorithm=")[1].split(",")[0] for c in challenges] == ["SHA-256", "MD5"]
        assert all('qop="auth"' in c and f'realm="{REALM}"' in c for c in challenges)
        client.password = "Wrong-Pass-2"
        assert client.request("DESCRIBE").status == 401
        assert client.setup().status == 401
        assert client.request("PLAY", headers=("Session: 0123456789abcdef",)).status == 401
        assert not client.frames
    assert not rig.sessions()


def test_user_without_preview_is_forbidden(rig: Rig) -> None:
    with RawClient(rig.main) as client:
        reply = client.request("DESCRIBE", user="watcher", password=WATCHER_PASSWORD)
        assert reply.status == 403
    result = ffprobe(url(rig.main, user="watcher", password=WATCHER_PASSWORD))
    assert result.returncode != 0 and "403" in result.stderr


def test_not_activated_answers_401_without_challenge(rig: Rig) -> None:
    server = rig.start_server(auth=rig.make_auth("fresh", activated=False))
    try:
        with RawClient(server) as client:
            reply = client.request("DESCRIBE")
            assert reply.status == 401 and not reply.get_all("WWW-Authenticate")
            assert client.request("OPTIONS", "*", auth=False).status == 200
    finally:
        rig.stop_server(server)


def test_wrong_passwords_lock_the_address(rig: Rig) -> None:
    server = rig.start_server(auth=rig.make_auth("locking", activated=True, lockout_attempts=3))
    try:
        for _ in range(3):
            assert ffprobe(url(server, password="Wrong-Pass-3")).returncode != 0
        assert rig.locks[-1] == ("127.0.0.1", 30)
        result = ffprobe(url(server))
        assert result.returncode != 0 and "401" in result.stderr
        with RawClient(server) as client:
            reply = client.request("DESCRIBE", auth=False)
            assert reply.status == 401 and not reply.get_all("WWW-Authenticate")
    finally:
        rig.stop_server(server)


# -- fan-out and slow clients -------------------------------------------------------------------
def progress(proc: subprocess.Popen[str], samples: list[tuple[float, int]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("frame="):
            samples.append((time.monotonic(), int(line[6:])))


def test_stalled_reader_does_not_delay_others(rig: Rig) -> None:
    stalled = RawClient(rig.main, rcvbuf=4096)
    try:
        session = stalled.start_playing()
        # From here on the stalled client never reads again.
        samples: list[tuple[float, int]] = []
        proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", url(rig.main),
             "-frames:v", "125", "-f", "null", "-", "-progress", "pipe:1", "-stats_period", "0.25",
             "-nostats"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        reader = threading.Thread(target=progress, args=(proc, samples))
        reader.start()
        try:
            assert proc.wait(30) == 0
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            reader.join(5)
        assert samples[-1][1] == 125
        # After the cached GOP's burst, frames arrive at the encoder's rate, not stalled.
        steady = [(t, n) for t, n in samples if n >= 2 * FPS]
        (t0, n0), (t1, n1) = steady[0], steady[-1]
        rate = (n1 - n0) / (t1 - t0)
        assert rate > FPS * 0.6, f"second client got {rate:.1f} fps"
        # Meanwhile the stalled subscriber fell behind and was skipped to keyframes.
        assert wait_until(
            lambda: any(s.session_id == session and s.skips > 0 for s in rig.sessions()), 20
        ), rig.sessions()
    finally:
        stalled.close()
    # A TCP client that leaves ends its session at once (no timeout wait).
    assert wait_until(lambda: not any(s.session_id == session for s in rig.sessions()), 3)


# -- session liveness ----------------------------------------------------------------------------
def udp_pair() -> tuple[socket.socket, socket.socket]:
    for _ in range(50):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        port = rtp.getsockname()[1]
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind(("127.0.0.1", port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        return rtp, rtcp
    raise RuntimeError("no UDP port pair")


def drain(sock: socket.socket, seconds: float) -> None:
    """Read (and drop) whatever arrives for `seconds`, so the server never sees a stall."""
    end = time.monotonic() + seconds
    sock.settimeout(0.05)
    while time.monotonic() < end:
        with contextlib.suppress(TimeoutError):
            sock.recv(65536)


def test_rtcp_keeps_sessions_alive_and_silence_ends_them(rig: Rig) -> None:
    timeout = 1.5
    server = rig.start_server(session_timeout=timeout, idle_timeout=30)
    server_rtcp = ("127.0.0.1", server.udp_ports[1])  # type: ignore[index]
    rtp, rtcp = udp_pair()
    udp_client, tcp_client = RawClient(server), RawClient(server)
    interleaved_report = struct.pack(">BBH", 0x24, 1, len(RECEIVER_REPORT)) + RECEIVER_REPORT
    try:
        port = rtp.getsockname()[1]
        udp_session = udp_client.start_playing(f"RTP/AVP;unicast;client_port={port}-{port + 1}")
        rtcp.sendto(RECEIVER_REPORT, server_rtcp)
        tcp_session = tcp_client.start_playing()
        rtp.settimeout(5)
        assert rtp.recv(2048)[0] >> 6 == 2  # RTP version 2 arrives on the client port
        # Keep both alive with RTCP receiver reports only, for twice the timeout.
        frames: list[tuple[int, bytes]] = []
        end = time.monotonic() + 2 * timeout
        while time.monotonic() < end:
            rtcp.sendto(RECEIVER_REPORT, server_rtcp)
            tcp_client.sock.sendall(interleaved_report)
            frames += tcp_client.read_frames(0.25)
        alive = {s.session_id for s in rig.sessions(server)}
        assert {udp_session, tcp_session} <= alive
        # Both got sender reports: on the RTCP channel, and on the client's RTCP port.
        ssrc = rig.call(lambda: rig.hub.packetizer.ssrc)
        reports = [data for channel, data in frames if channel == 1]
        assert reports and {channel for channel, _ in frames} == {0, 1}
        check_sender_report(reports[0], ssrc)
        rtcp.settimeout(5)
        check_sender_report(rtcp.recv(2048), ssrc)
        # Then silence: both end, although the TCP connection stays open (and is read).
        end = time.monotonic() + 4 * timeout + 2
        while time.monotonic() < end and rig.sessions(server):
            drain(tcp_client.sock, 0.1)
        assert not rig.sessions(server)
        # No more media reaches the UDP client.
        drain(rtp, 0.5)
        rtp.settimeout(1.0)
        with pytest.raises(TimeoutError):
            rtp.recv(2048)
    finally:
        for closable in (rtp, rtcp, udp_client, tcp_client):
            closable.close()
        rig.stop_server(server)


# -- limits --------------------------------------------------------------------------------------
def test_client_limit_answers_453(rig: Rig) -> None:
    limits = Limits(max_clients=2)
    server = rig.start_server(limits=limits)
    try:
        with RawClient(server) as a, RawClient(server) as b, RawClient(server) as c:
            session_a = a.start_playing()
            reply_b = b.setup()
            assert reply_b.status == 200
            assert c.setup().status == 453
            limits.max_clients = 1  # lowered while b is set up but not yet playing
            session_b = reply_b.get("Session").split(";")[0]  # type: ignore[union-attr]
            assert b.play(session_b).status == 453
            assert a.request("TEARDOWN", headers=(f"Session: {session_a}",)).status == 200
            assert b.play(session_b).status == 200
            assert c.setup().status == 453
            assert len(rig.sessions(server)) == 1
    finally:
        rig.stop_server(server)


def test_connection_limit_and_idle_connections(rig: Rig) -> None:
    server = rig.start_server(max_connections=2, idle_timeout=1.0)
    try:
        first, second = RawClient(server), RawClient(server)
        for client in (first, second):  # both are being served before the third comes
            assert client.request("OPTIONS", "*", auth=False).status == 200
        third = RawClient(server)
        assert third.closed_by_server(within=2)  # over the limit: dropped at once
        # Connected but silent (half-open, slowloris): closed after the idle timeout.
        assert first.closed_by_server(within=5) and second.closed_by_server(within=5)

        def slot_free() -> bool:  # and the slots are free again
            with RawClient(server) as fourth:
                return fourth.raw_reply(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n") is not None

        assert wait_until(slot_free, 3)
        for client in (first, second, third):
            client.close()
    finally:
        rig.stop_server(server)


# -- bad input while another client keeps playing ---------------------------------------------
def test_bad_input_is_refused_while_another_client_plays(rig: Rig) -> None:
    samples: list[tuple[float, int]] = []
    player = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", url(rig.main),
         "-t", "60", "-f", "null", "-", "-progress", "pipe:1", "-stats_period", "0.25",
         "-nostats"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    reader = threading.Thread(target=progress, args=(player, samples))
    reader.start()
    try:
        assert wait_until(lambda: bool(samples) and samples[-1][1] > FPS, 15)
        before = rig.sessions()
        assert len(before) == 1
        check_bad_input(rig)
        # The player is still receiving frames at its normal pace.
        frames = samples[-1][1]
        assert wait_until(lambda: samples[-1][1] >= frames + FPS, 5)
        assert player.poll() is None, player.stderr.read() if player.stderr else ""
        assert {s.session_id for s in rig.sessions()} == {before[0].session_id}
    finally:
        player.kill()
        player.wait(10)
        reader.join(5)
    assert wait_until(lambda: not rig.sessions(), 5)


def check_bad_input(rig: Rig) -> None:
    server = rig.main

    def close_or_4xx(data: bytes) -> None:
        with RawClient(server) as client:
            reply = client.raw_reply(data)
            assert reply is None or 400 <= reply.status < 500, reply
            assert client.closed_by_server(within=5)

    close_or_4xx(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + secrets.token_bytes(200))
    close_or_4xx(b"hello world\r\n\r\n")
    close_or_4xx(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
    close_or_4xx(b"OPTIONS * RTSP/1.0\r\n" + b"X: 1\r\n" * 1000 + b"\r\n")
    close_or_4xx(b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 100000\r\n\r\n")

    with RawClient(server) as client:
        # Missing CSeq: 400, and the connection stays usable.
        reply = client.raw_reply(f"OPTIONS {client.url()} RTSP/1.0\r\n\r\n".encode())
        assert reply is not None and reply.status == 400 and reply.get("CSeq") is None
        reply = client.request("BREW", auth=False)
        assert reply.status == 501 and "DESCRIBE" in (reply.get("Public") or "")
        reply = client.request("RECORD")
        assert reply.status == 405 and "PLAY" in (reply.get("Allow") or "")
        assert client.request("OPTIONS", "*", ("Require: funky-feature",), auth=False).status == 551
        # Interleaved data from the client is read and dropped, never taken for a request.
        client.sock.sendall(
            b"$\x01\x00\x08" + RECEIVER_REPORT + b"$\x05\x00\x05OPTIO" + b"$\x00\x00\x00"
        )
        assert client.request("OPTIONS", "*", auth=False).status == 200
        # Resources that do not exist or are not live.
        assert client.request("DESCRIBE", client.url("/Streaming/Channels/999")).status == 404
        assert client.request("DESCRIBE", client.url("/Streaming/Channels/102")).status == 404
        playback = "/Streaming/tracks/101?starttime=20261121T101500Z&endtime=20261121T102000Z"
        assert client.request("DESCRIBE", client.url(playback)).status == 404
        assert client.request("DESCRIBE", client.url("/etc/passwd")).status == 404
        reply = client.request(
            "SETUP", client.url(MAIN + "/trackID=2"), ("Transport: RTP/AVP/TCP;interleaved=0-1",)
        )
        assert reply.status == 404
        assert client.request("SETUP", client.url(MAIN + "/trackID=1")).status == 461
        assert client.setup("RTP/AVP;multicast;port=5000-5001").status == 461
        assert client.setup("RTP/AVP;unicast").status == 461  # UDP without client ports
        assert client.play("0123456789abcdef").status == 454
        assert client.request("GET_PARAMETER", headers=("Session: nope",)).status == 454
        assert client.request("GET_PARAMETER").status == 200
        assert not client.frames
    # A session belongs to its connection: another connection cannot drive it.
    with RawClient(server) as owner, RawClient(server) as other:
        session = owner.setup().get("Session").split(";")[0]  # type: ignore[union-attr]
        assert other.play(session).status == 454
        assert other.request("TEARDOWN", headers=(f"Session: {session}",)).status == 454
        assert owner.request("TEARDOWN", headers=(f"Session: {session}",)).status == 200


# -- lifecycle -------------------------------------------------------------------------------------
def test_port_change_and_stop(rig: Rig) -> None:
    server = rig.start_server()
    old = server.port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        new = probe.getsockname()[1]
    with RawClient(server) as playing:
        session = playing.start_playing()
        rig.run(server.apply_port(new))
        assert server.port == new
        result = ffprobe(url(server))
        assert result.returncode == 0, result.stderr
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", old)):
            pass
        # The session made before the move carries on.
        assert any(s.session_id == session and s.state == "PLAYING" for s in rig.sessions(server))
        rig.stop_server(server)
        assert playing.closed_by_server(within=5)
    assert not rig.call(server.sessions)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", new)):
        pass
