"""The card through a real vigild: a loop-device card image is formatted over ISAPI, is
recorded to, fills up, is pulled (the device keeps streaming) and put back (recording
resumes), and bad requests change nothing. Needs root and loop devices."""

from __future__ import annotations

import os
import signal
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from tests import loop_card
from tests.integration.rtsp_fixtures import ffprobe
from tests.integration.test_users import add_user
from tests.loop_card import CARD_MB, loops_of, mounted, needs_loop_devices, run
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.record.storage import RETRY_S

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
STORAGE = "/ISAPI/ContentMgmt/Storage"
card_image = loop_card.card_image  # the fixture: a blank card, cleaned up after the test
pytestmark = needs_loop_devices("losetup", "mkfs.ext4", "blkid", "fallocate")


def hdd(device: Vigild, hdd_id: int = 1) -> dict[str, str]:
    reply = device.get(f"{STORAGE}/hdd/{hdd_id}")
    assert reply.status_code == 200, reply.text
    return {child.tag.removeprefix(NS): child.text or "" for child in ET.fromstring(reply.content)}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def log_count(device: Vigild, major: str, minor: str) -> int:
    body = (
        "<CMSearchDescription><searchID>t</searchID>"
        f"<metaId>log.std-cgi.com/{major}/{minor}</metaId><maxResults>100</maxResults>"
        "</CMSearchDescription>"
    )
    reply = device.post("/ISAPI/ContentMgmt/logSearch", body)
    assert reply.status_code == 200, reply.text
    return int(ET.fromstring(reply.content).findtext(f"{NS}totalMatches") or 0)


def wait_logged(device: Vigild, major: str, minor: str, count: int) -> None:
    """The device log has `count` lines of this type: a line follows the state change that
    causes it (the storage state's listeners run first), so a status poll can see it first."""
    wait_for(lambda: log_count(device, major, minor) == count, f"{count} {major}/{minor} lines")


def wait_detached(image: Path) -> None:
    """No loop device left on the card image: `losetup -d` on a device that something else
    (udev's blkid, say) has open only marks it to go at that last close."""
    wait_for(lambda: not loops_of(image), "the card image to be detached", timeout=10)


def rtsp_answers(device: Vigild) -> bool:
    with socket.create_connection(("127.0.0.1", device.rtsp_port), timeout=5) as conn:
        conn.sendall(
            f"OPTIONS rtsp://127.0.0.1:{device.rtsp_port}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode()
        )
        return conn.recv(1024).startswith(b"RTSP/1.0 ")


def live_stream_plays(device: Vigild) -> bool:
    url = f"rtsp://admin:{ADMIN_PASSWORD}@127.0.0.1:{device.rtsp_port}/Streaming/channels/101"
    probe = ffprobe(url)
    return probe.returncode == 0 and "h264" in probe.stdout


def recordings(mount_point: Path) -> set[Path]:
    return set((mount_point / "record" / "video").rglob("*.mp4"))


def quotas(device: Vigild) -> tuple[str, str]:
    doc = ET.fromstring(device.get(f"{STORAGE}/quota/1").content)
    return doc.findtext(f"{NS}videoQuotaRatio") or "", doc.findtext(f"{NS}pictureQuotaRatio") or ""


def format_card(device: Vigild) -> list[int]:
    """Format hdd 1 over ISAPI; the progress seen while it ran."""
    reply = device.put(f"{STORAGE}/hdd/1/format", "")
    assert reply.status_code == 200, reply.text
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc = ET.fromstring(device.get(f"{STORAGE}/hdd/1/formatStatus").content)
        seen.append(int(doc.findtext(f"{NS}percent") or -1))
        if doc.findtext(f"{NS}formating") == "false":
            return seen
        time.sleep(0.05)
    raise AssertionError("format did not finish")


