"""Firmware upgrades: a signed RAUC bundle installed to the inactive slot, A/B boot, rollback.

The `Updater` is what the API sees: one upgrade at a time, its progress, device-log records.
The work is a driver's, chosen by the board's `[update]` section:

- `rauc` (a real board): the device's RAUC service does it. `rauc info` first (signature against
  `/etc/rauc/keyring.pem`, compatible, format: a clear refusal before anything is written), the
  whole payload of a verity bundle checked against its signed hash (`verity`: RAUC itself finds
  an altered block only while it writes the spare slot), then `rauc install`, whose progress
  is read from its output lines ("NN% <step>"; the same figures as the service's D-Bus
  `Progress` property, without needing busctl). The bootloader (GRUB or U-Boot, RAUC's scheme)
  starts the new slot; `rauc status mark-good` confirms it once vigild
  serves, and a boot that never gets there falls back to the other slot.
- `sim` (the simulated board, `upgrade_sim`): the same checks with the real `rauc info` and
  `rauc extract` on the host, a slot file under the data directory and the qemu-x86_64 board's
  GRUB selection, so the API flow (install, reboot, switch, rollback) runs without the rig.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vigil.config.atomic import write_atomic
from vigil.system.verity import PayloadError, verify_payload, verity_of

log = logging.getLogger(__name__)

BUNDLE_LIMIT = 512 * 2**20  # the largest bundle accepted (a root image is at most 320 MiB)
UPLOAD_NAME = "upload.raucb"
EXTRACT_NAME = "extract"  # where the sim driver unpacks a bundle
EXPECTED_SLOT_NAME = "expected-slot"  # the bootname an install made primary (RaucDriver)
RAUC_PROGRESS = re.compile(r"^\s*(\d{1,3})%")
RAUC_TIMEOUT_S = 30 * 60

Progress = Callable[[int], None]
Record = Callable[[str, str, str], None]  # major, minor, details: a device-log record


class UpgradeError(Exception):
    """A refused or failed upgrade; `reason` is the ISAPI subStatusCode that says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # badFirmware | badDevType | deviceBusy | upgradeFailed


class BootError(Exception):
    """The slot chosen at start cannot run vigild (the simulated board's failed boot)."""


@dataclass(frozen=True)
class BundleInfo:
    compatible: str
    version: str
    images: dict[str, dict[str, Any]] = field(default_factory=dict)  # slot class -> entry


@dataclass(frozen=True)
class UpgradeStatus:
    upgrading: bool = False
    percent: int = 0


@dataclass(frozen=True)
class BootOutcome:
    """What the start that confirmed its slot found: a new version running, or a fallback."""

    major: str  # Information | Exception
    minor: str  # upgradeSucceeded | upgradeRollback
    details: str


class UpdateDriver(Protocol):
    def boot(self) -> str | None: ...  # the running firmware's version, if the driver knows it

    async def install(self, bundle: Path, progress: Progress) -> BundleInfo: ...

    async def mark_good(self) -> BootOutcome | None: ...


def firmware_version(bundle_version: str) -> str:
    """A bundle's version as deviceInfo shows it: "2.0.0" -> "V2.0.0" (Hikvision's form)."""
    return bundle_version if bundle_version[:1] in ("V", "v") else f"V{bundle_version}"


