"""The rig scenario (issue 7): the qemu-x86_64 board image, booted in QEMU with its emulated
hardware driven by the real Linux drivers, used as a technician and a VMS would use a camera.

One machine for the module, the tests in order: boot (power-on to RTSP ready is printed) →
discover over SADP → activate → a static address → the main stream plays (ffprobe) → record to
the SD card, search and download a clip → an alarm input on gpio-sim drives the relay line and
`alertStream` → the dome on the host-side simulator goes to a preset → the light on i2c-stub
switches the IR-cut line → a power cut mid-recording leaves every clip playable → an upgrade
comes back on the other slot → a bundle whose vigild cannot start is rolled back → the SD card
pulled through the monitor gives `diskerror`.

The test process enters the rig's network namespace for the module (`netns.entered`): its own
clients (requests, `vigil discover`, ffprobe) reach the guest as hosts on its LAN would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import serial

from tests.alerts import alert_stream, event
from tests.bundles import bundle as signed_bundle
from tests.bundles import flip_byte, truncate
from tests.integration.test_record_api import search, search_body
from tests.integration.test_record_download_api import DOWNLOAD, request_body
from tests.integration.test_storage import format_card, hdd, log_count
from tests.isapi_xml import put_ok, refusal, text, xml
from tests.rig.rig_device import Rig, RigDevice, ffprobe_stream, wait_serving
from tests.rig.rig_wait import wait_for
from tests.vigild import ADMIN_PASSWORD, REPO
from vigil.ptz import pelco_d
from vigil.ptz.commands import Preset, PresetAction
from vigil.ptz.simdome import DomeSimulator
from vigil_tools.image.build import build_image
from vigil_tools.image.disk import DISK_NAME
from vigil_tools.image.keys import ensure_keys
from vigil_tools.rig.netns import entered
from vigil_tools.rig.spec import RigBoard

pytestmark = [pytest.mark.rig, pytest.mark.timeout(900)]

DISK_BYTES = 2 * 1024**3
SADP_TIMEOUT = "20"  # seconds for an answer: the emulated device answers slowly at times
BOOT_S = 300  # power-on to serving under emulation, with room for a loaded machine
STATIC = "192.168.1.70"
PTZ = "/ISAPI/PTZCtrl/channels/1"
IRCUT = "/ISAPI/Image/channels/1/IrcutFilter"
UPGRADE = "/ISAPI/System/updateFirmware"
DAY_LUX, NIGHT_LUX = 300.0, 1.0
RIG_VERSION = "9.9.9"  # the new bundle's version
ARTIFACTS = REPO / "build" / "test-artifacts" / "rig"


@pytest.fixture(scope="module")
def image(board: RigBoard) -> Path:
    """The board's disk image (build/<board>/disk.img, as `make image` leaves it; built here
    when missing)."""
    out = REPO / "build" / board.name
    if not (out / DISK_NAME).is_file():
        build_image(board.name, out, Path.home() / ".cache" / "vigil")
    return out / DISK_NAME


@pytest.fixture(scope="module")
def rig(board: RigBoard, image: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("scenario")
    disk = work / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
    # A card larger than the image, as in the field: the first boot grows /data over the rest
    # (vigil-data-setup), which holds the bundles uploaded for the upgrades.
    os.truncate(disk, DISK_BYTES)
    machine = Rig(board, work / "rig")
    started = time.monotonic()
    machine.up(disk)
    try:
        with entered(machine.state.netns):
            wait_serving(str(board.rig.guest_address.ip), BOOT_S)
            print(f"\nFIGURE power-on to RTSP ready (TCG): {time.monotonic() - started:.1f} s")
            yield machine
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(machine.folder / "console.log", ARTIFACTS / "scenario-console.log")
        machine.down()


@pytest.fixture(scope="module")
def device(rig: Rig, board: RigBoard, tmp_path_factory: pytest.TempPathFactory) -> RigDevice:
    data = tmp_path_factory.mktemp("guest")
    return RigDevice(data_dir=data, address=str(board.rig.guest_address.ip))


def vigil(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """The host CLI, as a user runs it (inside the rig's namespace, where the test is)."""
    return subprocess.run(
        [str(REPO / ".venv/bin/vigil"), *args],
        input=f"{password}\n" if password else None,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_the_image_boots_slot_a_and_serves(rig: Rig, device: RigDevice) -> None:
    assert "Vigil: booting slot A" in rig.console()
    # Started (Type=notify) once it says READY=1: after all its listeners and the slot's
    # mark-good, so a few seconds after RTSP answers under emulation; and watched (its loop
    # pings every 30 s).
    wait_for(
        "vigild to be active (READY=1)",
        lambda: rig.guest("systemctl is-active vigild || true").strip() == "active",
        60,
    )
    shown = rig.guest("systemctl show -p Type -p WatchdogUSec -p StatusText vigild")
    unit = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    assert (unit["Type"], unit["WatchdogUSec"]) == ("notify", "1min")
    assert unit["StatusText"].startswith("serving on board qemu-x86_64")
    assert "ID=vigil" in rig.guest("cat /etc/os-release")
    assert rig.guest("findmnt -no FSTYPE,OPTIONS /").startswith("squashfs ro")


def test_discovered_and_activated_over_sadp(device: RigDevice) -> None:
    found = vigil("discover", "--json", "--timeout", "3")
    assert found.returncode == 0, found.stderr
    (camera,) = [d for d in json.loads(found.stdout) if d["ipv4"] == device.address]
    assert (camera["model"], camera["activated"]) == ("VGL-QEMU-X86", False)
    done = vigil(
        "activate", camera["serial"], "--timeout", SADP_TIMEOUT, "--password-stdin",
        password=ADMIN_PASSWORD,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "success" in done.stdout
    assert device.get("/ISAPI/System/deviceInfo").status_code == 200  # digest, new password
    device.serial_number = camera["serial"]


def test_a_static_address_set_over_sadp(device: RigDevice) -> None:
    done = vigil(
        "set-network", device.serial_number, "--ip", STATIC, "--mask", "24",
        "--gateway", "192.168.1.1", "--timeout", SADP_TIMEOUT, "--password-stdin",
        password=ADMIN_PASSWORD,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    device.address = STATIC
    wait_serving(STATIC, 30)
    found = vigil("discover", "--json", "--timeout", "3")
    assert [d["ipv4"] for d in json.loads(found.stdout)] == [STATIC]


def test_the_main_stream_plays(device: RigDevice) -> None:
    config = xml(device.get("/ISAPI/Streaming/channels/101"))
    size = (text(config, "Video/videoResolutionWidth"), text(config, "Video/videoResolutionHeight"))
    stream = ffprobe_stream(device.rtsp_url(ADMIN_PASSWORD))
    assert stream["codec_name"] == "h264"
    assert (stream["width"], stream["height"]) == size
    assert int(stream["nb_read_frames"]) > 0


def test_the_card_records_and_a_clip_downloads(device: RigDevice, tmp_path: Path) -> None:
    assert hdd(device)["hddType"] == "SD"
    format_card(device)
    wait_for("a recording on the card", lambda: search(device, search_body())[1] > 0, 120)
    time.sleep(6)
    _, _, matches = search(device, search_body())
    clip = tmp_path / "clip.mp4"
    reply = device.post(DOWNLOAD, request_body(matches[0].uri), stream=True)
    assert reply.status_code == 200, reply.text
    clip.write_bytes(reply.content)
    assert plays(clip)


def test_the_figures_root_size_and_memory_while_streaming_and_recording(
    rig: Rig, device: RigDevice, image: Path
) -> None:
    root_mb = image.with_name("rootfs.squashfs").stat().st_size / 1e6
    pid = rig.guest("systemctl show -p MainPID --value vigild").strip()
    with subprocess.Popen(
        ["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i",
         device.rtsp_url(ADMIN_PASSWORD), "-t", "20", "-f", "null", "-"],
    ) as viewer:  # fmt: skip
        time.sleep(12)  # a client streaming while the card records
        status = rig.guest(f"cat /proc/{pid}/status")
        viewer.wait(60)
    rss_mb = int(re.search(r"VmRSS:\s+(\d+) kB", status)[1]) / 1024  # type: ignore[index]
    print(f"\nFIGURE root image (squashfs): {root_mb:.1f} MB (target <= 250)")
    print(
        f"FIGURE vigild resident memory, streaming and recording: {rss_mb:.0f} MB (target <= 120)"
    )
    assert root_mb <= 250


def plays(clip: Path) -> bool:
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(clip), "-f", "null", "-"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return decoded.returncode == 0 and not decoded.stderr.strip()


def test_an_alarm_input_drives_the_relay_and_the_alert_stream(rig: Rig, device: RigDevice) -> None:
    # Input 1 notifies the surveillance centre (alertStream) and closes relay 1.
    linkage = (
        "<EventTrigger><id>IO-1</id><EventTriggerNotificationList><EventTriggerNotification>"
        "<id>center</id><notificationMethod>center</notificationMethod>"
        "</EventTriggerNotification><EventTriggerNotification>"
        "<id>IO</id><notificationMethod>IO</notificationMethod>"
        "<outputIOPortID>1</outputIOPortID></EventTriggerNotification>"
        "</EventTriggerNotificationList></EventTrigger>"
    )
    put_ok(device, "/ISAPI/Event/triggers/IO-1", linkage)
    with rig.shell() as shell, alert_stream(device) as alerts:
        lines = rig.hardware(shell)
        assert lines.level("relay-out-1") == 0
        lines.drive("alarm-in-1", high=False)  # the contact closes: the pulled-up line goes low
        alert = alerts.wait_for(event("io"), timeout=30)
        assert alert["inputIOPortID"] == "1"
        wait_for("the relay line", lambda: lines.level("relay-out-1") == 1, 10)
        lines.drive("alarm-in-1", high=True)
        alerts.wait_for(event("io", "inactive"), timeout=30)


def test_the_dome_goes_to_a_preset(rig: Rig, device: RigDevice) -> None:
    port = serial.Serial(str(rig.folder / "dome"), 9600, timeout=0.1)
    dome = DomeSimulator(port, "pelco-d", 1)
    dome.start()
    try:
        put_ok(device, f"{PTZ}/presets/3", "<PTZPreset><presetName>gate</presetName></PTZPreset>")
        put_ok(
            device,
            f"{PTZ}/absolute",
            "<PTZData><AbsoluteHigh><elevation>300</elevation>"
            "<azimuth>1800</azimuth><absoluteZoom>10</absoluteZoom></AbsoluteHigh></PTZData>",
        )
        mark = len(dome.received)
        put_ok(device, f"{PTZ}/presets/3/goto")
        goto = pelco_d.encode(1, Preset(PresetAction.GOTO, 3))
        wait_for("the goto frame", lambda: goto in [r.raw for r in dome.received[mark:]], 10)
    finally:
        dome.stop()
        port.close()


def test_the_light_level_switches_the_ircut_line(rig: Rig, device: RigDevice) -> None:
    body = (
        "<IrcutFilter><IrcutFilterType>auto</IrcutFilterType><nightToDayFilterLevel>4"
        "</nightToDayFilterLevel><nightToDayFilterTime>5</nightToDayFilterTime></IrcutFilter>"
    )
    with rig.shell() as shell:
        lines = rig.hardware(shell)
        lines.set_lux(DAY_LUX)
        put_ok(device, IRCUT, body)
        wait_for("day", lambda: ircut_state(device) == "day", 30)
        assert lines.level("ir-led") == 0
        lines.watch("ircut-night", seconds=30)
        lines.set_lux(NIGHT_LUX)
        wait_for("night", lambda: ircut_state(device) == "night", 40)
        assert lines.level("ir-led") == 1
        wait_for("the line watch", lambda: lines.watched("ircut-night") is not None, 60)
        assert lines.watched("ircut-night")  # the filter's motor got its night pulse


def ircut_state(device: RigDevice) -> str:
    return text(xml(device.get(f"{IRCUT}/status")), "currentState")


def test_a_power_cut_mid_recording_leaves_every_clip_playable(
    rig: Rig, device: RigDevice, tmp_path: Path
) -> None:
    time.sleep(10)  # the recorder is well into a segment
    cut = datetime.now(UTC)
    rig.hmp("system_reset")
    boots = rig.console().count("Vigil: booting slot")
    wait_for("the reboot", lambda: rig.console().count("Vigil: booting slot") > boots, 60)
    wait_serving(device.address, BOOT_S)
    _, total, matches = search(device, search_body(max_results=50))
    assert total == len(matches) > 0
    # The segment cut short is in the index, closed at its last whole fragment before the cut.
    assert max(m.end for m in matches) > cut - timedelta(seconds=15)
    for number, match in enumerate(matches):
        clip = tmp_path / f"clip{number}.mp4"
        reply = device.post(DOWNLOAD, request_body(match.uri))
        assert reply.status_code == 200, reply.text
        clip.write_bytes(reply.content)
        assert plays(clip), match


@dataclass(frozen=True)
class Bundles:
    new: Path  # the image's root as a new version
    broken: Path  # a root whose vigild cannot start (its board is missing)


@pytest.fixture(scope="module")
def bundles(board: RigBoard, image: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    """Two bundles signed with the development key the image trusts (`vigil bundle`)."""
    work = tmp_path_factory.mktemp("bundles")
    squashfs = image.with_name("rootfs.squashfs")
    root = work / "root"
    run("unsquashfs", "-q", "-d", str(root), str(squashfs))
    (root / "etc/default/vigild").write_text("VIGIL_BOARD=no-such-board\n")
    broken = work / "broken.squashfs"
    # gzip: quick to make, and GRUB reads it (as it reads the image's xz).
    run("mksquashfs", str(root), str(broken), "-noappend", "-quiet", "-comp", "gzip")
    shutil.rmtree(root)
    made = Bundles(work / "new.raucb", work / "broken.raucb")
    for rootfs, out, version in ((squashfs, made.new, RIG_VERSION), (broken, made.broken, "0.0.1")):
        done = vigil("bundle", "--board", board.name, "--rootfs", str(rootfs), "--version",
                     version, "--out", str(out))  # fmt: skip
        assert done.returncode == 0, done.stderr
    return made


def run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{argv[0]}: {done.stderr}"


def rauc_status(rig: Rig) -> dict[str, Any]:
    output = rig.guest("rauc status --detailed --output-format=json 2>/dev/null")
    return json.loads(output[output.index("{") : output.rindex("}") + 1])


def slot_of(status: dict[str, Any], bootname: str) -> dict[str, Any]:
    for entry in status["slots"]:
        for slot in entry.values():
            if slot.get("bootname") == bootname:
                return dict(slot)
    raise AssertionError(f"no slot {bootname} in {status}")


def slot_bundle(status: dict[str, Any], bootname: str) -> str:
    slot = slot_of(status, bootname)
    return str((slot.get("slot_status") or {}).get("bundle", {}).get("version", ""))


def upgrade(rig: Rig, device: RigDevice, bundle: Path) -> int:
    """`vigil upgrade` of `bundle`, once the device has rebooted; the console's boot count."""
    boots = rig.console().count("Vigil: booting slot")
    done = vigil("upgrade", device.address, str(bundle), "--password-stdin",
                 password=ADMIN_PASSWORD)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return boots


def test_tampered_foreign_unsigned_and_truncated_bundles_change_nothing(
    rig: Rig, device: RigDevice, board: RigBoard, tmp_path: Path
) -> None:
    keys = ensure_keys()
    mine = signed_bundle(tmp_path / "mine", keys, "9.9.8", board=board.name)
    size = mine.stat().st_size
    refused = {
        "tampered": (flip_byte(mine, tmp_path / "tampered.raucb", size // 2), "badFirmware"),
        "truncated": (truncate(mine, tmp_path / "truncated.raucb", size - 700), "badFirmware"),
        "foreign": (signed_bundle(tmp_path / "sim", keys, "9.9.8", board="sim"), "badDevType"),
        "unsigned by our CA": (
            signed_bundle(tmp_path / "other", ensure_keys(tmp_path / "keys"), "9.9.8",
                        board=board.name),
            "badFirmware",
        ),
    }  # fmt: skip
    before = rauc_status(rig)
    for what, (path, sub) in refused.items():
        reply = device.session().put(device.url + UPGRADE, data=path.read_bytes(), timeout=300)
        code, sub_status, message = refusal(reply)
        assert (code, sub_status) == (400, sub), (what, reply.text)
        if what == "tampered":  # found by veritysetup before RAUC wrote anything
            assert "does not match its signed hash" in message, message
    after = rauc_status(rig)
    assert after["booted"] == before["booted"] == "A"
    assert after["boot_primary"] != "rootfs.1"  # the other slot never became the one to boot
    assert slot_of(after, "B") == slot_of(before, "B")  # no install began: nothing recorded
    assert log_count(device, "Exception", "upgradeFailed") == len(refused)


def test_an_upgrade_comes_back_on_the_other_slot(
    rig: Rig, device: RigDevice, bundles: Bundles
) -> None:
    assert rauc_status(rig)["booted"] == "A"
    boots = upgrade(rig, device, bundles.new)
    wait_for("the reboot", lambda: rig.console().count("Vigil: booting slot") > boots, 120)
    wait_serving(device.address, BOOT_S)
    assert re.findall(r"Vigil: booting slot ([AB])", rig.console())[boots:] == ["B"]
    status = rauc_status(rig)
    assert status["booted"] == "B"
    assert slot_bundle(status, "B") == RIG_VERSION
    assert log_count(device, "Information", "upgradeInstalled") == 1


def test_a_slot_whose_vigild_never_starts_is_rolled_back(
    rig: Rig, device: RigDevice, bundles: Bundles
) -> None:
    boots = upgrade(rig, device, bundles.broken)
    # slot A is tried, its vigild fails until systemd reboots, GRUB goes back to slot B
    wait_for("two boots", lambda: rig.console().count("Vigil: booting slot") >= boots + 2, 600)
    wait_serving(device.address, BOOT_S)
    slots = re.findall(r"Vigil: booting slot ([AB])", rig.console())[boots:]
    assert slots[:2] == ["A", "B"], slots
    assert rauc_status(rig)["booted"] == "B"
    # vigild marks its slot good (and finds the rollback) once everything serves, and the
    # device log writes from its queue: the record comes a little after the API answers.
    rolled_back = lambda: log_count(device, "Exception", "upgradeRollback") == 1  # noqa: E731
    wait_for("the upgradeRollback record", rolled_back, 120)


def test_the_card_pulled_through_the_monitor_raises_diskerror(rig: Rig, device: RigDevice) -> None:
    with alert_stream(device) as alerts:
        rig.hmp("eject -f card")
        alerts.wait_for(event("diskerror"), timeout=60)
    assert hdd(device)["status"] != "ok"
