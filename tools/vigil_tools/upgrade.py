"""`vigil upgrade HOST BUNDLE`: push a firmware bundle to a device over ISAPI and follow the
install: `PUT /ISAPI/System/updateFirmware` with the bundle as the body, then
`GET /ISAPI/System/upgradeStatus` (`<upgrading>`, `<percent>`, Hikvision's shape) until done.

Chosen where the issue is silent:
- HTTP digest through requests' HTTPDigestAuth. On the uploading session a GET of
  `upgradeStatus` goes first: it takes the challenge (and proves the password and that the
  device upgrades over ISAPI) so the upload carries its Authorization from the first byte,
  with the next nonce-count.
  Without it the bundle would be sent once unauthenticated, refused with 401, and sent again.
  If the device still answers 401 (a nonce gone stale), requests rewinds the body and resends.
- The body is the open file behind a reader that counts what is sent, with its length, so
  requests sends a Content-Length (not chunked) and the upload bar is the bytes on the wire.
- The PUT's answer is what counts: vigild (like Hikvision's devices) answers once the bundle
  is installed, then reboots. The PUT runs on its own thread so that meanwhile a second
  session polls the status for the install bar. A device that answers first and installs
  after is followed until 100% (done) or until it stops upgrading below that (failed);
  a device that no longer answers after an accepted upload is rebooting into the new slot.
- A refused upload (ResponseStatus with subStatusCode badFirmware, badDevType, deviceBusy, ...)
  is reported with the device's own words. Exit codes: 0 installed, 1 refused or failed,
  2 usage, 130 interrupted.
- `requests` comes with the `host` extra (and the test extra), not with the device's own
  dependencies: the image never needs it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from vigil.security.safexml import RejectedXml, parse_untrusted
from vigil_tools.progress import Progress

if TYPE_CHECKING:
    import requests

UPDATE_PATH = "/ISAPI/System/updateFirmware"
STATUS_PATH = "/ISAPI/System/upgradeStatus"
CONNECT_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 1.0
DEFAULT_TIMEOUT_S = 1800.0


class UpgradeFailed(Exception):
    """The device refused or failed the upgrade, or could not be reached; the message says why."""


@dataclass(frozen=True)
class Status:
    upgrading: bool
    percent: int


def base_url(host: str) -> str:
    """`HOST[:port]` or a full `http(s)://HOST[:port]` -> the URL the paths go after."""
    host = host.rstrip("/")
    return host if host.startswith(("http://", "https://")) else f"http://{host}"


def _find(element: ET.Element, name: str) -> str:
    """The text of the first element with this local name, whatever its namespace."""
    for node in element.iter():
        if node.tag.rsplit("}", 1)[-1] == name:
            return (node.text or "").strip()
    return ""


def _document(reply: requests.Response) -> ET.Element | None:
    try:
        return parse_untrusted(reply.content)
    except RejectedXml:
        return None


def refusal_text(reply: requests.Response) -> str:
    """What a refusing device said: its ResponseStatus subStatusCode and message, else HTTP's."""
    doc = _document(reply)
    if doc is None:
        return f"HTTP {reply.status_code} {reply.reason}"
    sub = _find(doc, "subStatusCode") or _find(doc, "statusString")
    message = _find(doc, "errorMsg") or _find(doc, "statusString")
    return f"{sub}: {message}" if message and message != sub else sub or f"HTTP {reply.status_code}"


def parse_status(reply: requests.Response) -> Status:
    doc = _document(reply)
    if doc is None or not _find(doc, "upgrading"):
        raise UpgradeFailed(f"{STATUS_PATH} answered something else than an upgradeStatus")
    try:
        percent = int(_find(doc, "percent") or 0)
    except ValueError:
        raise UpgradeFailed(f"{STATUS_PATH} gave a percent that is not a number") from None
    return Status(_find(doc, "upgrading").lower() == "true", percent)


class CountingReader:
    """The bundle as a request body: reads advance the progress bar and `sent` is set at the
    end; a seek (requests rewinds the body to send it again after a 401) starts the count again."""

    def __init__(self, file: BinaryIO, size: int, progress: Progress) -> None:
        self._file, self._size, self._progress = file, size, progress
        self.sent = threading.Event()

    def __len__(self) -> int:
        return self._size

    def read(self, count: int = -1) -> bytes:
        data = self._file.read(count)
        self._progress.advance(len(data))
        if not data or self._file.tell() >= self._size:
            self.sent.set()
        return data

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._file.seek(offset, whence)
        self._progress.done = position
        self.sent.clear()
        return position


class DeviceSession:
    """Digest-authenticated requests to one device, from one thread (requests keeps the digest
    nonce and count per thread)."""

    def __init__(self, host: str, user: str, password: str, verify: bool = True) -> None:
        import requests
        from requests.auth import HTTPDigestAuth

        self.url = base_url(host)
        self._requests = requests
        self.session = requests.Session()
        self.session.auth = HTTPDigestAuth(user, password)
        self.session.verify = verify

    def status(self) -> Status:
        reply = self._call("GET", STATUS_PATH, timeout=(CONNECT_TIMEOUT_S, 30))
        if reply.status_code == 401:
            raise UpgradeFailed(f"{self.url} refused the user name or password")
        if reply.status_code != 200:
            raise UpgradeFailed(f"{self.url} cannot report an upgrade: {refusal_text(reply)}")
        return parse_status(reply)

    def upload(self, body: CountingReader, answer_timeout: float) -> str:
        """Take the challenge with a status GET, then PUT the bundle; the device's answer.
        UpgradeFailed if it refuses the bundle or fails to install it."""
        self.status()
        reply = self._call(
            "PUT",
            UPDATE_PATH,
            data=body,
            headers={"Content-Type": "application/octet-stream"},
            timeout=(CONNECT_TIMEOUT_S, answer_timeout),
        )
        if reply.status_code == 401:
            raise UpgradeFailed(f"{self.url} refused the user name or password")
        if 400 <= reply.status_code < 500:
            raise UpgradeFailed(f"the device refused the bundle: {refusal_text(reply)}")
        if not reply.ok:
            raise UpgradeFailed(f"the upgrade failed on the device: {refusal_text(reply)}")
        doc = _document(reply)
        return (_find(doc, "statusString") if doc is not None else "") or "OK"

    def _call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        try:
            return self.session.request(method, self.url + path, **kwargs)  # type: ignore[arg-type]
        except self._requests.RequestException as exc:
            raise ConnectionError(f"{self.url}{path}: {exc}") from exc


