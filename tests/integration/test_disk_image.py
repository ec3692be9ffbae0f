"""The qemu-x86_64 disk image (tools/vigil_tools/image/disk.py) built around a tiny root
(tests/tiny_root.py: the board's Debian kernel, a busybox initramfs that prints `rauc.slot`):
its GPT layout and ESP read back with sfdisk, blkid and mtools, then booted with OVMF under TCG
to see GRUB's A/B choice (RAUC's grubenv scheme): the factory slot A, slot B once installed and
made primary, and back to A when B was tried and never marked good.

A boot takes about 20 s here (OVMF ~7 s, the kernel's decompression ~7 s, Linux to /init ~3 s).
"""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bundles import bundle, flip_byte
from tests.tiny_root import SLOT_MARK, build_tiny_squashfs
from vigil.system.upgrade import RaucDriver, UpgradeError
from vigil_tools.image.disk import INITIAL_GRUBENV, build_disk, make_grubenv
from vigil_tools.image.keys import ensure_keys
from vigil_tools.image.recipe import BOARDS, ImageError

BOARD = "qemu-x86_64"
MIB = 1 << 20
SECTOR = 512
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
LAYOUT = [("efi", 64, ESP_TYPE), ("rootfs-a", 320, LINUX_TYPE), ("rootfs-b", 320, LINUX_TYPE)]
DATA_MIB = 32
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
BOOT_TIMEOUT = 150
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


@dataclass(frozen=True)
class Partition:
    name: str
    start: int  # bytes
    size: int  # bytes
    type: str


@pytest.fixture(scope="module")
def squashfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_squashfs(tmp_path_factory.mktemp("root") / "root.squashfs", BOARD)


@pytest.fixture(scope="module")
def disk(squashfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    started = time.monotonic()
    image = build_disk(BOARD, squashfs, tmp_path_factory.mktemp("disk") / "disk.img")
    print(f"disk built in {time.monotonic() - started:.2f} s")
    return image


def partitions(image: Path) -> dict[str, Partition]:
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(image)], check=True, capture_output=True, text=True
        ).stdout
    )["partitiontable"]
    assert table["label"] == "gpt" and table["sectorsize"] == SECTOR
    return {
        p["name"]: Partition(p["name"], p["start"] * SECTOR, p["size"] * SECTOR, p["type"])
        for p in table["partitions"]
    }


def esp(image: Path) -> str:
    """The mtools image spec of the disk's ESP (`disk.img@@offset`)."""
    return f"{image}@@{partitions(image)['efi'].start}"


def read_esp_file(image: Path, name: str) -> bytes:
    return subprocess.run(
        ["mcopy", "-n", "-i", esp(image), f"::{name}", "-"], check=True, capture_output=True
    ).stdout


def grubenv_values(image: Path) -> dict[str, str]:
    return parse_grubenv(read_esp_file(image, "grubenv"))


def parse_grubenv(block: bytes) -> dict[str, str]:
    assert len(block) == 1024  # GRUB writes the block in place, it must keep its size
    lines = block.decode().splitlines()  # two "# ..." header lines, NAME=value, "#" padding
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def put_grubenv(image: Path, env: Path) -> None:
    subprocess.run(["mcopy", "-o", "-i", esp(image), str(env), "::grubenv"], check=True)


def set_grubenv(image: Path, tmp: Path, **values: str) -> None:
    """Replaces the ESP's grubenv by the factory one updated with `values`."""
    put_grubenv(image, make_grubenv(tmp / "grubenv", {**INITIAL_GRUBENV, **values}))