def test_format_fill_pull_and_put_back(vigild_factory, card_image: Path) -> None:  # type: ignore[no-untyped-def]
    device: Vigild = vigild_factory(extra_args=("--sim-card", str(card_image))).start()
    device.activate()
    card = hdd(device)
    assert (card["status"], card["vigilState"]) == ("unformatted", "uninitialized")
    assert (card["hddType"], card["property"], card["capacity"]) == ("SD", "RW", str(CARD_MB))

    # Refused formats change nothing.
    assert device.put(f"{STORAGE}/hdd/2/format", "").status_code == 404
    assert device.put(f"{STORAGE}/hdd/x/format", "").status_code == 404
    assert device.put(f"{STORAGE}/hdd/1/format?formatType=FAT32", "").status_code == 400
    assert add_user(device, "guard").status_code == 200
    guard = device.session("guard", "Oper-Pass-77")
    denied = guard.put(f"{device.url}{STORAGE}/hdd/1/format", data="")
    assert denied.status_code == 403
    assert ET.fromstring(denied.content).findtext(f"{NS}subStatusCode") == "noPermission"
    assert hdd(device)["status"] == "unformatted"
    assert log_count(device, "Operation", "remoteFormatHdd") == 0

    seen = format_card(device)
    assert seen == sorted(seen) and seen[-1] == 100
    card = hdd(device)
    assert (card["status"], card["vigilState"], card["formatType"]) == ("ok", "normal", "EXT4")
    assert CARD_MB * 0.8 <= int(card["capacity"]) <= CARD_MB
    assert 0 < int(card["freeSpace"]) <= int(card["capacity"])
    loop = card["hddPath"]
    assert loops_of(card_image) == [loop]
    assert run("blkid", "-p", "-s", "LABEL", "-s", "TYPE", "-o", "value", loop).split() == [
        "VIGIL",
        "ext4",
    ]
    mount_point = device.data_dir / "card"
    options = run("findmnt", "-n", "-o", "OPTIONS", str(mount_point)).split(",")
    assert {"noatime", "nodev", "nosuid", "noexec", "commit=10"} <= set(options)
    assert (mount_point / "record").is_dir() and (mount_point / "picture").is_dir()
    assert log_count(device, "Operation", "remoteFormatHdd") == 1
    wait_for(lambda: bool(recordings(mount_point)), "the default continuous recording")

    # A full card: `full`, and with overwrite off `diskfull`; room again: `normal`.
    overwrite_off = "<StoragePolicy><overwrite>false</overwrite></StoragePolicy>"
    assert device.put(f"{STORAGE}/policy", overwrite_off).status_code == 200
    free = os.statvfs(mount_point).f_bavail * os.statvfs(mount_point).f_frsize
    filler = mount_point / "record" / "filler"
    run("fallocate", "-l", str(free - 256 * 1024), str(filler))
    wait_for(lambda: hdd(device)["vigilState"] == "full", "a full card")
    assert hdd(device)["status"] == "ok"
    wait_logged(device, "Exception", "diskFull", 1)
    filler.unlink()
    wait_for(lambda: hdd(device)["vigilState"] == "normal", "room on the card")
    wait_logged(device, "Information", "diskFullCleared", 1)

    # Pulled: lazily unmounted, then the loop device goes, at its last close: a file held open
    # on it past the daemon's retry must not get the card mounted again.
    before = recordings(mount_point)  # (the new file may come before the test looks again)
    held = (mount_point / "held").open("w")
    run("umount", "-l", str(mount_point))
    run("losetup", "-d", loop)
    wait_for(lambda: hdd(device)["status"] in ("error", "notexist"), "the card to be gone")
    time.sleep(RETRY_S + 1.5)
    assert hdd(device)["vigilState"] == "error" and not mounted(mount_point)
    held.close()
    wait_for(lambda: hdd(device)["vigilState"] == "absent", "an empty slot")
    wait_logged(device, "Exception", "diskError", 1)
    assert device.get("/ISAPI/System/deviceInfo").status_code == 200
    assert rtsp_answers(device) and live_stream_plays(device)

    # Put back: picked up on its own, and recording resumes in a new segment.
    run("losetup", "--find", "--show", str(card_image))
    wait_for(lambda: hdd(device)["vigilState"] == "normal", "the card back")
    wait_logged(device, "Information", "diskErrorCleared", 1)
    assert mounted(mount_point)
    wait_for(lambda: bool(recordings(mount_point) - before), "recording to resume")

    # Pulled with `losetup -d` alone while mounted (the kernel defers the detach).
    run("losetup", "-d", hdd(device)["hddPath"])
    wait_for(lambda: hdd(device)["vigilState"] == "absent", "the card to be gone again")
    assert not loops_of(card_image) and not mounted(mount_point)
    wait_logged(device, "Exception", "diskError", 2)
    run("losetup", "--find", "--show", str(card_image))
    wait_for(lambda: hdd(device)["vigilState"] == "normal", "the card back again")

    # A stopped daemon leaves nothing mounted or attached.
    assert device.stop() == 0
    assert not mounted(mount_point)
    wait_detached(card_image)


