"""The e-mail linkage against a real SMTP server (aiosmtpd on loopback): STARTTLS and implicit
TLS with AUTH, 3 JPEG snapshots taken at the set interval, the server's refusals, the test
mail, and bounded retries of a dead server that delay nothing else."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.notify_peers import (
    MAIL_PASSWORD,
    MAIL_USER,
    SNAPSHOT_SIZE,
    Camera,
    MailServer,
    jpeg_size,
    mail_server,
    silent_server,
    stored_credentials,
)
from tests.vigild import free_port
from vigil.board.clock import local_iso
from vigil.config.events import EventTrigger, MailReceiver, MailSettings
from vigil.events.bus import Event
from vigil.events.linkage import ActionFailed, ActionRunner
from vigil.events.mail import MailAction
from vigil.events.notify import NotifyTester
from vigil.security.credentials import Credentials

DEVICE = "Lobby Camera"
TIME_ZONE = "CST-8:00:00"
RECEIVERS = [
    MailReceiver(name="Ops Desk", address="ops@example.test"),
    MailReceiver(name="", address="guard@example.test"),
    MailReceiver(name="Site Manager", address="manager@example.test"),
]
MOTION = Event("vmd", 1, True, datetime(2026, 3, 7, 23, 59, 58, tzinfo=UTC), id=7)
DISK_FULL = Event("diskfull", 0, True, datetime(2026, 3, 8, 1, 2, 3, tzinfo=UTC), id=8)


def mail_settings(port: int, security: str = "STARTTLS", **changes: object) -> MailSettings:
    return dataclasses.replace(
        MailSettings(
            host="127.0.0.1",
            port=port,
            security=security,
            verify_certificate=False,  # the test server's certificate is self-signed
            auth=True,
            user=MAIL_USER,
            sender_name=DEVICE,
            sender_address="lobby-cam@example.test",
            receivers=RECEIVERS,
            picture_interval_s=1,
        ),
        **changes,
    )


@pytest.fixture
def credentials(tmp_path: Path) -> Credentials:
    return stored_credentials(tmp_path, {"mail": MAIL_PASSWORD})


@pytest.fixture
def camera() -> Camera:
    return Camera()


@pytest.fixture
def starttls(tmp_path: Path) -> MailServer:
    with mail_server(tmp_path, "STARTTLS") as server:
        yield server  # type: ignore[misc]


def mail_action(
    settings: MailSettings, credentials: Credentials, camera: Camera, timeout_s: float = 10
) -> MailAction:
    return MailAction(
        lambda: settings,
        credentials,
        camera.snapshot,
        lambda: DEVICE,
        lambda at: local_iso(at, TIME_ZONE),
        timeout_s=timeout_s,
    )


def test_wanted_on_activation_of_a_trigger_with_email(tmp_path: Path) -> None:
    action = mail_action(mail_settings(25), Credentials(tmp_path / "c.json"), Camera())
    trigger = EventTrigger(event="vmd", source=1, email=True)
    assert action.wanted(trigger, MOTION)
    assert not action.wanted(trigger, dataclasses.replace(MOTION, active=False))
    assert not action.wanted(dataclasses.replace(trigger, email=False), MOTION)


async def test_alarm_mail_over_starttls_with_auth_and_three_pictures(
    starttls: MailServer, credentials: Credentials, camera: Camera
) -> None:
    started = time.monotonic()
    await mail_action(mail_settings(starttls.port), credentials, camera).run(MOTION)

    (delivery,) = starttls.deliveries
    assert (delivery.tls, delivery.login) == (True, MAIL_USER)
    assert delivery.mail_from == "lobby-cam@example.test"
    assert delivery.rcpt_tos == [r.address for r in RECEIVERS]
    message = delivery.message
    assert message["Subject"] == f"{DEVICE}: Motion alarm on channel 1"
    assert message["From"] == f"{DEVICE} <lobby-cam@example.test>"
    assert message["To"] == (
        "Ops Desk <ops@example.test>, guard@example.test, Site Manager <manager@example.test>"
    )
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    for line in ("Event: Motion alarm (vmd)", "Channel: 1", "State: active",
                 "Time: 2026-03-08T07:59:58+08:00", f"Device: {DEVICE}"):  # fmt: skip
        assert line in text.splitlines()
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["ch01_1.jpg", "ch01_2.jpg", "ch01_3.jpg"]
    assert {a.get_content_type() for a in attachments} == {"image/jpeg"}
    assert all(jpeg_size(a.get_content()) == SNAPSHOT_SIZE for a in attachments)
    # Three snapshots of the event's channel, picture_interval_s (1 s) apart: on a schedule
    # from the start, so a late first one is followed by a shorter gap, never by drift.
    assert [channel for channel, _ in camera.calls] == [1, 1, 1]
    offsets = [at - started for _, at in camera.calls]
    assert all(n <= offset < n + 1 for n, offset in enumerate(offsets)), offsets


# aiosmtpd cannot tell that an implicit-TLS session is encrypted, so AUTH is allowed by hand.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls_and_no_pictures_for_the_device_exceptions(
    tmp_path: Path, credentials: Credentials, camera: Camera
) -> None:
    with mail_server(tmp_path, "SSL") as server:
        action = mail_action(mail_settings(server.port, "SSL"), credentials, camera)
        await action.run(DISK_FULL)
    (delivery,) = server.deliveries
    assert (delivery.tls, delivery.login) == (True, MAIL_USER)
    message = delivery.message
    assert message["Subject"] == f"{DEVICE}: HD full on the device"
    assert "Source: the device" in message.get_content().splitlines()
    assert not list(message.iter_attachments())
    assert camera.calls == []


async def test_the_servers_refusals_are_action_failures_naming_the_reason(
    starttls: MailServer, credentials: Credentials, camera: Camera, tmp_path: Path
) -> None:
    settings = mail_settings(starttls.port, attach_pictures=False)
    refusals = {
        "535": (settings, "Wrong-Password"),
        "certificate verify failed": (
            dataclasses.replace(settings, verify_certificate=True),
            MAIL_PASSWORD,
        ),
        "STARTTLS": (dataclasses.replace(settings, security="none"), MAIL_PASSWORD),
        "Connect call failed": (dataclasses.replace(settings, port=free_port()), MAIL_PASSWORD),
    }
    for reason, (changed, password) in refusals.items():
        credentials.set("mail", password)
        with pytest.raises(ActionFailed) as failure:
            await mail_action(changed, credentials, camera).run(MOTION)
        assert reason in str(failure.value), (reason, str(failure.value))
        assert f"SMTP 127.0.0.1:{changed.port}" in str(failure.value)
    assert starttls.deliveries == []


async def test_a_retry_sends_the_pictures_taken_for_the_event(
    starttls: MailServer, credentials: Credentials, camera: Camera
) -> None:
    action = mail_action(mail_settings(starttls.port), credentials, camera)
    credentials.set("mail", "Wrong-Password")
    with pytest.raises(ActionFailed, match="535"):
        await action.run(MOTION)
    credentials.set("mail", MAIL_PASSWORD)
    await action.run(MOTION)  # the runner's next attempt
    assert len(camera.calls) == 3  # taken once, for the event
    (delivery,) = starttls.deliveries
    assert len(list(delivery.message.iter_attachments())) == 3


async def test_a_channel_without_pictures_still_gets_its_mail(
    starttls: MailServer,
    credentials: Credentials,
    camera: Camera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    camera.error = RuntimeError("no frames from the sensor")
    with caplog.at_level(logging.WARNING, logger="vigil.events.notify"):
        await mail_action(mail_settings(starttls.port), credentials, camera).run(MOTION)
    (delivery,) = starttls.deliveries
    assert not list(delivery.message.iter_attachments())
    assert "0 of 3 pictures of channel 1" in caplog.text
    ours = [r for r in caplog.records if r.name == "vigil.events.notify"]
    assert len(ours) == 1  # one line for the event, not one per picture


async def test_a_dead_server_gets_bounded_retries_and_delays_nothing_else(
    starttls: MailServer,
    credentials: Credentials,
    camera: Camera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = ActionRunner(retry_delays_s=(0.2, 0.2), attempt_timeout_s=5)
    caplog.set_level(logging.INFO, logger="vigil.linkage")
    async with silent_server() as (dead_port, connections):
        dead_settings = mail_settings(dead_port, attach_pictures=False)
        dead = mail_action(dead_settings, credentials, camera, timeout_s=2)
        dead.name = "email (dead server)"
        live = mail_action(mail_settings(starttls.port, attach_pictures=False), credentials, camera)
        started = time.monotonic()
        runner.start(dead, MOTION)
        runner.start(live, MOTION)
        while not starttls.deliveries:
            assert time.monotonic() - started < 1.5, "the live server's mail was held up"
            await asyncio.sleep(0.01)
        assert len(connections) == 1  # while the dead server's first attempt still waited
        while "failed after 3 attempts" not in caplog.text:
            assert time.monotonic() - started < 15, caplog.text
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # no fourth attempt comes
    assert len(connections) == 3
    lines = [r.getMessage() for r in caplog.records if r.name == "vigil.linkage"]
    dead_lines = [line for line in lines if line.startswith("email (dead server)")]
    assert len(dead_lines) == 3, dead_lines
    assert "(attempt 1)" in dead_lines[0] and "retrying in 0.2 s" in dead_lines[0]
    assert "(attempt 2)" in dead_lines[1]
    assert "failed after 3 attempts" in dead_lines[2]
    assert "email for vmd 1 active done" in lines
    await runner.stop()


async def test_the_test_mail(
    starttls: MailServer, credentials: Credentials, camera: Camera
) -> None:
    action = mail_action(mail_settings(25), credentials, camera)
    tester = NotifyTester(action, None, lambda e: b"", lambda: MOTION.at)  # type: ignore[arg-type]
    unsaved = mail_settings(starttls.port, user=MAIL_USER)
    await tester.test_mail(unsaved, MAIL_PASSWORD)  # the given password, not the stored one
    (delivery,) = starttls.deliveries
    assert delivery.message["Subject"] == f"{DEVICE}: test mail"
    assert "This is a test mail" in delivery.message.get_content()
    assert "2026-03-08T07:59:58+08:00" in delivery.message.get_content()
    assert not list(delivery.message.iter_attachments())
    assert camera.calls == []
    with pytest.raises(ActionFailed, match="535"):
        await tester.test_mail(unsaved, "Wrong-Password")
    with pytest.raises(ActionFailed, match="no receiver"):
        await tester.test_mail(dataclasses.replace(unsaved, receivers=[]), MAIL_PASSWORD)
    assert len(starttls.deliveries) == 1