class Rauc:
    """The real `rauc service` on the host, for the board's system.conf with its grubenv in a
    file (copied from the image's ESP and back after each command), the slots' devices in empty
    files and a private D-Bus system bus. `booted` overrides the boot slot detection."""

    def __init__(self, tmp: Path, image: Path, booted: str) -> None:
        self.dir = tmp / "rauc"
        self.dir.mkdir(exist_ok=True)
        self.image = image
        self.booted = booted
        self.grubenv = self.dir / "grubenv"
        self.env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={self.dir / 'bus'}"}
        self.processes: list[subprocess.Popen[bytes]] = []

    def _config(self) -> Path:
        config = configparser.ConfigParser(interpolation=None)
        config.optionxform = str  # type: ignore[assignment,method-assign]
        config.read(BOARDS / BOARD / "system.conf")
        config["system"]["grubenv"] = str(self.grubenv)
        config["system"]["data-directory"] = str(self.dir / "data")
        config["keyring"]["path"] = str(self.dir / "keyring.pem")
        for section in config.sections():
            if section.startswith("slot."):
                device = self.dir / f"{section}.img"
                device.touch()
                config[section]["device"] = str(device)
        path = self.dir / "system.conf"
        with path.open("w") as file:
            config.write(file)
        return path

    def __enter__(self) -> Rauc:
        self.grubenv.write_bytes(read_esp_file(self.image, "grubenv"))
        bus = self.dir / "bus.conf"
        bus.write_text(BUS_CONFIG.format(socket=self.dir / "bus"))
        self._start_bus(bus)
        service = ["rauc", "service", f"--conf={self._config()}"]
        self._start([*service, f"--override-boot-slot={self.booted}"])
        deadline = time.monotonic() + 15
        while self._rauc("status").returncode != 0:
            log = (self.dir / "rauc.log").read_text()
            assert self.processes[-1].poll() is None, f"rauc service exited:\n{log}"
            assert time.monotonic() < deadline, f"rauc service did not come up:\n{log}"
            time.sleep(0.2)
        return self

    def _start_bus(self, config: Path) -> None:
        """dbus-daemon prints its address once it listens: `rauc service` started before
        that exits at once ("Connection to the system bus can't be made")."""
        bus = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address"],
            stdout=subprocess.PIPE, env=self.env,
        )  # fmt: skip
        self.processes.append(bus)
        assert bus.stdout is not None and bus.stdout.readline(), "dbus-daemon did not start"

    def _start(self, command: list[str]) -> None:
        log = (self.dir / f"{command[0]}.log").open("wb")
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=log, env=self.env))

    def _rauc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["rauc", *args], env=self.env, capture_output=True, text=True, check=False
        )

    def status(self, *args: str) -> None:
        """`rauc status <args>`, then the grubenv it changed back into the image."""
        result = self._rauc("status", *args)
        assert result.returncode == 0, result.stderr
        put_grubenv(self.image, self.grubenv)

    def bad_slots(self) -> list[str]:
        result = self._rauc("status", "--output-format=json")
        assert result.returncode == 0, result.stderr
        slots = json.loads(result.stdout)["slots"]
        return [name for slot in slots for name, s in slot.items() if s["boot_status"] == "bad"]

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            process.terminate()
            process.wait(timeout=10)
            if process.stdout:
                process.stdout.close()


def copy_disk(disk: Path, tmp: Path) -> Path:
    """A scratch copy of the built image (sparse, as genimage wrote it) for one boot."""
    image = tmp / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(disk), str(image)], check=True)
    return image


def install_slot_b(image: Path, squashfs: Path) -> None:
    """Writes the squashfs into rootfs-b, as RAUC's raw slot handler does."""
    part = partitions(image)["rootfs-b"]
    with image.open("r+b") as disk_file:
        disk_file.seek(part.start)
        disk_file.write(squashfs.read_bytes())


@dataclass(frozen=True)
class Boot:
    slot: str  # the rauc.slot the kernel was given
    seconds: float  # QEMU's start to its exit
    console: str


def boot(image: Path, tmp: Path, *, reboot: bool = False) -> Boot:
    """Boots `image` in QEMU (q35, OVMF, TCG) until the initramfs powers off. With `reboot`,
    a guest reset restarts the firmware (as on a board) instead of ending QEMU."""
    vars_copy = tmp / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_VARS, vars_copy)
    command = [
        "qemu-system-x86_64",
        "-nodefaults",
        "-machine", "q35",
        "-accel", "tcg",
        "-m", "512",
        "-display", "none",
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
        "-drive", f"if=none,id=disk,format=raw,file={image}",
        "-device", "virtio-blk-pci,drive=disk",
        "-serial", "stdio",
        *([] if reboot else ["-no-reboot"]),
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, timeout=BOOT_TIMEOUT, check=False)
    seconds = time.monotonic() - started
    console = result.stdout.decode(errors="replace")
    slots = re.findall(rf"^{SLOT_MARK} (\S+)\r?$", console, re.MULTILINE)
    assert result.returncode == 0 and len(slots) == 1, console[-3000:]
    print(f"booted slot {slots[0]} in {seconds:.1f} s")
    return Boot(slots[0], seconds, console)


