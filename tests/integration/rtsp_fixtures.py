"""The in-process RTSP rig and clients shared by the RTSP server tests.

`Rig` runs the server on its own event loop thread, fed by a real StreamHub with the real H.264
packetizer, fed by the real channel: the simulated sensor (`testsrc2` at real time) and the
channel's libx264 encoder. Auth is the device's own adapter over real Accounts, a real
PasswordVault and a real Lockout, so the Digest exchange each client does is checked exactly as
on the device. `RawClient` speaks RTSP over a plain socket, for what real clients never send.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import re
import secrets
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

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


class LoopThread:
    """An event loop on a thread of its own, for servers the test talks to from outside."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, function: Callable[[], T]) -> T:
        async def call() -> T:
            return function()

        return self.run(call())

    def close_loop(self) -> None:
        """Stop and close the loop; no task may be left on it."""

        async def leftovers() -> set[asyncio.Task[Any]]:
            return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

        remaining = self.run(leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        assert not remaining, f"tasks left after stop: {remaining}"


class Rig(LoopThread):
    def __init__(self, data: Path) -> None:
        super().__init__("rtsp-test-loop")
        self.data = data
        self.servers: list[RtspServer] = []
        self.locks: list[tuple[str, int]] = []
        self.hub = self.run(self._make_hub())
        self.channel = VideoChannel(1, SimSensor(BoardSensor()), self.hub.publish, self.loop)
        self.channel.configure([STREAM])
        self.run(self.channel.start())
        self.accounts, self.auth = self.run(self._make_auth(data / "device", activated=True))
        self.limits = Limits()
        self.main = self.start_server(limits=self.limits)

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
        self.close_loop()


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
    """gst-launch decoding 50 frames of `source` with rtspsrc (its progress on stdout)."""
    return run(
        "gst-launch-1.0", "rtspsrc", f"location={source}", "user-id=admin",
        f"user-pw={password}", f"protocols={protocol}", "!", "decodebin", "!", "fakesink",
        "num-buffers=50",
    )  # fmt: skip


# GStreamer 1.22's rtspsrc, stopping after its frames, flushes its control connection from one
# thread while another sends PAUSE: now and then the PAUSE fails with "Received end-of-file"
# although the server answers it (its debug log shows "connection flush busy PAUSE" just
# before; TEARDOWN then goes through). That client-side race is not a failure to play.
_SHUTDOWN_RACE = re.compile(r"gst_rtspsrc_(pause|try_send) \(\):.*\n.*Received end-of-file")


def gstreamer_played(result: subprocess.CompletedProcess[str]) -> bool:
    """The pipeline decoded its frames (EOS) and stopped cleanly, or only with that race."""
    if "Got EOS from element" not in result.stdout:
        return False
    errors = result.stderr.count("ERROR: from element")
    return result.returncode == 0 or errors == len(_SHUTDOWN_RACE.findall(result.stderr)) > 0


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
