"""The upgrade pieces that need no daemon: the simulated GRUB choice, the Updater's one-at-a-time
rule and records, and what the rauc driver reads from RAUC's output."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from vigil.system import upgrade
from vigil.system.upgrade import (
    RAUC_PROGRESS,
    BootOutcome,
    BundleInfo,
    Progress,
    RaucDriver,
    Updater,
    UpgradeError,
    _primary_bootname,
    firmware_version,
    rauc_reason,
)
from vigil.system.upgrade_sim import FACTORY_ENV, SimDriver, select_slot


def env(**changes: object) -> dict[str, object]:
    return {**FACTORY_ENV, **changes}


@pytest.mark.parametrize(
    ("before", "slot", "after"),
    [
        (env(), "A", env(A_TRY=1)),  # factory: A
        (env(ORDER="B A", B_OK=1), "B", env(ORDER="B A", B_OK=1, B_TRY=1)),  # new primary
        # B was tried and never marked good: A, which stays good, is taken
        (env(ORDER="B A", B_OK=1, B_TRY=1), "A", env(ORDER="B A", B_OK=1, B_TRY=1, A_TRY=1)),
        # every good slot tried: their marks cleared, the first in ORDER again
        (env(A_TRY=1, B_OK=1, B_TRY=1), "A", env(A_TRY=1, B_OK=1, B_TRY=0)),
        (env(A_OK=0, B_OK=0), "A", env(A_OK=0, B_OK=0, A_TRY=1, B_TRY=1)),  # none good: A
    ],
)
def test_select_slot_is_the_boards_grub_script(
    before: dict[str, object], slot: str, after: dict[str, object]
) -> None:
    assert select_slot(before) == slot
    assert before == after


def test_sim_boot_marks_the_try_before_the_slot_starts(tmp_path: Path) -> None:
    driver = SimDriver("vigil-sim", "", tmp_path, "V0.1.0")
    assert driver.boot() == "V0.1.0"
    assert (tmp_path / "grubenv.json").read_text().count('"A_TRY": 1') == 1
    assert asyncio.run(driver.mark_good()) is None  # the factory slot, nothing new
    assert '"A_TRY": 0' in (tmp_path / "grubenv.json").read_text()


class FakeDriver:
    """A driver whose install waits for the test; the Updater's bookkeeping is under test."""

    def __init__(self, error: UpgradeError | None = None) -> None:
        self.release = asyncio.Event()
        self.error = error

    def boot(self) -> str | None:
        return None

    async def install(self, bundle: Path, progress: Progress) -> BundleInfo:
        progress(40)
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return BundleInfo("vigil-sim", "2.0.0")

    async def mark_good(self) -> BootOutcome | None:
        return BootOutcome("Information", "upgradeSucceeded", "slot B runs V2.0.0")


def test_updater_one_at_a_time_and_its_records(tmp_path: Path) -> None:
    records: list[tuple[str, str, str]] = []

    async def scenario() -> None:
        driver = FakeDriver()
        updater = Updater(driver, tmp_path, lambda *record: records.append(record))
        upload = updater.begin()
        upload.write_bytes(b"bundle")
        with pytest.raises(UpgradeError) as busy:
            updater.begin()
        assert busy.value.reason == "deviceBusy"
        task = asyncio.ensure_future(updater.install(upload))
        await asyncio.sleep(0)
        assert (updater.status().upgrading, updater.status().percent) == (True, 40)
        driver.release.set()
        assert (await task).version == "2.0.0"
        assert (updater.status().upgrading, updater.status().percent) == (True, 100)
        assert not upload.exists()
        await updater.mark_good()

    asyncio.run(scenario())
    assert records == [
        ("Information", "upgradeInstalled", "V2.0.0 installed; rebooting into it"),
        ("Information", "upgradeSucceeded", "slot B runs V2.0.0"),
    ]


def test_boot_clears_what_an_interrupted_upgrade_left(tmp_path: Path) -> None:
    (tmp_path / "extract").mkdir()
    (tmp_path / "extract" / "rootfs.img").write_bytes(b"half")
    (tmp_path / "upload.raucb").write_bytes(b"half")
    updater = Updater(SimDriver("vigil-sim", "", tmp_path, "V1"), tmp_path, print)
    assert updater.boot() == "V1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grubenv.json", "slots.json"]


