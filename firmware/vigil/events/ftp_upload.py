"""The FTP linkage: an event's picture uploaded to an FTP or FTPS server (ftplib, in a thread).

What was chosen:

- One snapshot per activation of an event that has a channel (video events, alarm inputs);
  an event's end and the device's exceptions upload nothing. The picture is named as the
  card's pictures are (`record.pictures.picture_place`):
  `<IP>_<ch>_<yyyyMMddHHmmssSSS>_<EVENT>.jpg`, device-local time, EVENT MOTION for `vmd` and
  ALARM for `io`. It is kept for the event's retries, so a retry uploads the same picture
  under the same name.
- Where: `directory` (relative to the login folder, or absolute if it starts with "/"), then
  a `yyyy-mm-dd` folder (device-local date) when `dated_folders`; missing folders are made.
- FTPS is explicit TLS (`AUTH TLS`, ftplib.FTP_TLS) with a protected data channel (`PROT P`);
  the server's certificate is checked unless `verify_certificate` is off. Passive mode.
- Login: anonymous, or `user` with the stored password (credential "ftp").
- Every socket (control and data) has `timeout_s`; ftplib blocks, so the work runs in a
  thread (asyncio.to_thread), which such a timeout always ends.
- Failures raise ActionFailed naming the server and its reply (`530 Login incorrect.`).
- The test uploads `vigil-test-<time>.txt` to the same folder and deletes it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import io
import logging
import ssl
from collections.abc import Callable
from datetime import datetime

from vigil.config.events import EventTrigger, FtpSettings
from vigil.events.bus import Event
from vigil.events.linkage import ActionFailed
from vigil.events.notify import EventPictures, Picture, Snapshot, event_channel, picture_event_type
from vigil.record.pictures import name_address, name_zone, picture_place
from vigil.security.credentials import Credentials

log = logging.getLogger(__name__)

FTP_TIMEOUT_S = 10.0
CREDENTIAL = "ftp"


def _tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _login(settings: FtpSettings, password: str, timeout_s: float) -> ftplib.FTP:
    if settings.protocol == "FTPS":
        context = _tls_context(settings.verify_certificate)
        ftp: ftplib.FTP = ftplib.FTP_TLS(context=context, timeout=timeout_s)
    else:
        ftp = ftplib.FTP(timeout=timeout_s)
    try:
        ftp.connect(settings.host, settings.port)
        if settings.anonymous:
            ftp.login()
        else:
            ftp.login(settings.user, password)
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
    except BaseException:
        ftp.close()
        raise
    return ftp


def _enter(ftp: ftplib.FTP, folders: list[str]) -> None:
    """Change into each folder in turn, making the ones that do not exist."""
    for folder in folders:
        if folder.startswith("/"):
            ftp.cwd("/")
        for part in (p for p in folder.split("/") if p):
            try:
                ftp.cwd(part)
            except ftplib.error_perm:
                ftp.mkd(part)
                ftp.cwd(part)


def store(
    settings: FtpSettings,
    password: str,
    folders: list[str],
    name: str,
    data: bytes,
    timeout_s: float,
    *,
    remove: bool = False,
) -> None:
    """Upload `data` as `name` into `folders` (blocking); delete it again if `remove`."""
    where = f"FTP {settings.host}:{settings.port}"
    try:
        ftp = _login(settings, password, timeout_s)
        try:
            _enter(ftp, folders)
            ftp.storbinary(f"STOR {name}", io.BytesIO(data))
            if remove:
                with contextlib.suppress(ftplib.error_perm):  # a server may forbid deleting
                    ftp.delete(name)
            with contextlib.suppress(*ftplib.all_errors):
                ftp.quit()
        finally:
            ftp.close()
    except ftplib.all_errors as exc:
        raise ActionFailed(f"{where}: {str(exc).strip() or type(exc).__name__}") from None


def folders_for(settings: FtpSettings, day: str) -> list[str]:
    """The upload folders: the directory, then the day's folder (`yyyy-mm-dd`) if dated."""
    folders = [settings.directory] if settings.directory else []
    return [*folders, day] if settings.dated_folders else folders


class FtpUploadAction:
    """The `ftp` linkage of a trigger (events.linkage.Action)."""

    name = "ftp"

    def __init__(
        self,
        settings: Callable[[], FtpSettings],
        credentials: Credentials,
        snapshot: Snapshot,
        device_ip: Callable[[], str],
        time_zone: Callable[[], str],
        timeout_s: float = FTP_TIMEOUT_S,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._pictures = EventPictures(snapshot)
        self._device_ip = device_ip
        self._time_zone = time_zone
        self.timeout_s = timeout_s

    def wanted(self, trigger: EventTrigger, event: Event) -> bool:
        return (
            trigger.ftp
            and event.active
            and event_channel(event) is not None
            and self._settings().enabled
        )

    async def run(self, event: Event) -> None:
        settings = self._settings()
        if not settings.host:
            raise ActionFailed("FTP: no server is set")
        pictures = await self._pictures.take(event, 1, 0)
        if not pictures:
            self._pictures.forget(event)  # the next attempt asks the channel again
            raise ActionFailed(f"FTP: no picture from channel {event_channel(event)}")
        folder, name = self._place(pictures[0], event.type)
        password = self._credentials.get(CREDENTIAL)
        folders = folders_for(settings, folder.rpartition("/")[2])
        await asyncio.to_thread(
            store, settings, password, folders, name, pictures[0].jpeg, self.timeout_s
        )
        self._pictures.forget(event)

    def _place(self, picture: Picture, event_type: str) -> tuple[str, str]:
        return picture_place(
            picture.channel,
            picture.taken_us,
            picture_event_type(event_type),
            name_address(self._device_ip),
            name_zone(self._time_zone),
        )

    async def test(self, settings: FtpSettings, password: str, timeout_s: float) -> None:
        """Upload a small test file with these (perhaps unsaved) settings, then delete it."""
        if not settings.host:
            raise ActionFailed("FTP: no server is set")
        now = datetime.now(name_zone(self._time_zone))
        name = f"vigil-test-{now:%Y%m%d%H%M%S}.txt"
        body = f"Vigil FTP test upload, {now.isoformat(timespec='seconds')}\n".encode()
        folders = folders_for(settings, f"{now:%Y-%m-%d}")
        await asyncio.to_thread(
            store, settings, password, folders, name, body, timeout_s, remove=True
        )