class _Upload(threading.Thread):
    """The PUT on its own (daemon) thread, so the status can be shown while the device installs
    before it answers; an interrupt ends the command without waiting for it."""

    def __init__(self, device: DeviceSession, body: CountingReader, timeout: float) -> None:
        super().__init__(name="vigil-upload", daemon=True)
        self._device, self._body, self._timeout = device, body, timeout
        self.answer = ""
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.answer = self._device.upload(self._body, self._timeout)
        except (UpgradeFailed, ConnectionError) as exc:
            self.error = exc


class _InstallWatch:
    """The install bar, fed from `upgradeStatus` while the device is upgrading."""

    def __init__(self, device: DeviceSession) -> None:
        self.device = device
        self.progress = Progress("install", 100)
        self.seen = 0  # the highest percent seen while upgrading
        self.last: Status | None = None

    def poll(self) -> Status | None:
        """One status read; None while the device does not answer (rebooting)."""
        try:
            status = self.device.status()
        except (UpgradeFailed, ConnectionError):
            return None
        if status.upgrading:
            self.progress.advance(max(status.percent - self.seen, 0))
            self.seen = max(self.seen, status.percent)
        self.last = status
        return status


def install(uploader: DeviceSession, watcher: DeviceSession, bundle: Path, timeout: float) -> str:
    """Upload the bundle and follow its install to the end; the device's answer to the PUT.

    The PUT's answer is what counts (Hikvision's and Vigil's devices answer once the firmware
    is installed, then reboot). A device that answers first and installs after is followed
    through `upgradeStatus` until it reaches 100% or stops upgrading below it (failed).
    """
    size = bundle.stat().st_size
    upload_bar = Progress("upload ", size)
    watch = _InstallWatch(watcher)
    with bundle.open("rb") as file:
        body = CountingReader(file, size, upload_bar)
        upload = _Upload(uploader, body, timeout)
        upload.start()
        while upload.is_alive() and not body.sent.wait(POLL_INTERVAL_S):
            pass
        if body.sent.is_set():
            upload_bar.finish()
        while upload.is_alive():
            watch.poll()
            upload.join(POLL_INTERVAL_S)
    if upload.error is not None:
        raise upload.error
    _follow(watch, timeout)
    watch.progress.finish()
    return upload.answer


def _follow(watch: _InstallWatch, timeout: float) -> None:
    """After an accepted upload: follow a device that installs after answering (it says it is
    upgrading below 100%) to its end; one that answered when done is rebooting or at 100%."""
    deadline = time.monotonic() + timeout
    installing = False
    while time.monotonic() < deadline:
        status = watch.poll()
        if status is not None and status.upgrading and status.percent < 100:
            installing = True
            time.sleep(POLL_INTERVAL_S)
            continue
        if installing and status is not None and status.percent < 100:
            raise UpgradeFailed(
                f"the device gave up the upgrade (last at {watch.seen}%); its log says why "
                "(ISAPI logSearch, upgradeFailed)"
            )
        watch.progress.advance(100 - watch.progress.done)
        return
    raise UpgradeFailed(f"no end of the upgrade after {timeout:g} s (last at {watch.seen}%)")


def add_parser(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    password: argparse.ArgumentParser,
) -> None:
    cmd = commands.add_parser(
        "upgrade",
        parents=[password],
        help="install a firmware bundle on a device over its API, with progress",
        description="Upload BUNDLE (a RAUC bundle from `vigil bundle`) to the device at HOST "
        "and follow its installation; the device then reboots into the new firmware.",
    )
    cmd.add_argument("host", metavar="HOST", help="HOST[:port] or http(s)://HOST[:port]")
    cmd.add_argument("bundle", type=Path, metavar="BUNDLE", help="the .raucb bundle")
    cmd.add_argument("--user", default="admin", help="user name (default admin)")
    cmd.add_argument("--password", help="the user's password (else as --password-stdin says)")
    cmd.add_argument(
        "--insecure", action="store_true", help="do not check the device's HTTPS certificate"
    )
    cmd.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for the install (default {DEFAULT_TIMEOUT_S:g})",
    )


def run(args: argparse.Namespace, read_password: Callable[[], str]) -> int:
    """The `vigil upgrade` command; `read_password` asks when --password is not given."""
    if not args.bundle.is_file():
        print(f"vigil: {args.bundle} is not a file", file=sys.stderr)
        return 1
    try:
        import requests  # noqa: F401
    except ImportError:
        print("vigil: upgrade needs requests: pip install 'vigil[host]'", file=sys.stderr)
        return 1
    password = args.password or read_password()
    uploader, watcher = (
        DeviceSession(args.host, args.user, password, verify=not args.insecure) for _ in range(2)
    )
    try:
        answer = install(uploader, watcher, args.bundle, args.timeout)
    except (UpgradeFailed, ConnectionError) as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 1
    print(f"{uploader.url}: {args.bundle.name} installed ({answer}); the device reboots into it")
    return 0