def test_quota_and_policy_bad_input_changes_nothing(vigild_factory, card_image: Path) -> None:  # type: ignore[no-untyped-def]
    device: Vigild = vigild_factory(extra_args=("--sim-card", str(card_image))).start()
    device.activate()
    assert quotas(device) == ("80", "20")
    bad_quotas = [
        "<diskQuota><videoQuotaRatio>90",  # not XML
        "<diskQuota><videoQuotaRatio>90</videoQuotaRatio><pictureQuotaRatio>20"
        "</pictureQuotaRatio></diskQuota>",  # more than 100 %
        "<diskQuota><videoQuotaRatio>-1</videoQuotaRatio></diskQuota>",
        "<diskQuota><videoQuotaRatio>ten</videoQuotaRatio></diskQuota>",
        "<diskQuota><type>fixed</type><videoQuotaRatio>50</videoQuotaRatio></diskQuota>",
        "<diskQuota><id>2</id><videoQuotaRatio>50</videoQuotaRatio></diskQuota>",
        "<diskQuota><videoQuotaRatio>50</videoQuotaRatio><colour>red</colour></diskQuota>",
        "<StoragePolicy><overwrite>false</overwrite></StoragePolicy>",  # wrong root
    ]
    for body in bad_quotas:
        reply = device.put(f"{STORAGE}/quota/1", body)
        assert reply.status_code == 400, (body, reply.text)
    assert device.put(f"{STORAGE}/quota/7", "<diskQuota/>").status_code == 404
    mixed = (
        "<diskQuotaList><diskQuota><id>1</id><videoQuotaRatio>50</videoQuotaRatio></diskQuota>"
        "<diskQuota><id>1</id><videoQuotaRatio>60</videoQuotaRatio></diskQuota></diskQuotaList>"
    )
    assert device.put(f"{STORAGE}/quota", mixed).status_code == 400
    for body in (
        "<StoragePolicy><expiryDays>366</expiryDays></StoragePolicy>",
        "<StoragePolicy><overwrite>maybe</overwrite></StoragePolicy>",
        "<StoragePolicy><expiryDays>7</expiryDays><x/></StoragePolicy>",
    ):
        assert device.put(f"{STORAGE}/policy", body).status_code == 400, body
    assert quotas(device) == ("80", "20")
    policy = ET.fromstring(device.get(f"{STORAGE}/policy").content)
    assert (policy.findtext(f"{NS}overwrite"), policy.findtext(f"{NS}expiryDays")) == ("true", "0")

    # Good input is taken and persisted.
    body = (
        "<diskQuota><id>1</id><type>ratio</type><videoQuotaRatio>70</videoQuotaRatio>"
        "<pictureQuotaRatio>30</pictureQuotaRatio><totalVideoVolume>9</totalVideoVolume>"
        "</diskQuota>"
    )
    assert device.put(f"{STORAGE}/quota/1", body).status_code == 200
    assert quotas(device) == ("70", "30")
    policy_body = (
        "<StoragePolicy><overwrite>false</overwrite><expiryDays>30</expiryDays></StoragePolicy>"
    )
    assert device.put(f"{STORAGE}/policy", policy_body).status_code == 200
    config = (device.data_dir / "config.toml").read_text()
    assert "record_quota_percent = 70" in config and "expiry_days = 30" in config


def test_write_protected_card_is_read_only(vigild_factory, card_image: Path) -> None:  # type: ignore[no-untyped-def]
    run("mkfs.ext4", "-q", "-F", "-L", "VIGIL", str(card_image))
    loop = run("losetup", "-r", "--find", "--show", str(card_image))
    device: Vigild = vigild_factory(extra_args=("--sim-card", loop)).start()
    device.activate()
    card = hdd(device)
    assert (card["status"], card["property"], card["vigilState"]) == ("ok", "RO", "read-only")
    refused = device.put(f"{STORAGE}/hdd/1/format", "")
    assert refused.status_code == 403
    assert ET.fromstring(refused.content).findtext(f"{NS}subStatusCode") == "hddReadOnly"
    assert device.stop() == 0
    assert loops_of(card_image) == [loop]  # a loop device handed in stays attached


def test_killed_daemon_finds_its_card_again(vigild_factory, card_image: Path) -> None:  # type: ignore[no-untyped-def]
    device: Vigild = vigild_factory(extra_args=("--sim-card", str(card_image))).start()
    device.activate()
    format_card(device)
    assert hdd(device)["vigilState"] == "normal"
    device.stop(signal.SIGKILL)
    assert len(loops_of(card_image)) == 1 and mounted(device.data_dir / "card")
    device.start()
    card = hdd(device)
    assert card["vigilState"] == "normal" and loops_of(card_image) == [card["hddPath"]]
    assert "already mounted" in device.output()
    assert device.stop() == 0
    assert not mounted(device.data_dir / "card")
    wait_detached(card_image)
