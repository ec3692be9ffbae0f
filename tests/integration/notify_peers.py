"""Real peers for the notification tests, each on loopback in a thread of its own, so that both
asyncio tests and tests that drive a real vigild over HTTP can use them:

- `mail_server`: aiosmtpd with STARTTLS (required) or implicit TLS, and AUTH LOGIN/PLAIN;
- `ftp_server`: pyftpdlib, plain FTP or FTPS (TLS_FTPHandler: explicit TLS, protected data);
- `AlarmServer`: an aiohttp alarm server with none, basic or digest authentication (digest
  checked by Vigil's own RFC 7616 verifier), over HTTP or HTTPS;
- `silent_server`: accepts connections and never answers (a peer that hangs);
- `Camera`: JPEG snapshots of FFmpeg's test pattern, with the times they were taken.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import email.policy
import io
import socket
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import av
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

from tests.integration.rtsp_fixtures import LoopThread
from tests.vigild import free_port
from vigil.media.encoder import snapshot_jpeg
from vigil.security.credentials import Credentials
from vigil.security.digest import DigestAuth, Outcome
from vigil.security.keys import make_certificate
from vigil.security.passwords import ha1
from vigil.security.tls import server_context

MAIL_USER, MAIL_PASSWORD = "camera@example.test", "Smtp-Secret-7"
FTP_USER, FTP_PASSWORD = "uploader", "Ftp-Secret-7"
HOST_USER, HOST_PASSWORD = "alarmcenter", "Center-Secret-7"
ALARM_REALM = "AlarmCenter"
SNAPSHOT_SIZE = (320, 180)


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    cert, key = directory / "peer.crt", directory / "peer.key"
    if not cert.exists():
        make_certificate(cert, key, "localhost")
    return cert, key


def wait_until(check: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# -- pictures -----------------------------------------------------------------------------------
class Camera:
    """What an action's `snapshot(channel)` is given: real JPEGs, each call's channel and time."""

    def __init__(self) -> None:
        with av.open("testsrc2=size=640x360:rate=25", format="lavfi") as source:
            frame = next(source.decode(video=0))
        self.jpeg = snapshot_jpeg(frame, *SNAPSHOT_SIZE, 80)
        self.calls: list[tuple[int, float]] = []
        self.error: Exception | None = None

    async def snapshot(self, channel: int) -> bytes:
        self.calls.append((channel, time.monotonic()))
        if self.error is not None:
            raise self.error
        return self.jpeg


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Decode a JPEG with FFmpeg: its width and height."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    with av.open(io.BytesIO(data), format="jpeg_pipe") as container:
        picture = next(container.decode(video=0))
        return picture.width, picture.height


# -- SMTP ---------------------------------------------------------------------------------------
@dataclass
class Delivery:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str


@dataclass
class Mailbox:
    deliveries: list[Delivery] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else ""
        tls = session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None
        self.deliveries.append(
            Delivery(envelope.mail_from, list(envelope.rcpt_tos), message, tls, login)
        )
        return "250 Message accepted for delivery"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    good = (
        isinstance(data, LoginPassword)
        and data.login.decode() == MAIL_USER
        and data.password.decode() == MAIL_PASSWORD
    )
    return AuthResult(success=good, handled=False, auth_data=data if good else None)


@dataclass
class MailServer:
    port: int
    mailbox: Mailbox

    @property
    def deliveries(self) -> list[Delivery]:
        return self.mailbox.deliveries


@contextlib.contextmanager
def mail_server(directory: Path, security: str) -> Iterator[MailServer]:
    """aiosmtpd with AUTH: "STARTTLS" (required before AUTH and MAIL) or "SSL" (implicit)."""
    context = server_context(*certificate(directory))
    mailbox = Mailbox()
    port = free_port()
    tls: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True}
        if security == "STARTTLS"
        else {"ssl_context": context, "auth_require_tls": False}  # the whole session is TLS
    )
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_required=True,
        **tls,
    )
    controller.start()
    try:
        yield MailServer(port, mailbox)
    finally:
        controller.stop()


def stored_credentials(directory: Path, passwords: dict[str, str]) -> Credentials:
    """A device's credentials store in `directory`, holding `passwords` (name -> password)."""
    store = Credentials(directory / "secrets" / "credentials.json")
    store.load()
    for name, password in passwords.items():
        store.set(name, password)
    return store


