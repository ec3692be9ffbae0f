"""The rauc driver against the real RAUC service: `rauc service` on a private D-Bus session bus
(RAUC uses the session bus when DBUS_STARTER_BUS_TYPE=session), two slot files as the raw
`rootfs` slots, the `noop` bootloader and this module's CA as the keyring.

The bundles are `plain`: a verity bundle is installed through the device mapper
(/dev/mapper/control), which this host's container lacks; the device's kernel has it (dm-verity).
Needs root (RAUC loop-mounts the bundle).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bundles import bundle
from vigil.system.upgrade import RaucDriver, UpgradeError
from vigil_tools.image.keys import SigningKeys, ensure_keys

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="RAUC loop-mounts bundles: root only")
SLOT_BYTES = 8 * 1024 * 1024


def system_conf(directory: Path, keyring: Path) -> Path:
    slots = "".join(
        f"\n[slot.rootfs.{i}]\ndevice={directory / f'slot{name}.img'}\ntype=raw\nbootname={name}\n"
        for i, name in enumerate("AB")
    )
    conf = directory / "system.conf"
    conf.write_text(
        f"[system]\ncompatible=vigil-sim\nbootloader=noop\ndata-directory={directory / 'data'}\n"
        f"mountprefix={directory / 'mnt'}\n\n[keyring]\npath={keyring}\n{slots}"
    )
    return conf


def wait_for(check: object, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def keys(tmp_path: Path) -> SigningKeys:
    return ensure_keys(tmp_path / "keys")


@pytest.fixture
def service(tmp_path: Path, keys: SigningKeys, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """RAUC's service on a private bus; the folder of its slot files and system.conf."""
    for name in "AB":
        (tmp_path / f"slot{name}.img").write_bytes(b"\0" * SLOT_BYTES)
    (tmp_path / "data").mkdir()
    (tmp_path / "mnt").mkdir()
    conf = system_conf(tmp_path, keys.ca_cert)
    socket = tmp_path / "bus"
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={socket}")
    monkeypatch.setenv("DBUS_STARTER_BUS_TYPE", "session")
    log = (tmp_path / "rauc.log").open("wb")
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address=unix:path={socket}"],
        stderr=subprocess.DEVNULL,
    )
    rauc = None
    try:
        wait_for(socket.exists, "the D-Bus socket")
        rauc = subprocess.Popen(
            ["rauc", f"--conf={conf}", "service", "--override-boot-slot=A"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        probe = ["rauc", "status", "--output-format=json"]
        wait_for(lambda: subprocess.run(probe, capture_output=True).returncode == 0, "rauc")
        yield tmp_path
    finally:
        for proc in (rauc, bus):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        log.close()


def test_install_reports_progress_and_writes_the_other_slot(
    service: Path, keys: SigningKeys
) -> None:
    made = bundle(service, keys, "2.1.0", bundle_format="plain")
    root = (service / "2.1.0.squashfs").read_bytes()
    driver = RaucDriver(conf=str(service / "system.conf"))
    progress: list[int] = []
    info = asyncio.run(driver.install(made, progress.append))
    assert (info.compatible, info.version) == ("vigil-sim", "2.1.0")
    assert progress[-1] == 100 and 80 in progress and progress == sorted(progress)
    assert (service / "slotB.img").read_bytes()[: len(root)] == root
    assert (service / "slotA.img").read_bytes() == b"\0" * SLOT_BYTES
    assert asyncio.run(driver.mark_good()) is None  # booted A is the primary: no fallback


@pytest.mark.parametrize(
    ("what", "reason", "words"),
    [("foreign", "badDevType", "vigil-other"), ("stranger", "badFirmware", "signature")],
)
def test_refused_bundle_writes_nothing(
    service: Path, keys: SigningKeys, what: str, reason: str, words: str
) -> None:
    if what == "foreign":
        made = bundle(service, keys, "2.2.0", board="other", bundle_format="plain")
    else:
        made = bundle(service, ensure_keys(service / "stranger"), "2.3.0", bundle_format="plain")
    driver = RaucDriver(conf=str(service / "system.conf"))
    with pytest.raises(UpgradeError) as refused:
        asyncio.run(driver.install(made, lambda percent: None))
    assert refused.value.reason == reason and words in str(refused.value)
    for name in "AB":
        assert (service / f"slot{name}.img").read_bytes() == b"\0" * SLOT_BYTES