def test_partition_table(disk: Path, squashfs: Path) -> None:
    parts = partitions(disk)
    assert list(parts) == [name for name, _, _ in LAYOUT] + ["data"]
    for name, mib, type_uuid in LAYOUT:
        assert (parts[name].size, parts[name].type) == (mib * MIB, type_uuid), name
    assert (parts["data"].size, parts["data"].type) == (DATA_MIB * MIB, LINUX_TYPE)
    assert all(p.start % MIB == 0 for p in parts.values())
    with disk.open("rb") as image:
        image.seek(parts["rootfs-a"].start)
        assert image.read(squashfs.stat().st_size) == squashfs.read_bytes()
        image.seek(parts["rootfs-b"].start)
        zeros = bytes(MIB)
        assert all(image.read(MIB) == zeros for _ in range(parts["rootfs-b"].size // MIB))


@pytest.mark.parametrize(
    ("name", "fs_type", "label", "version"),
    [("efi", "vfat", "EFI", "FAT32"), ("data", "ext4", "vigil-data", "1.0")],
)
def test_file_systems(disk: Path, name: str, fs_type: str, label: str, version: str) -> None:
    part = partitions(disk)[name]
    probe = subprocess.run(
        ["blkid", "-p", "-o", "export", "-O", str(part.start), "-S", str(part.size), str(disk)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fields = dict(line.split("=", 1) for line in probe.splitlines())
    assert (fields["TYPE"], fields["LABEL"], fields["VERSION"]) == (fs_type, label, version)


def test_esp_contents(disk: Path) -> None:
    listing = subprocess.run(
        ["mdir", "-b", "-/", "-i", esp(disk), "::"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert sorted(listing) == ["::/EFI/", "::/EFI/BOOT/", "::/EFI/BOOT/BOOTX64.EFI", "::/grub.cfg",
                               "::/grubenv"]  # fmt: skip
    assert read_esp_file(disk, "EFI/BOOT/BOOTX64.EFI")[:2] == b"MZ"  # a PE/COFF EFI application
    assert read_esp_file(disk, "grub.cfg") == (BOARDS / BOARD / "grub.cfg").read_bytes()
    assert grubenv_values(disk) == {
        "ORDER": "A B", "A_OK": "1", "B_OK": "0", "A_TRY": "0", "B_TRY": "0"
    }  # fmt: skip


def test_bad_squashfs_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "disk.img"
    out.write_bytes(b"previous image")
    not_squashfs = tmp_path / "root.ext4"
    not_squashfs.write_bytes(b"\0" * 4096)
    zstd = tmp_path / "zstd.squashfs"
    zstd.write_bytes(b"hsqs" + b"\0" * 16 + b"\x06\x00" + b"\0" * 100)
    too_big = tmp_path / "big.squashfs"
    with too_big.open("wb") as big:
        big.write(b"hsqs" + b"\0" * 16 + b"\x04\x00")
        big.truncate(321 * MIB)
    for path, message in [
        (not_squashfs, "is not a squashfs image"),
        (zstd, "compressed with zstd; GRUB reads only gzip, lzo, xz"),
        (too_big, r"genimage failed:\nERROR: .*rootfs-a size \(335544320\) too small"),
        (tmp_path / "missing.squashfs", "cannot read the root squashfs"),
    ]:
        with pytest.raises(ImageError, match=message):
            build_disk(BOARD, path, out)
        assert out.read_bytes() == b"previous image"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["disk.img", "root.ext4", "zstd.squashfs", "big.squashfs"]
    )
    with pytest.raises(ImageError, match="no board 'nosuch'"):
        build_disk("nosuch", zstd, out)


def test_boots_slot_a_and_marks_the_try(disk: Path, tmp_path: Path) -> None:
    image = copy_disk(disk, tmp_path)
    assert boot(image, tmp_path).slot == "A"
    # GRUB saved the try mark before starting A: until RAUC marks A good, A is "tried".
    assert grubenv_values(image) == {
        "ORDER": "A B", "A_OK": "1", "B_OK": "0", "A_TRY": "1", "B_TRY": "0"
    }  # fmt: skip
    with Rauc(tmp_path, image, booted="A") as rauc:
        rauc.status("mark-good")
    assert grubenv_values(image) == {
        "ORDER": "A B", "A_OK": "1", "B_OK": "0", "A_TRY": "0", "B_TRY": "0"
    }  # fmt: skip


def test_rauc_activates_b_and_grub_falls_back(disk: Path, squashfs: Path, tmp_path: Path) -> None:
    image = copy_disk(disk, tmp_path)
    install_slot_b(image, squashfs)
    with Rauc(tmp_path, image, booted="A") as rauc:
        rauc.status("mark-active", "other")
    assert grubenv_values(image) == {
        "ORDER": "B A", "A_OK": "1", "B_OK": "1", "A_TRY": "0", "B_TRY": "0"
    }  # fmt: skip
    assert boot(image, tmp_path).slot == "B"
    assert grubenv_values(image)["B_TRY"] == "1"
    # B never got `rauc status mark-good` (its vigild did not come up): the next start is A's.
    assert boot(image, tmp_path).slot == "A"
    values = grubenv_values(image)
    assert (values["ORDER"], values["A_TRY"], values["B_TRY"]) == ("B A", "1", "1")


def test_rauc_mark_good_and_bad(disk: Path, tmp_path: Path) -> None:
    """After B booted once, RAUC's mark-good (as on the device once vigild is healthy) clears
    B's try mark, so GRUB keeps B; mark-bad clears B_OK, so GRUB takes A, next in ORDER."""
    image = copy_disk(disk, tmp_path)
    set_grubenv(image, tmp_path, ORDER="B A", B_OK="1", B_TRY="1")
    with Rauc(tmp_path, image, booted="B") as rauc:
        rauc.status("mark-good")
        assert grubenv_values(image)["B_TRY"] == "0"
        rauc.status("mark-bad")
    assert grubenv_values(image) == {
        "ORDER": "B A", "A_OK": "1", "B_OK": "0", "A_TRY": "0", "B_TRY": "0"
    }  # fmt: skip


def test_slot_that_cannot_load_falls_back(disk: Path, tmp_path: Path) -> None:
    """B marked active but holding no root (a write cut short): GRUB cannot load its kernel,
    restarts the machine, and the saved try mark sends the next start to A."""
    image = copy_disk(disk, tmp_path)
    set_grubenv(image, tmp_path, ORDER="B A", B_OK="1", B_TRY="0")
    result = boot(image, tmp_path, reboot=True)
    assert result.slot == "A"
    assert "Vigil: slot B does not boot; restarting" in result.console
    assert grubenv_values(image) == {
        "ORDER": "B A", "A_OK": "1", "B_OK": "1", "A_TRY": "1", "B_TRY": "1"
    }  # fmt: skip


def test_rauc_driver_refuses_an_altered_verity_bundle_before_writing_the_slot(
    disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The device's RaucDriver against the real `rauc service`: a bundle with one payload byte
    changed after signing passes `rauc info` (the signature covers the manifest and its verity
    root hash), and RAUC alone would find the change only while writing slot B."""
    keys = ensure_keys(tmp_path / "keys")
    good = bundle(tmp_path, keys, "2.0.0", board=BOARD)
    altered = flip_byte(good, tmp_path / "altered.raucb", offset=300_001)  # in the payload
    # This host has no device-mapper (RAUC mounts a verity bundle through dm-verity): the
    # install that shows the same driver and service write slot B is of a plain bundle.
    plain = bundle(tmp_path / "plain", keys, "2.0.1", board=BOARD, bundle_format="plain")
    progress: list[int] = []
    rauc = Rauc(tmp_path, copy_disk(disk, tmp_path), booted="A")
    shutil.copy(keys.ca_cert, rauc.dir / "keyring.pem")
    with rauc:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", rauc.env["DBUS_SYSTEM_BUS_ADDRESS"])
        driver = RaucDriver(conf=str(rauc.dir / "system.conf"))
        slot_b = rauc.dir / "slot.rootfs.1.img"
        env, bad = rauc.grubenv.read_bytes(), rauc.bad_slots()  # the factory B is "bad" (B_OK=0)
        with pytest.raises(UpgradeError, match="payload does not match its signed hash") as refused:
            asyncio.run(driver.install(altered, progress.append))
        assert refused.value.reason == "badFirmware"
        assert slot_b.stat().st_size == 0  # nothing written
        assert (rauc.grubenv.read_bytes(), rauc.bad_slots()) == (env, bad)  # nor marked

        installed = asyncio.run(driver.install(plain, progress.append))
        assert installed.version == "2.0.1"
        assert slot_b.stat().st_size > 0 and progress[-1] == 100
        assert parse_grubenv(rauc.grubenv.read_bytes())["ORDER"] == "B A"  # B boots next
