"""The simulated board's upgrades: what RAUC and the qemu-x86_64 GRUB script do, on the host.

Install (as `rauc install` would): `rauc info --keyring` checks the signature against the board's
CA and reads the manifest, whose `compatible` must be this board's; `rauc extract --keyring`
checks the payload (the verity hash tree, so one flipped byte is caught) and unpacks the root
image, whose size and SHA-256 must be the manifest's; only then does the image become the other
slot's file (`<data>/update/slot-<A|B>.img`, an atomic rename) and that slot the primary. A
refused bundle leaves the slots, their state and the running version as they were.

Boot (at each start of vigild, the simulated reboot re-executing the daemon): the bootloader's
environment (`grubenv.json`: ORDER, A_OK, B_OK, A_TRY, B_TRY) is read and a slot chosen exactly
as `board/qemu-x86_64/grub.cfg` does: the first slot in ORDER that is OK and not tried, marked
tried before it "starts". Slot A is the factory slot: the code that is running, with no file.
A slot installed from a bundle starts when its root holds vigild where the unit runs it
(`/opt/vigil/venv/bin/vigild`): a root without it is a vigild that cannot start, which is how a
"bad" bundle is made honestly. The daemon then exits with an error, as vigild would fail under
systemd, and the next start (systemd's restart, then the reboot) takes the other slot. A start that
serves the API marks its slot good (`rauc status mark-good`: X_OK=1, X_TRY=0).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from vigil.config.atomic import fsync_dir, write_atomic
from vigil.system.upgrade import (
    EXTRACT_NAME,
    BootError,
    BootOutcome,
    BundleInfo,
    Progress,
    UpgradeError,
    bundle_info,
    firmware_version,
    rauc_reason,
    run_rauc,
)

SLOTS = ("A", "B")
# What the root must hold for vigild to start: rootfs-overlay's vigild.service runs it.
VIGILD = "opt/vigil/venv/bin/vigild"
ENV_NAME, SLOTS_NAME = "grubenv.json", "slots.json"
FACTORY_ENV = {"ORDER": "A B", "A_OK": 1, "B_OK": 0, "A_TRY": 0, "B_TRY": 0}
POLL_S = 0.2
HASH_CHUNK = 1024 * 1024


def select_slot(env: dict[str, Any]) -> str:
    """The slot GRUB starts (board/qemu-x86_64/grub.cfg), marking it tried in `env`."""
    for again in (False, True):
        if again:  # no slot good and untried: the good ones are tried again
            for slot in SLOTS:
                if env[f"{slot}_OK"] == 1:
                    env[f"{slot}_TRY"] = 0
        for slot in env["ORDER"].split():
            ok, tried = env[f"{slot}_OK"], env[f"{slot}_TRY"]
            env[f"{slot}_TRY"] = 1
            if ok == 1 and tried == 0:
                return slot
    env["A_TRY"] = 1
    return "A"  # no good slot at all: the factory slot


class SimDriver:
    """Slots as files in `work_dir`; the bootloader's environment as a JSON file beside them."""

    def __init__(self, compatible: str, keyring: str, work_dir: Path, factory: str) -> None:
        self.compatible, self.keyring, self.work_dir = compatible, keyring, work_dir
        self.factory = factory  # the running code's version: slot A's until A is replaced

    # -- state --------------------------------------------------------------------------------
    def _load(self, name: str, default: dict[str, Any]) -> dict[str, Any]:
        try:
            return {**default, **json.loads((self.work_dir / name).read_text())}
        except (FileNotFoundError, json.JSONDecodeError):
            return dict(default)

    def _save(self, name: str, value: dict[str, Any]) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.work_dir / name, json.dumps(value, indent=1).encode())

    def _env(self) -> dict[str, Any]:
        return self._load(ENV_NAME, FACTORY_ENV)

    def _slots(self) -> dict[str, Any]:
        factory = {"version": None, "image": None, "confirmed": True}
        empty = {"version": None, "image": None, "confirmed": False}
        return self._load(SLOTS_NAME, {"A": factory, "B": empty, "booted": "A"})

    def _version(self, slots: dict[str, Any], slot: str) -> str:
        version = slots[slot]["version"]
        return firmware_version(version) if version else self.factory

    # -- boot ---------------------------------------------------------------------------------
    def boot(self) -> str:
        env = self._env()
        slot = select_slot(env)
        self._save(ENV_NAME, env)  # the try mark is saved before the slot starts
        slots = self._slots()
        slots["booted"] = slot
        self._save(SLOTS_NAME, slots)
        image = slots[slot]["image"]
        if image and not _holds(self.work_dir / image, VIGILD):
            raise BootError(
                f"slot {slot} ({self._version(slots, slot)}): its root has no /{VIGILD}, "
                "vigild cannot start; the next start takes the other slot"
            )
        return self._version(slots, slot)

    async def mark_good(self) -> BootOutcome | None:
        env, slots = self._env(), self._slots()
        booted = slots["booted"]
        env[f"{booted}_OK"], env[f"{booted}_TRY"] = 1, 0
        primary = env["ORDER"].split()[0]
        outcome = None
        if booted != primary:  # the primary did not start: mark it bad, this one active
            env[f"{primary}_OK"], env[f"{primary}_TRY"] = 0, 0
            env["ORDER"] = f"{booted} {primary}"
            outcome = BootOutcome(
                "Exception",
                "upgradeRollback",
                f"slot {primary} ({self._version(slots, primary)}) did not start; back on "
                f"slot {booted} ({self._version(slots, booted)})",
            )
        elif not slots[booted]["confirmed"]:
            slots[booted]["confirmed"] = True
            version = self._version(slots, booted)
            details = f"slot {booted} runs {version}"
            outcome = BootOutcome("Information", "upgradeSucceeded", details)
        self._save(ENV_NAME, env)
        self._save(SLOTS_NAME, slots)
        return outcome

    # -- install ------------------------------------------------------------------------------
    async def install(self, bundle: Path, progress: Progress) -> BundleInfo:
        if not self.keyring or not Path(self.keyring).is_file():
            raise UpgradeError("upgradeFailed", f"the board's keyring {self.keyring!r} is missing")
        info = await bundle_info(bundle, self.keyring)
        if info.compatible != self.compatible:
            raise UpgradeError(
                "badDevType",
                f"the bundle is for {info.compatible!r}, this device is {self.compatible!r}",
            )
        manifest = info.images.get("rootfs")
        if not manifest or not manifest.get("filename"):
            raise UpgradeError("badFirmware", "the bundle has no image for slot class rootfs")
        progress(5)
        extract = self.work_dir / EXTRACT_NAME
        shutil.rmtree(extract, ignore_errors=True)
        try:
            image = await self._extract(bundle, extract, manifest, progress)
            await asyncio.to_thread(_check_image, image, manifest, progress)
            await asyncio.to_thread(self._activate, image, info)
        finally:
            shutil.rmtree(extract, ignore_errors=True)
        progress(100)
        return info

    async def _extract(
        self, bundle: Path, extract: Path, manifest: dict[str, Any], progress: Progress
    ) -> Path:
        """`rauc extract`: the payload verified and unpacked; progress from the image's size."""
        image = extract / str(manifest["filename"])
        size = max(int(manifest.get("size") or 1), 1)
        task = asyncio.ensure_future(
            run_rauc(f"--keyring={self.keyring}", "extract", str(bundle), str(extract))
        )
        while not task.done():
            await asyncio.wait([task], timeout=POLL_S)
            if image.exists():
                progress(5 + 75 * min(image.stat().st_size, size) // size)
        code, output = task.result()
        if code != 0:
            raise UpgradeError("badFirmware", f"the bundle is refused: {rauc_reason(output)}")
        if not image.is_file():
            raise UpgradeError("badFirmware", f"the bundle has no {manifest['filename']}")
        return image

    def _activate(self, image: Path, info: BundleInfo) -> None:
        """The image becomes the other slot, which becomes the primary (`mark-active`)."""
        slots, env = self._slots(), self._env()
        target = next(slot for slot in SLOTS if slot != slots["booted"])
        name = f"slot-{target}.img"
        os.replace(image, self.work_dir / name)
        fsync_dir(self.work_dir)
        slots[target] = {"version": info.version, "image": name, "confirmed": False}
        self._save(SLOTS_NAME, slots)
        others = [slot for slot in env["ORDER"].split() if slot != target]
        env.update({"ORDER": " ".join([target, *others]), f"{target}_OK": 1, f"{target}_TRY": 0})
        self._save(ENV_NAME, env)


def _check_image(image: Path, manifest: dict[str, Any], progress: Progress) -> None:
    """The extracted image is the one the signed manifest names: size and SHA-256."""
    size = image.stat().st_size
    if size != int(manifest.get("size") or -1):
        raise UpgradeError("badFirmware", f"the root image has {size} bytes, not the manifest's")
    digest, done = hashlib.sha256(), 0
    with image.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress(80 + 15 * done // max(size, 1))
    if digest.hexdigest() != manifest.get("checksum"):
        raise UpgradeError("badFirmware", "the root image's checksum is not the manifest's")


def _holds(image: Path, member: str) -> bool:
    """Whether the squashfs `image` holds the file `member` (read with unsquashfs)."""
    try:
        result = subprocess.run(
            ["unsquashfs", "-cat", str(image), member], capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0