async def run_rauc(*args: str, timeout: float = RAUC_TIMEOUT_S) -> tuple[int, str]:
    """Run `rauc <args>`; its exit code and its output (stdout then stderr)."""
    proc = await asyncio.create_subprocess_exec(
        "rauc", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, (out + err).decode(errors="replace")


def rauc_reason(output: str) -> str:
    """RAUC's own last error line, without its log prefix: the message a user is shown."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    last_error = [line.removeprefix("LastError: ") for line in lines if line.startswith("Last")]
    errors = [line for line in lines if "rauc-Message" not in line and "rauc-WARNING" not in line]
    return (last_error or errors or lines or ["rauc failed"])[-1][:300]


async def bundle_info(bundle: Path, keyring: str | None, conf: str | None = None) -> BundleInfo:
    """`rauc info`: the signature checked against `keyring` (None: the one of the system config,
    `conf` or /etc/rauc/system.conf), the manifest read; a bundle that fails is `badFirmware`."""
    args = ["info", "--output-format=json", str(bundle)]
    if keyring is not None:
        args.insert(0, f"--keyring={keyring}")
    if conf is not None:
        args.insert(0, f"--conf={conf}")
    code, output = await run_rauc(*args, timeout=120)
    if code != 0:
        reason = rauc_reason(output)
        kind = "badDevType" if "ompatible" in reason else "badFirmware"
        raise UpgradeError(kind, f"the bundle is refused: {reason}")
    manifest = _json_object(output)
    try:
        images = {name: dict(entry) for item in manifest["images"] for name, entry in item.items()}
        return BundleInfo(str(manifest["compatible"]), str(manifest["version"] or ""), images)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UpgradeError("badFirmware", "the bundle's manifest cannot be read") from None


class RaucDriver:
    """A board with RAUC: the service installs, the bootloader switches and falls back.
    `conf`: the system config `rauc info` checks against (the service reads its own)."""

    def __init__(self, conf: str | None = None, state_dir: Path | None = None) -> None:
        self.conf = conf
        # The slot an install made primary, kept until the next start: booting another one then
        # is a rollback. RAUC's own primary cannot tell: on GRUB it already skips tried slots.
        self._expected = state_dir / EXPECTED_SLOT_NAME if state_dir else None

    def boot(self) -> str | None:
        return None  # the running root's own package version is the installed one

    async def install(self, bundle: Path, progress: Progress) -> BundleInfo:
        info = await bundle_info(bundle, None, self.conf)
        await self._check_payload(bundle)
        proc = await asyncio.create_subprocess_exec(
            "rauc", "install", str(bundle),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert proc.stdout is not None
        lines: list[str] = []
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            if match := RAUC_PROGRESS.match(line):
                progress(min(int(match.group(1)), 99))
        if await proc.wait() != 0:
            reason = rauc_reason("\n".join(lines))
            kind = "badDevType" if "ompatible" in reason else "upgradeFailed"
            raise UpgradeError(kind, f"rauc install: {reason}")
        progress(100)
        await self._remember_primary()
        return info

    async def _check_payload(self, bundle: Path) -> None:
        conf = [f"--conf={self.conf}"] if self.conf else []
        code, output = await run_rauc(*conf, "info", str(bundle), timeout=120)
        try:
            if code != 0:
                raise PayloadError(rauc_reason(output))
            found = verity_of(output)
            if found is not None:
                await verify_payload(bundle, found)
        except PayloadError as exc:
            raise UpgradeError("badFirmware", f"the bundle is refused: {exc}") from None

    async def _remember_primary(self) -> None:
        if self._expected is None:
            return
        code, output = await run_rauc("status", "--output-format=json", timeout=60)
        primary = _primary_bootname(_json_object(output)) if code == 0 else None
        if primary:
            self._expected.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(write_atomic, self._expected, primary.encode())

    def _take_expected(self) -> str | None:
        if self._expected is None or not self._expected.exists():
            return None
        expected = self._expected.read_text(errors="replace").strip() or None
        self._expected.unlink()
        return expected

    async def mark_good(self) -> BootOutcome | None:
        code, output = await run_rauc("status", "--output-format=json", timeout=60)
        status = _json_object(output) if code == 0 else {}
        booted = status.get("booted")
        primary = self._take_expected() or _primary_bootname(status)
        code, output = await run_rauc("status", "mark-good", timeout=60)
        if code != 0:
            log.error("rauc status mark-good failed: %s", rauc_reason(output))
        if booted and primary and booted != primary:
            # The primary slot did not come up; this one is the primary again.
            await run_rauc("status", "mark-active", "booted", timeout=60)
            return BootOutcome(
                "Exception", "upgradeRollback", f"slot {primary} did not start; back on {booted}"
            )
        return None


def _json_object(output: str) -> dict[str, object]:
    try:
        value = json.loads(output[output.index("{") : output.rindex("}") + 1])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _primary_bootname(status: dict[str, object]) -> str | None:
    """The bootname of RAUC's `boot_primary` slot in `rauc status --output-format=json`."""
    primary, slots = status.get("boot_primary"), status.get("slots")
    for entry in slots if isinstance(slots, list) else []:
        for name, slot in entry.items() if isinstance(entry, dict) else []:
            if name == primary and isinstance(slot, dict):
                return str(slot.get("bootname") or "") or None
    return None


class Updater:
    """One upgrade at a time: the upload's file, the driver's install and its progress."""

    def __init__(self, driver: UpdateDriver, work_dir: Path, record: Record) -> None:
        self.driver, self.work_dir, self._record = driver, work_dir, record
        self._busy = False
        self._percent = 0

    def boot(self) -> str | None:
        """At start, before anything serves: the driver's slot selection; the running version.
        What an upgrade cut short by a power loss left on the data partition goes first."""
        (self.work_dir / UPLOAD_NAME).unlink(missing_ok=True)
        shutil.rmtree(self.work_dir / EXTRACT_NAME, ignore_errors=True)
        return self.driver.boot()

    def status(self) -> UpgradeStatus:
        return UpgradeStatus(self._busy, self._percent)

    def begin(self) -> Path:
        """Reserve the device for an upgrade; where its bundle is to be written."""
        if self._busy:
            raise UpgradeError("deviceBusy", "an upgrade is already under way")
        self._busy, self._percent = True, 0
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir / UPLOAD_NAME

    def abandon(self, upload: Path) -> None:
        """The upload did not complete: nothing was installed."""
        upload.unlink(missing_ok=True)
        self._busy, self._percent = False, 0

    async def install(self, upload: Path) -> BundleInfo:
        """Verify and install the uploaded bundle; stays busy until the reboot on success."""
        try:
            info = await self.driver.install(upload, self._progress)
        except UpgradeError as exc:
            self._busy, self._percent = False, 0
            self._record("Exception", "upgradeFailed", str(exc))
            raise
        except Exception as exc:
            self._busy, self._percent = False, 0
            self._record("Exception", "upgradeFailed", f"install failed: {exc}")
            raise UpgradeError("upgradeFailed", f"install failed: {exc}") from exc
        finally:
            upload.unlink(missing_ok=True)
        self._percent = 100
        version = firmware_version(info.version)
        self._record("Information", "upgradeInstalled", f"{version} installed; rebooting into it")
        return info

    async def mark_good(self) -> None:
        """vigild serves: confirm the running slot to the bootloader."""
        try:
            outcome = await self.driver.mark_good()
        except Exception:  # the device serves all the same; the bootloader will decide
            log.exception("the running slot could not be marked good")
            return
        if outcome is not None:
            self._record(outcome.major, outcome.minor, outcome.details)

    def _progress(self, percent: int) -> None:
        self._percent = max(self._percent, min(percent, 100))


def make_updater(
    driver: str,
    keyring: str,
    board_name: str,
    data_dir: Path,
    factory_version: str,
    record: Record,
) -> Updater | None:
    """The board's updater; None for a board without upgrades (driver "none")."""
    work_dir = data_dir / "update"
    if driver == "rauc":
        return Updater(RaucDriver(state_dir=work_dir), work_dir, record)
    if driver == "sim":
        from vigil.system.upgrade_sim import SimDriver

        sim = SimDriver(f"vigil-{board_name}", keyring, work_dir, factory_version)
        return Updater(sim, work_dir, record)
    return None
