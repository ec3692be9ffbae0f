"""The e-mail linkage (m 8.2.3): a plain-text alarm mail with 3 snapshots, sent with aiosmtplib.

What was chosen:

- Transport by `MailSettings.security`: "SSL" is TLS from the first byte (implicit, port 465),
  "STARTTLS" upgrades a plain connection (25 or 587) and fails if the server does not offer
  it, "none" never upgrades. Certificates are checked unless `verify_certificate` is off.
  With `auth`, the user and the stored password (credential "mail") log in.
- One mail per activation (an event's end sends none), to every receiver at once. Subject:
  `<device name>: <event description> on <source>`; the body says the device, the event, its
  channel or alarm input, the state and the device-local time (the caller's formatter).
- Pictures: when `attach_pictures`, 3 JPEG snapshots of the event's channel taken
  `picture_interval_s` apart, named `ch<NN>_<n>.jpg`; kept for the retries (EventPictures),
  so every attempt sends the same pictures. A channel that gives no picture is logged and the
  mail goes out with what there is; exceptions (no channel) attach none.
- Failures raise ActionFailed naming the server and its answer (`535 5.7.8 Authentication
  credentials invalid`); the ActionRunner retries. Every socket operation has a timeout.
- Receivers refused by the server while others were accepted are logged; the mail counts as
  sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from vigil.config.events import EventTrigger, MailSettings
from vigil.events.bus import Event
from vigil.events.linkage import ActionFailed
from vigil.events.notify import EventPictures, Picture, Snapshot
from vigil.security.credentials import Credentials

log = logging.getLogger(__name__)

PICTURES = 3
SMTP_TIMEOUT_S = 10.0
CREDENTIAL = "mail"


def _source_line(event: Event) -> str:
    if event.type == "io":
        return f"Alarm input: {event.source}"
    if event.source == 0:
        return "Source: the device"
    return f"Channel: {event.source}"


def _source_words(event: Event) -> str:
    if event.type == "io":
        return f"alarm input {event.source}"
    return f"channel {event.source}" if event.source else "the device"


def check_ready(settings: MailSettings) -> None:
    """ActionFailed if the settings cannot send a mail at all."""
    if not settings.host:
        raise ActionFailed("mail: no SMTP server is set")
    if not settings.sender_address:
        raise ActionFailed("mail: no sender address is set")
    if not any(r.address for r in settings.receivers):
        raise ActionFailed("mail: no receiver is set")
    if settings.auth and not settings.user:
        raise ActionFailed("mail: authentication is on but no user name is set")


def _message(settings: MailSettings, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((settings.sender_name, settings.sender_address))
    message["To"] = ", ".join(
        formataddr((r.name, r.address)) for r in settings.receivers if r.address
    )
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=settings.sender_address.rpartition("@")[2])
    message.set_content(body)
    return message


def alarm_message(
    settings: MailSettings, device: str, event: Event, when: str, pictures: list[Picture]
) -> EmailMessage:
    state = "started" if event.active else "ended"
    lines = [
        f"{device} reports: {event.description} {state}.",
        "",
        f"Event: {event.description} ({event.type})",
        _source_line(event),
        f"State: {event.state}",
        f"Time: {when}",
        f"Device: {device}",
    ]
    if pictures:
        lines += ["", f"{len(pictures)} pictures attached, {settings.picture_interval_s} s apart."]
    subject = f"{device}: {event.description} on {_source_words(event)}"
    message = _message(settings, subject, "\n".join(lines) + "\n")
    for n, picture in enumerate(pictures, 1):
        message.add_attachment(
            picture.jpeg, maintype="image", subtype="jpeg",
            filename=f"ch{picture.channel:02d}_{n}.jpg",
        )  # fmt: skip
    return message


def mail_test_message(settings: MailSettings, device: str, when: str) -> EmailMessage:
    body = (
        f"This is a test mail from {device}, sent at {when}.\n"
        "The device's mail settings work: alarm mails will arrive like this one.\n"
    )
    return _message(settings, f"{device}: test mail", body)


async def send(
    settings: MailSettings, password: str, message: EmailMessage, timeout_s: float
) -> None:
    """Deliver `message` once; ActionFailed with the server's answer if it is refused."""
    import aiosmtplib  # here: most devices never send mail, and it costs 0.4 MB loaded

    where = f"SMTP {settings.host}:{settings.port}"
    try:
        errors, _ = await aiosmtplib.send(
            message,
            hostname=settings.host,
            port=settings.port,
            use_tls=settings.security == "SSL",
            start_tls=settings.security == "STARTTLS",
            validate_certs=settings.verify_certificate,
            username=settings.user if settings.auth else None,
            password=password if settings.auth else None,
            timeout=timeout_s,
        )
    except aiosmtplib.SMTPResponseException as exc:
        raise ActionFailed(f"{where}: {exc.code} {exc.message}") from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        raise ActionFailed(f"{where}: every receiver refused ({refused})") from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ActionFailed(f"{where}: {exc}") from None
    if errors:
        refused = "; ".join(f"{to}: {r.code} {r.message}" for to, r in errors.items())
        log.warning("%s refused some receivers: %s", where, refused)


class MailAction:
    """The `email` linkage of a trigger (events.linkage.Action)."""

    name = "email"

    def __init__(
        self,
        settings: Callable[[], MailSettings],
        credentials: Credentials,
        snapshot: Snapshot,
        device_name: Callable[[], str],
        local_time: Callable[[datetime], str],
        timeout_s: float = SMTP_TIMEOUT_S,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._pictures = EventPictures(snapshot)
        self._device_name = device_name
        self._local_time = local_time
        self.timeout_s = timeout_s

    def wanted(self, trigger: EventTrigger, event: Event) -> bool:
        return trigger.email and event.active

    async def run(self, event: Event) -> None:
        settings = self._settings()
        check_ready(settings)
        pictures = []
        if settings.attach_pictures:
            pictures = await self._pictures.take(event, PICTURES, settings.picture_interval_s)
        message = alarm_message(
            settings, self._device_name(), event, self._local_time(event.at), pictures
        )
        await send(settings, self._credentials.get(CREDENTIAL), message, self.timeout_s)
        self._pictures.forget(event)

    async def test(
        self, settings: MailSettings, password: str, at: datetime, timeout_s: float
    ) -> None:
        """One test mail with these (perhaps unsaved) settings."""
        check_ready(settings)
        message = mail_test_message(settings, self._device_name(), self._local_time(at))
        await send(settings, password, message, timeout_s)