def test_a_refused_install_frees_the_updater(tmp_path: Path) -> None:
    records: list[tuple[str, str, str]] = []

    async def scenario() -> None:
        driver = FakeDriver(UpgradeError("badFirmware", "the bundle is refused: bad"))
        driver.release.set()
        updater = Updater(driver, tmp_path, lambda *record: records.append(record))
        upload = updater.begin()
        with pytest.raises(UpgradeError):
            await updater.install(upload)
        assert (updater.status().upgrading, updater.status().percent) == (False, 0)
        updater.abandon(updater.begin())  # free again

    asyncio.run(scenario())
    assert records == [("Exception", "upgradeFailed", "the bundle is refused: bad")]


def test_rauc_output() -> None:
    progress = [
        RAUC_PROGRESS.match(line)
        for line in ("  0% Installing", " 40% Checking slot rootfs.1", "100% Installing done.")
    ]
    assert [int(m.group(1)) for m in progress if m] == [0, 40, 100]
    assert RAUC_PROGRESS.match("installing") is None
    output = (
        "rauc-Message: 12:58:15.278: Reading bundle: /x.raucb\n"
        "signature verification failed: Verify error: unable to get local issuer certificate\n"
    )
    assert rauc_reason(output).startswith("signature verification failed")
    install = (  # `rauc install` where the kernel has no device mapper (this host's container)
        " 60% Checking manifest contents done.\n100% Installing failed.\n"
        "LastError: Failed mounting bundle: Failed to open /dev/mapper/control: No such device\n"
        "Installing `/tmp/b.raucb` failed\n"
    )
    assert rauc_reason(install) == (
        "Failed mounting bundle: Failed to open /dev/mapper/control: No such device"
    )
    status = {  # the shape of `rauc status --output-format=json` (rauc 1.8)
        "compatible": "vigil-sim",
        "booted": "A",
        "boot_primary": "rootfs.1",
        "slots": [
            {"rootfs.1": {"class": "rootfs", "bootname": "B", "state": "inactive"}},
            {"rootfs.0": {"class": "rootfs", "bootname": "A", "state": "booted"}},
        ],
    }
    assert _primary_bootname(status) == "B"
    assert _primary_bootname({}) is None
    assert firmware_version("2.0.0") == "V2.0.0" and firmware_version("V5.7.1") == "V5.7.1"


def rauc_status(booted: str, primary: str) -> dict[str, object]:
    """`rauc status --output-format=json` (rauc 1.8) of the two-slot boards."""
    return {
        "compatible": "vigil-qemu-x86_64",
        "booted": booted,
        "boot_primary": primary,
        "slots": [
            {"rootfs.0": {"class": "rootfs", "bootname": "A"}},
            {"rootfs.1": {"class": "rootfs", "bootname": "B"}},
        ],
    }


def test_a_fallback_after_an_install_is_a_rollback_though_rauc_calls_the_booted_primary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rauc command line stands in here (test_upgrade_rauc.py runs the real service): after
    # an install to A from B, RAUC's primary is A; GRUB then tried A, which never started, and
    # went back to B, which RAUC's primary (counting GRUB's try marks) names again.
    answers = iter([rauc_status("B", "rootfs.0"), rauc_status("B", "rootfs.1")] * 2)
    calls: list[tuple[str, ...]] = []

    async def rauc(*args: str, timeout: float = 0) -> tuple[int, str]:
        calls.append(args)
        return 0, json.dumps(next(answers)) if "--output-format=json" in args else ""

    monkeypatch.setattr(upgrade, "run_rauc", rauc)
    driver = RaucDriver(state_dir=tmp_path)
    asyncio.run(driver._remember_primary())  # what install does once rauc has installed
    assert (tmp_path / "expected-slot").read_text() == "A"
    outcome = asyncio.run(driver.mark_good())
    assert outcome == BootOutcome("Exception", "upgradeRollback", "slot A did not start; back on B")
    assert ("status", "mark-active", "booted") in calls
    assert not (tmp_path / "expected-slot").exists()  # told once
    next(answers)
    assert asyncio.run(driver.mark_good()) is None
