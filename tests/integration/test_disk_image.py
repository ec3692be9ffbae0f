"""The qemu-x86_64 disk image (tools/vigil_tools/image/disk.py) built around a tiny root
(tests/tiny_root.py: the board's Debian kernel, a busybox initramfs that prints `rauc.slot`):
its GPT layout and ESP read back with sfdisk, blkid and mtools, then booted with OVMF under TCG
to see GRUB's A/B choice (RAUC's grubenv scheme): the factory slot A, slot B once installed and
made primary, and back to A when B was tried and never marked good.

A boot takes about 20 s here (OVMF ~7 s, the kernel's decompression ~7 s, Linux to /init ~3 s).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tiny_root import SLOT_MARK, build_tiny_squashfs
from vigil_tools.image.disk import build_disk, make_grubenv
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
    block = read_esp_file(image, "grubenv")
    assert len(block) == 1024  # GRUB writes the block in place, it must keep its size
    lines = block.decode().splitlines()  # two "# ..." header lines, NAME=value, "#" padding
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def set_grubenv(image: Path, tmp: Path, **values: str) -> None:
    """Replaces the ESP's grubenv by one holding the RAUC defaults updated with `values`."""
    env = make_grubenv(
        tmp / "grubenv", {**{"ORDER": "A B", "A_OK": "1", "B_OK": "0", "A_TRY": "0"}, **values}
    )
    subprocess.run(["mcopy", "-o", "-i", esp(image), str(env), "::grubenv"], check=True)


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


def boot(image: Path, tmp: Path) -> tuple[str, float]:
    """Boots `image` in QEMU (q35, OVMF, TCG) until the initramfs powers off: (slot, seconds)."""
    vars_copy = tmp / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_VARS, vars_copy)
    command = [
        "qemu-system-x86_64",
        "-nodefaults",
        "-machine", "q35",
        "-accel", "tcg",
        "-m", "512",
        "-display", "none",
        "-no-reboot",
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
        "-drive", f"if=none,id=disk,format=raw,file={image}",
        "-device", "virtio-blk-pci,drive=disk",
        "-serial", "stdio",
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, timeout=BOOT_TIMEOUT, check=False)
    seconds = time.monotonic() - started
    console = result.stdout.decode(errors="replace")
    slots = re.findall(rf"^{SLOT_MARK} (\S+)\r?$", console, re.MULTILINE)
    assert result.returncode == 0 and len(slots) == 1, console[-3000:]
    print(f"booted slot {slots[0]} in {seconds:.1f} s")
    return slots[0], seconds


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
    ("name", "fs_type", "label"), [("efi", "vfat", "EFI"), ("data", "ext4", "vigil-data")]
)
def test_file_systems(disk: Path, name: str, fs_type: str, label: str) -> None:
    part = partitions(disk)[name]
    probe = subprocess.run(
        ["blkid", "-p", "-o", "export", "-O", str(part.start), "-S", str(part.size), str(disk)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fields = dict(line.split("=", 1) for line in probe.splitlines())
    assert (fields["TYPE"], fields["LABEL"]) == (fs_type, label)


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
        (too_big, "genimage failed"),
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
    assert boot(image, tmp_path)[0] == "A"
    # GRUB saved the try mark before starting A: until RAUC marks A good, A is "tried".
    assert grubenv_values(image) == {
        "ORDER": "A B", "A_OK": "1", "B_OK": "0", "A_TRY": "1", "B_TRY": "0"
    }  # fmt: skip


def test_boots_slot_b_when_primary(disk: Path, squashfs: Path, tmp_path: Path) -> None:
    image = copy_disk(disk, tmp_path)
    install_slot_b(image, squashfs)
    set_grubenv(image, tmp_path, ORDER="B A", B_OK="1", B_TRY="0")
    assert boot(image, tmp_path)[0] == "B"
    assert grubenv_values(image)["B_TRY"] == "1"


def test_falls_back_to_a_when_b_was_tried(disk: Path, squashfs: Path, tmp_path: Path) -> None:
    image = copy_disk(disk, tmp_path)
    install_slot_b(image, squashfs)
    # B was booted once (B_TRY=1) and never marked good: its vigild did not come up.
    set_grubenv(image, tmp_path, ORDER="B A", B_OK="1", B_TRY="1")
    assert boot(image, tmp_path)[0] == "A"
    values = grubenv_values(image)
    assert (values["ORDER"], values["A_TRY"], values["B_TRY"]) == ("B A", "1", "1")