# -- FTP ----------------------------------------------------------------------------------------
@dataclass
class FtpPeer:
    port: int
    user_root: Path
    anonymous_root: Path
    received: list[Path]
    commands: list[str]


@contextlib.contextmanager
def ftp_server(directory: Path, tls: bool = False) -> Iterator[FtpPeer]:
    user_root, anonymous_root = directory / "ftp-user", directory / "ftp-anonymous"
    user_root.mkdir(parents=True, exist_ok=True)
    anonymous_root.mkdir(parents=True, exist_ok=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user(FTP_USER, FTP_PASSWORD, str(user_root), perm="elradfmw")
    with warnings.catch_warnings():  # write permissions for anonymous: what the test wants
        warnings.simplefilter("ignore", RuntimeWarning)
        authorizer.add_anonymous(str(anonymous_root), perm="elrmw")
    received: list[Path] = []
    commands: list[str] = []
    base = TLS_FTPHandler if tls else FTPHandler

    class Handler(base):  # type: ignore[misc, valid-type]
        def on_file_received(self, file: str) -> None:
            received.append(Path(file))

        def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
            commands.append(cmd)
            super().pre_process_command(line, cmd, arg)

    Handler.authorizer = authorizer
    if tls:
        cert, key = certificate(directory)
        Handler.certfile, Handler.keyfile = str(cert), str(key)
        Handler.tls_control_required = Handler.tls_data_required = True
    server = FTPServer(("127.0.0.1", 0), Handler)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=serve, name="ftp-server")
    thread.start()
    try:
        yield FtpPeer(server.address[1], user_root, anonymous_root, received, commands)
    finally:
        stop.set()
        thread.join(10)


# -- HTTP alarm server --------------------------------------------------------------------------
@dataclass(frozen=True)
class Post:
    path: str
    content_type: str
    body: bytes
    authorization: str


class AlarmServer:
    """An alarm server on a loop thread; `posts` are the requests it accepted."""

    def __init__(
        self, auth: str = "none", tls_directory: Path | None = None, algorithm: str = "SHA-256"
    ) -> None:
        self.auth = auth
        self.algorithm = algorithm  # of the digest challenge
        self.posts: list[Post] = []
        self.refused = 0
        self._digest = DigestAuth(ALARM_REALM, self._ha1)
        self._tls = server_context(*certificate(tls_directory)) if tls_directory else None
        self.port = free_port()
        self._thread = LoopThread("alarm-server")
        self._runner = self._thread.run(self._start())

    @staticmethod
    def _ha1(user: str, algorithm: str) -> str | None:
        return ha1(algorithm, user, ALARM_REALM, HOST_PASSWORD) if user == HOST_USER else None

    async def _start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=self._tls).start()
        return runner

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.auth == "basic":
            expected = base64.b64encode(f"{HOST_USER}:{HOST_PASSWORD}".encode()).decode()
            return header == f"Basic {expected}"
        if self.auth == "digest":
            peer = request.remote or ""
            verdict = self._digest.verify(header, "POST", request.raw_path, peer, [self.algorithm])
            return verdict.outcome is Outcome.OK
        return True

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self._authorized(request):
            self.refused += 1
            headers: dict[str, str] = {}
            if self.auth == "digest":
                (challenge,) = self._digest.challenges([self.algorithm], request.remote or "")
                headers["WWW-Authenticate"] = challenge
            else:
                headers["WWW-Authenticate"] = f'Basic realm="{ALARM_REALM}"'
            return web.Response(status=401, headers=headers)
        self.posts.append(
            Post(request.path_qs, request.headers.get("Content-Type", ""), body,
                 request.headers.get("Authorization", ""))
        )  # fmt: skip
        return web.Response(text="OK")

    def wait_for_posts(self, count: int, timeout: float = 10.0) -> list[Post]:
        wait_until(lambda: len(self.posts) >= count, timeout, f"{count} posts")
        return list(self.posts)

    def close(self) -> None:
        self._thread.run(self._runner.cleanup())
        self._thread.close_loop()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[int, list[float]]]:
    """A peer that accepts connections and never says a word: (port, connection times)."""
    connections: list[float] = []
    writers: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(time.monotonic())
        writers.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hang, "127.0.0.1", 0, family=socket.AF_INET)
    try:
        yield server.sockets[0].getsockname()[1], connections
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
