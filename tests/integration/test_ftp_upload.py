"""The FTP linkage against a real FTP server (pyftpdlib on loopback): the event's picture named
as the card's pictures are, in dated folders made as needed; FTPS with a protected data
channel; anonymous login; the server's refusals; the test upload."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.notify_peers import (
    FTP_PASSWORD,
    FTP_USER,
    SNAPSHOT_SIZE,
    Camera,
    FtpPeer,
    ftp_server,
    jpeg_size,
    stored_credentials,
)
from tests.vigild import free_port
from vigil.board.clock import parse_time_zone
from vigil.config.events import EventTrigger, FtpSettings
from vigil.events.bus import Event
from vigil.events.ftp_upload import FtpUploadAction
from vigil.events.linkage import ActionFailed
from vigil.events.notify import NotifyTester
from vigil.record.pictures import NAME
from vigil.security.credentials import Credentials

DEVICE_IP = "192.168.1.64"
TIME_ZONE = "CST-8:00:00"  # UTC+8: 23:59:58 UTC on the 7th is the 8th on the device
MOTION = Event("vmd", 1, True, datetime(2026, 3, 7, 23, 59, 58, tzinfo=UTC), id=7)
ALARM_INPUT = Event("io", 2, True, datetime(2026, 3, 7, 12, 0, 0, tzinfo=UTC), id=9)


def ftp_settings(port: int, **changes: object) -> FtpSettings:
    return dataclasses.replace(
        FtpSettings(
            enabled=True,
            host="127.0.0.1",
            port=port,
            user=FTP_USER,
            directory="alarms/lobby",
            dated_folders=True,
        ),
        **changes,
    )


@pytest.fixture
def credentials(tmp_path: Path) -> Credentials:
    return stored_credentials(tmp_path, {"ftp": FTP_PASSWORD})


@pytest.fixture
def camera() -> Camera:
    return Camera()


@pytest.fixture
def server(tmp_path: Path) -> FtpPeer:
    with ftp_server(tmp_path) as peer:
        yield peer  # type: ignore[misc]


def upload_action(
    settings: FtpSettings, credentials: Credentials, camera: Camera, ip: str = DEVICE_IP
) -> FtpUploadAction:
    return FtpUploadAction(
        lambda: settings, credentials, camera.snapshot, lambda: ip, lambda: TIME_ZONE,
        timeout_s=5,
    )  # fmt: skip


def only_file(root: Path) -> Path:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 1, files
    return files[0]


def test_wanted_for_activations_with_a_picture_when_enabled(tmp_path: Path) -> None:
    settings = ftp_settings(21)
    action = upload_action(settings, Credentials(tmp_path / "c.json"), Camera())
    trigger = EventTrigger(event="vmd", source=1, ftp=True)
    assert action.wanted(trigger, MOTION)
    assert action.wanted(dataclasses.replace(trigger, event="io", source=2), ALARM_INPUT)
    assert not action.wanted(trigger, dataclasses.replace(MOTION, active=False))
    assert not action.wanted(dataclasses.replace(trigger, ftp=False), MOTION)
    diskfull = Event("diskfull", 0, True, MOTION.at)
    assert not action.wanted(dataclasses.replace(trigger, event="diskfull", source=0), diskfull)
    disabled = upload_action(dataclasses.replace(settings, enabled=False), action._credentials,
                             Camera())  # fmt: skip
    assert not disabled.wanted(trigger, MOTION)


async def test_the_picture_arrives_in_its_dated_folder_named_as_on_the_card(
    server: FtpPeer, credentials: Credentials, camera: Camera
) -> None:
    await upload_action(ftp_settings(server.port), credentials, camera).run(MOTION)
    uploaded = only_file(server.user_root)
    day = uploaded.parent.name
    assert uploaded.parent.parent == server.user_root / "alarms" / "lobby"
    match = NAME.fullmatch(uploaded.name)
    assert match is not None, uploaded.name
    assert (match["ip"], match["channel"], match["event"]) == (DEVICE_IP, "01", "MOTION")
    stamp = match["time"]
    taken = datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=parse_time_zone(TIME_ZONE))
    assert abs(taken - datetime.now(UTC)) < timedelta(seconds=5)  # device-local time: UTC+8
    assert day == f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"  # the name's own (device-local) day
    assert uploaded.read_bytes() == camera.jpeg
    assert jpeg_size(uploaded.read_bytes()) == SNAPSHOT_SIZE
    assert camera.calls[0][0] == 1 and len(camera.calls) == 1
    assert server.received == [uploaded]


async def test_anonymous_without_dated_folders_and_an_alarm_input(
    server: FtpPeer, credentials: Credentials, camera: Camera
) -> None:
    settings = ftp_settings(server.port, anonymous=True, user="", dated_folders=False,
                            directory="")  # fmt: skip
    await upload_action(settings, credentials, camera, ip="").run(ALARM_INPUT)
    uploaded = only_file(server.anonymous_root)
    assert uploaded.parent == server.anonymous_root
    match = NAME.fullmatch(uploaded.name)
    assert match is not None and (match["ip"], match["channel"], match["event"]) == (
        "0.0.0.0",  # no address yet: as the card names it
        "01",  # an alarm input's pictures are the camera's channel 1
        "ALARM",
    )


async def test_ftps_with_a_protected_data_channel(
    tmp_path: Path, credentials: Credentials, camera: Camera
) -> None:
    with ftp_server(tmp_path, tls=True) as peer:
        settings = ftp_settings(peer.port, protocol="FTPS", verify_certificate=False)
        await upload_action(settings, credentials, camera).run(MOTION)
        assert only_file(peer.user_root).read_bytes() == camera.jpeg
        assert {"AUTH", "PBSZ", "PROT"} <= set(peer.commands)
        # Checking the certificate, the self-signed one is refused: nothing more is sent.
        checked = dataclasses.replace(settings, verify_certificate=True)
        with pytest.raises(ActionFailed, match="certificate verify failed"):
            await upload_action(checked, credentials, camera).run(
                dataclasses.replace(MOTION, id=10)
            )
        assert len(peer.received) == 1
        # A plain FTP client is turned away by a server that requires TLS.
        with pytest.raises(ActionFailed, match="550 SSL/TLS required"):
            await upload_action(dataclasses.replace(settings, protocol="FTP"), credentials,
                                camera).run(dataclasses.replace(MOTION, id=11))  # fmt: skip


async def test_refusals_are_action_failures_naming_the_reply(
    server: FtpPeer, credentials: Credentials, camera: Camera
) -> None:
    credentials.set("ftp", "Wrong-Password")
    with pytest.raises(ActionFailed, match=rf"FTP 127.0.0.1:{server.port}: 530 Authentication"):
        await upload_action(ftp_settings(server.port), credentials, camera).run(MOTION)
    closed = free_port()
    with pytest.raises(ActionFailed, match=rf"FTP 127.0.0.1:{closed}: .*Connection refused"):
        await upload_action(ftp_settings(closed), credentials, camera).run(MOTION)
    credentials.set("ftp", FTP_PASSWORD)
    camera.error = RuntimeError("no frames")
    with pytest.raises(ActionFailed, match="no picture from channel 1"):
        await upload_action(ftp_settings(server.port), credentials, camera).run(
            dataclasses.replace(MOTION, id=12)
        )
    assert server.received == []


async def test_a_retry_uploads_the_same_picture_under_the_same_name(
    server: FtpPeer, credentials: Credentials, camera: Camera
) -> None:
    action = upload_action(ftp_settings(server.port), credentials, camera)
    credentials.set("ftp", "Wrong-Password")
    with pytest.raises(ActionFailed):
        await action.run(MOTION)
    credentials.set("ftp", FTP_PASSWORD)
    await action.run(MOTION)
    await action.run(MOTION)  # a second success (the runner never does this) takes anew
    assert len(camera.calls) == 2
    assert len(server.received) == 2


async def test_the_test_upload_is_removed_again(
    server: FtpPeer, credentials: Credentials, camera: Camera
) -> None:
    action = upload_action(ftp_settings(21), credentials, camera)
    tester = NotifyTester(None, action, lambda e: b"", lambda: MOTION.at)  # type: ignore[arg-type]
    await tester.test_ftp(ftp_settings(server.port), FTP_PASSWORD)  # unsaved settings
    (received,) = server.received
    assert received.name.startswith("vigil-test-") and received.suffix == ".txt"
    assert received.parent.parent == server.user_root / "alarms" / "lobby"
    assert not received.exists()  # deleted after the upload
    assert "DELE" in server.commands
    assert camera.calls == []
    with pytest.raises(ActionFailed, match="530"):
        await tester.test_ftp(ftp_settings(server.port), "Wrong-Password")
    with pytest.raises(ActionFailed, match="no server"):
        await tester.test_ftp(ftp_settings(server.port, host=""), FTP_PASSWORD)
