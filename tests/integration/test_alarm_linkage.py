"""An alarm input's whole linkage on a real vigild with a real card (issue 5's acceptance).

Alarm input 1 is closed through the simulated board's gpiozero mock pins (the sim control
socket). Its trigger, set over ISAPI, links every method: the alert stream, an e-mail to
aiosmtpd (STARTTLS and AUTH) with 3 JPEGs, a picture to pyftpdlib, a digest-authenticated
alarm server, relay output 1 for its 5 s hold time, and alarm recording with pre- and
post-record, which must then be found by a footage search.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.alerts import alert_stream, event, parse_alert
from tests.integration import test_storage
from tests.integration.notify_peers import AlarmServer, ftp_server, jpeg_size, mail_server
from tests.integration.test_notify_api import (
    FTP,
    HOSTS,
    MAILING,
    accepted,
    ftp_xml,
    host_xml,
    mailing_xml,
)
from tests.integration.test_record_api import TRACK, schedule_xml, search, search_body
from tests.integration.test_storage import format_card, wait_for
from tests.vigild import Vigild
from vigil.board.simcontrol import send
from vigil.events.bus import HOLD_OFF_S
from vigil.record.pictures import NAME

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
RELAY = "/ISAPI/System/IO/outputs/1/status"
PRE_S, POST_S, ALARM_S, HOLD_S = 5, 5, 3, 5
GOP_S = 2  # the main stream's default: 50 frames at 25 fps
GOP_S = 2  # the main stream's default: 50 frames at 25 fps
card_image = test_storage.card_image
pytestmark = test_storage.pytestmark


def relay_active(device: Vigild) -> bool:
    return ET.fromstring(device.get(RELAY).content).findtext(f"{NS}ioState") == "active"


def link_everything(device: Vigild, mail_port: int, ftp_port: int, host_port: int) -> None:
    accepted(device.put(MAILING, mailing_xml(mail_port)))
    accepted(device.put(FTP, ftp_xml(ftp_port)))
    accepted(device.put(f"{HOSTS}/1", host_xml(host_port)))
    methods = [("center", ""), ("email", ""), ("FTP", ""),
               ("record", "<videoInputID>1</videoInputID>"),
               ("IO", "<outputIOPortID>1</outputIOPortID>")]  # fmt: skip
    linkage = "".join(
        f"<EventTriggerNotification><id>{m}</id><notificationMethod>{m}</notificationMethod>"
        f"{extra}</EventTriggerNotification>"
        for m, extra in methods
    )
    trigger = (
        f"<EventTrigger><id>IO-1</id><EventTriggerNotificationList>{linkage}"
        "</EventTriggerNotificationList></EventTrigger>"
    )
    accepted(device.put("/ISAPI/Event/triggers/IO-1", trigger))
    # Track 101 records on alarms only, all week, with 5 s before and 5 s after.
    alarm_week = [(day, "00:00:00", "24:00:00", "ALARM") for day in DAYS]
    track = (
        f"<Track>{schedule_xml(alarm_week)}<CustomExtensionList><CustomExtension>"
        f"<PreRecordTimeSeconds>{PRE_S}</PreRecordTimeSeconds>"
        f"<PostRecordTimeSeconds>{POST_S}</PostRecordTimeSeconds>"
        "</CustomExtension></CustomExtensionList></Track>"
    )
    accepted(device.put(TRACK, track))


def test_an_alarm_input_runs_its_whole_linkage(
    vigild_factory, card_image: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    device: Vigild = vigild_factory(extra_args=("--sim-card", str(card_image))).start()
    device.activate()
    format_card(device)
    alarm_server = AlarmServer("digest")
    sim = device.data_dir / "sim.sock"
    try:
        with (
            mail_server(tmp_path, "STARTTLS") as mail,
            ftp_server(tmp_path) as ftp,
            alert_stream(device) as alerts,
        ):
            link_everything(device, mail.port, ftp.port, alarm_server.port)
            time.sleep(PRE_S + 3)  # the pre-record ring fills with whole GOPs
            assert search(device, search_body("alarm"))[1] == 0 and not relay_active(device)

            closed_at = datetime.now(UTC)
            send(sim, "input", {"id": 1, "closed": True})
            alert = alerts.wait_for(event("io"), timeout=5)
            assert (alert["inputIOPortID"], alert["channelID"]) == ("1", "1")
            assert relay_active(device)
            time.sleep(ALARM_S)
            send(sim, "input", {"id": 1, "closed": False})
            alerts.wait_for(event("io", "inactive"), timeout=5)
            # The relay holds for its 5 s from the trigger, then opens by itself.
            wait_for(lambda: not relay_active(device), "the relay to open", timeout=HOLD_S + 3)
            held = (datetime.now(UTC) - closed_at).total_seconds()
            assert HOLD_S - 0.5 < held < HOLD_S + 3, held

            wait_for(lambda: bool(mail.deliveries and ftp.received), "mail and upload", 20)
            posts = alarm_server.wait_for_posts(2, 15)
    finally:
        alarm_server.close()

    # The mail: 3 JPEGs of the channel, over STARTTLS with a login.
    (delivery,) = mail.deliveries
    assert delivery.tls and delivery.login
    attachments = list(delivery.message.iter_attachments())
    assert len(attachments) == 3 and all(jpeg_size(a.get_content())[0] > 0 for a in attachments)
    assert delivery.message["Subject"] == "Vigil Camera: IO alarm on alarm input 1"
    # The FTP picture, named as the card's pictures are, in a dated folder.
    (uploaded,) = ftp.received
    named = NAME.fullmatch(uploaded.name)
    assert named is not None and (named["channel"], named["event"]) == ("01", "ALARM")
    assert uploaded.parent.name == f"{closed_at:%Y-%m-%d}"  # the device's zone is UTC
    # The alarm server saw the start and the end.
    states = [(a["eventType"], a["eventState"]) for a in map(parse_alert, (p.body for p in posts))]
    assert states == [("io", "active"), ("io", "inactive")]

    # The recording: pre-record before the contact closed, post-record after it opened, then
    # nothing more (the schedule records alarms only).
    opened_at = closed_at + timedelta(seconds=ALARM_S)
    time.sleep(max(0.0, (opened_at - datetime.now(UTC)).total_seconds()) + POST_S + 4)
    matches = search(device, search_body("alarm"))[2]
    assert matches and {m.kind for m in matches} == {"alarm"}
    start, end = min(m.start for m in matches), max(m.end for m in matches)
    # The start: whole GOPs of pre-record (5 s, up to a GOP more), search times in whole seconds.
    earliest = closed_at - timedelta(seconds=PRE_S + GOP_S + 1)
    assert earliest <= start <= closed_at - timedelta(seconds=2)
    # The end: the bus's hold-off, then post-record, then the GOP under way is finished.
    latest = opened_at + timedelta(seconds=HOLD_OFF_S + POST_S + GOP_S + 1)
    assert opened_at + timedelta(seconds=POST_S) <= end <= latest
