"""What the notifications that leave the device share, and their "test" buttons.

- Which pictures an event has: a video event's own channel; an alarm input's (`io`) channel 1,
  the local sensor, which is what a camera links its inputs to; none for the device's
  exceptions (`diskfull`...), whose mails carry no pictures and whose FTP upload has nothing
  to send.
- The event word in picture names (`<IP>_<ch>_<time>_<EVENT>.jpg`): MOTION for `vmd` and
  ALARM for `io`, as Hikvision names them; other types by their own name (TAMPERDETECTION).
- `EventPictures`: the snapshots of one event are taken once and kept for that event's
  retries, so a mail sent on the third attempt still shows the moment of the event. The last
  few events' pictures are kept (bounded), and dropped once sent.
- `NotifyTester` (the API's NotifyTests): one attempt with settings that may not be saved yet,
  with a shorter time limit than the actions have, so that the ISAPI request answers in time;
  a failure is an ActionFailed that names the peer's refusal.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from vigil.config.events import VIDEO_EVENTS, FtpSettings, HttpHost, MailSettings
from vigil.events.bus import Event, kind_of
from vigil.events.http_push import post_alert
from vigil.events.linkage import MAX_RUNNING, ActionFailed
from vigil.record.pictures import event_type_for

if TYPE_CHECKING:
    from vigil.events.ftp_upload import FtpUploadAction
    from vigil.events.mail import MailAction

log = logging.getLogger(__name__)

Snapshot = Callable[[int], Awaitable[bytes]]  # channel -> JPEG
ALARM_INPUT_CHANNEL = 1
TEST_TIMEOUT_S = 8.0  # a test answers within a client's usual 10 s


def event_channel(event: Event) -> int | None:
    """The channel whose pictures go with `event`; None for the device's exceptions."""
    if event.type in VIDEO_EVENTS:
        return event.source
    if event.type == "io":
        return ALARM_INPUT_CHANNEL
    return None


def picture_event_type(event_type: str) -> str:
    """The event word of a picture name (lower case; names show it upper case)."""
    return event_type_for(kind_of(event_type))


@dataclass(frozen=True)
class Picture:
    channel: int
    taken_us: int  # UTC microseconds since the epoch
    jpeg: bytes


class EventPictures:
    """Snapshots of an event's channel, taken once per event and kept for its retries."""

    def __init__(self, snapshot: Snapshot, keep: int = MAX_RUNNING) -> None:
        self._snapshot = snapshot
        self._keep = keep
        self._taken: collections.OrderedDict[int, list[Picture]] = collections.OrderedDict()

    async def take(self, event: Event, count: int, interval_s: float) -> list[Picture]:
        """`count` pictures `interval_s` apart (fewer if the channel fails); [] without one."""
        if event.id in self._taken:
            return self._taken[event.id]
        channel = event_channel(event)
        if channel is None:
            return []
        pictures: list[Picture] = []
        failure: Exception | None = None
        start = time.monotonic()
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n * interval_s - time.monotonic()))
            try:
                jpeg = await self._snapshot(channel)
            except Exception as exc:  # the notification goes out with what there is
                failure = exc
                continue
            pictures.append(Picture(channel, time.time_ns() // 1000, jpeg))
        if failure is not None:
            log.warning("%d of %d pictures of channel %d for %s %s: %r", len(pictures), count,
                        channel, event.type, event.state, failure)  # fmt: skip
        self._taken[event.id] = pictures
        while len(self._taken) > self._keep:
            self._taken.popitem(last=False)
        return pictures

    def forget(self, event: Event) -> None:
        self._taken.pop(event.id, None)


def heartbeat_event(now: datetime) -> Event:
    """What an HTTP host test posts: the alert Hikvision devices send as a heartbeat."""
    return Event("videoloss", 0, False, now)


class NotifyTester:
    """The "test" buttons of mail, FTP and HTTP hosts (api.context.NotifyTests)."""

    def __init__(
        self,
        mail: MailAction,
        ftp: FtpUploadAction,
        render: Callable[[Event], bytes],
        now: Callable[[], datetime],
        timeout_s: float = TEST_TIMEOUT_S,
    ) -> None:
        self._mail = mail
        self._ftp = ftp
        self._render = render
        self._now = now
        self.timeout_s = timeout_s

    async def test_mail(self, settings: MailSettings, password: str) -> None:
        await self._bounded(
            "mail", self._mail.test(settings, password, self._now(), self.timeout_s)
        )

    async def test_ftp(self, settings: FtpSettings, password: str) -> None:
        await self._bounded("FTP", self._ftp.test(settings, password, self.timeout_s))

    async def test_http_host(self, host: HttpHost, password: str) -> None:
        body = self._render(heartbeat_event(self._now()))
        await self._bounded("HTTP host", post_alert(host, password, body, self.timeout_s))

    async def _bounded(self, what: str, attempt: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self.timeout_s + 2):
                await attempt
        except TimeoutError:
            raise ActionFailed(f"{what}: no answer within {self.timeout_s:g} s") from None
        except OSError as exc:
            raise ActionFailed(f"{what}: {exc.strerror or exc}") from None
        log.info("%s test succeeded", what)
