"""`vigil flash` on real loop devices: a small GPT image (vfat + ext4, made with sfdisk, mkfs and
mtools) is written to a loop device backed by a larger file, and the device's partition table,
file systems and files are compared with the image's.

Partitions are reached by offset (blkid -O, mtools' `@@offset`, a read-only loop with --offset)
because kernels without partition-table parsers (this one has none) never make `loopNp1`; where
the kernel does scan GPT, the test also checks that the flash made it re-read the table. vfat is
read with mtools because such kernels may lack the vfat driver; ext4 is mounted for real.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loop_card import loops_of, mounted, needs_loop_devices, run
from vigil_tools import flash
from vigil_tools.blockdev import inspect, system_disks
from vigil_tools.cli import main

pytestmark = needs_loop_devices("sfdisk", "mkfs.vfat", "mkfs.ext4", "blkid", "mtype", "mcopy")

MIB = 1024 * 1024
EFI_START, EFI_SIZE = 1 * MIB, 4 * MIB
DATA_START, DATA_SIZE = 5 * MIB, 5 * MIB
IMAGE_SIZE = 11 * MIB
BOOT_TEXT = b"grub says hello\n"
DATA_TEXT = b"recordings live here\n"
LAYOUT = f"""label: gpt
start={EFI_START // 512}, size={EFI_SIZE // 512}, type=uefi, name=efi
start={DATA_START // 512}, size={DATA_SIZE // 512}, type=linux, name=data
"""


def _partition_file(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def _copy_into(image: Path, part: Path, offset: int) -> None:
    with image.open("r+b") as out:
        out.seek(offset)
        out.write(part.read_bytes())


@pytest.fixture(scope="module")
def disk_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 11 MiB GPT disk: `efi` (vfat, EFI/BOOT/HELLO.TXT) and `data` (ext4, hello.txt)."""
    work = tmp_path_factory.mktemp("image")
    efi = _partition_file(work / "efi.vfat", EFI_SIZE)
    run("mkfs.vfat", "-n", "EFI", str(efi))
    (work / "hello.txt").write_bytes(BOOT_TEXT)
    run("mmd", "-i", str(efi), "::EFI", "::EFI/BOOT")
    run("mcopy", "-i", str(efi), str(work / "hello.txt"), "::EFI/BOOT/HELLO.TXT")
    tree = work / "tree"
    tree.mkdir()
    (tree / "hello.txt").write_bytes(DATA_TEXT)
    data = _partition_file(work / "data.ext4", DATA_SIZE)
    run("mkfs.ext4", "-q", "-F", "-L", "vigil-data", "-d", str(tree), str(data))
    image = _partition_file(work / "disk.img", IMAGE_SIZE)
    subprocess.run(["sfdisk", "-q", str(image)], input=LAYOUT, text=True, check=True)
    _copy_into(image, efi, EFI_START)
    _copy_into(image, data, DATA_START)
    return image


def _attach(backing: Path) -> str:
    return run("losetup", "-f", "--show", "-P", str(backing))


def _detach_all(backing: Path, points: list[Path]) -> None:
    for point in points:
        while mounted(point):
            subprocess.run(["umount", str(point)], check=False)
    for loop in loops_of(backing):
        for inner in run("losetup", "-j", loop, "-O", "NAME", "-n").split():
            subprocess.run(["losetup", "-d", inner], check=False)
        subprocess.run(["losetup", "-d", loop], check=False)


@pytest.fixture
def loop_disk(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A 24 MiB loop device (path, backing file) with a pattern on it; detached afterwards,
    with whatever the test attached on top of it or mounted under tmp_path."""
    backing = tmp_path / "card.bin"
    backing.write_bytes(bytes(range(256)) * (24 * MIB // 256))
    try:
        yield _attach(backing), backing
    finally:
        _detach_all(backing, sorted(tmp_path.glob("mnt*")))


def _sha256(path: Path | str, size: int = IMAGE_SIZE) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(size)).hexdigest()


def _table(device: Path | str) -> dict[str, object]:
    """sfdisk's JSON dump without the names that differ between a file and a device."""
    table = json.loads(run("sfdisk", "-J", str(device)))["partitiontable"]
    table.pop("device")
    for part in table["partitions"]:
        part.pop("node")
    return table


def _blkid(device: Path | str, offset: int, size: int) -> dict[str, str]:
    out = run("blkid", "-p", "-o", "export", "-O", str(offset), "-S", str(size), str(device))
    return dict(line.split("=", 1) for line in out.splitlines() if not line.startswith("DEVNAME"))


def _kernel_scans_gpt(disk_image: Path, tmp_path: Path) -> bool:
    probe = tmp_path / "probe.img"
    probe.write_bytes(disk_image.read_bytes())
    loop = _attach(probe)
    try:
        return Path(f"/sys/class/block/{Path(loop).name}/{Path(loop).name}p1").exists()
    finally:
        run("losetup", "-d", loop)


def _mount_data(device: str, point: Path, *options: str) -> None:
    """Mount the ext4 partition: its node where the kernel made one, else a loop at its offset."""
    point.mkdir()
    node = f"{device}p2"
    if os.path.exists(node):
        run("mount", *options, node, str(point))
        return
    loop = run("losetup", "-f", "--show", "-r", "-o", str(DATA_START), "--sizelimit",
               str(DATA_SIZE), device)  # fmt: skip
    run("mount", *options, loop, str(point))


def test_flash_writes_a_disk_whose_partitions_and_files_match_the_image(
    disk_image: Path, loop_disk: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    device, _ = loop_disk
    assert main(["flash", str(disk_image), device, "--yes"]) == 0
    out, err = capsys.readouterr()
    assert f"{IMAGE_SIZE} bytes written (direct I/O) and verified" in out
    assert "write  100.0%" in err and "verify 100.0%" in err
    assert _sha256(device) == _sha256(disk_image)
    assert _table(device) == _table(disk_image)
    for offset, size in ((EFI_START, EFI_SIZE), (DATA_START, DATA_SIZE)):
        assert _blkid(device, offset, size) == _blkid(disk_image, offset, size)
    assert _blkid(device, DATA_START, DATA_SIZE)["LABEL"] == "vigil-data"
    boot = run("mtype", "-i", f"{device}@@{EFI_START}", "::EFI/BOOT/HELLO.TXT")
    assert boot.encode() == BOOT_TEXT.strip()
    _mount_data(device, tmp_path / "mnt", "-o", "ro")
    assert (tmp_path / "mnt" / "hello.txt").read_bytes() == DATA_TEXT
    if _kernel_scans_gpt(disk_image, tmp_path):
        assert Path(f"/sys/class/block/{Path(device).name}/{Path(device).name}p2").exists()


def test_refuses_a_device_with_a_mounted_partition(
    disk_image: Path, loop_disk: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    device, backing = loop_disk
    assert main(["flash", str(disk_image), device, "--yes"]) == 0
    _mount_data(device, tmp_path / "mnt")
    before = _sha256(backing, 24 * MIB)
    capsys.readouterr()
    assert main(["flash", str(disk_image), device, "--yes"]) == 1
    err = capsys.readouterr().err
    assert f"refusing to write {device}" in err and f"mounted on {tmp_path / 'mnt'}" in err
    assert _sha256(backing, 24 * MIB) == before


def test_refuses_a_device_smaller_than_the_image(
    disk_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    backing = tmp_path / "small.bin"
    backing.write_bytes(b"\x5a" * (8 * MIB))
    try:
        device = _attach(backing)
        assert main(["flash", str(disk_image), device, "--yes"]) == 1
        assert f"{device} is too small: {8 * MIB} bytes" in capsys.readouterr().err
        assert backing.read_bytes() == b"\x5a" * (8 * MIB)
    finally:
        _detach_all(backing, [])


def test_refuses_a_path_that_is_not_a_block_device(
    disk_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    target = tmp_path / "not-a-disk.bin"
    target.write_bytes(b"\0" * (16 * MIB))
    assert main(["flash", str(disk_image), str(target), "--yes"]) == 1
    assert f"{target} is not a block device" in capsys.readouterr().err
    assert target.read_bytes() == b"\0" * (16 * MIB)


def test_no_at_the_prompt_changes_nothing_and_yes_writes(
    disk_image: Path,
    loop_disk: tuple[str, Path],
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    device, backing = loop_disk
    before = _sha256(backing, 24 * MIB)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert main(["flash", str(disk_image), device]) == 1
    err = capsys.readouterr().err
    assert f"loop device on {backing}" in err and "25.2 MB" in err
    assert f"Everything on {device} is lost. [y/N]" in err and "not written" in err
    assert _sha256(backing, 24 * MIB) == before
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main(["flash", str(disk_image), device]) == 0
    assert _sha256(device) == _sha256(disk_image)


def test_a_file_system_image_needs_force_raw(
    disk_image: Path, loop_disk: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    device, backing = loop_disk
    fs_image = tmp_path / "data.ext4"
    with disk_image.open("rb") as f:
        f.seek(DATA_START)
        fs_image.write_bytes(f.read(DATA_SIZE))
    before = _sha256(backing, 24 * MIB)
    assert main(["flash", str(fs_image), device, "--yes"]) == 1
    assert "no MBR or GPT partition table" in capsys.readouterr().err
    assert _sha256(backing, 24 * MIB) == before
    assert main(["flash", str(fs_image), device, "--yes", "--force-raw"]) == 0
    assert _blkid(device, 0, DATA_SIZE)["TYPE"] == "ext4"


def test_the_read_back_catches_a_block_that_did_not_stick(
    disk_image: Path, loop_disk: tuple[str, Path]
) -> None:
    """The medium changes one 4 KiB block under the device between the write and the read-back
    (through the loop's backing file, as a failing card would): the chunk is named."""
    device, backing = loop_disk
    bad_offset = 6 * MIB + 4096

    def corrupt() -> None:
        with backing.open("r+b") as f:
            f.seek(bad_offset)
            f.write(b"\xff" * 4096)
            os.fsync(f.fileno())

    with pytest.raises(flash.FlashFailed, match=f"at offset {4 * MIB} of {device} differ"):
        flash.flash(disk_image, inspect(Path(device)), stream=io.StringIO(), after_write=corrupt)


def test_the_system_disk_is_refused_before_anything_is_opened(disk_image: Path) -> None:
    """Checked through check_device alone: a bug here must not reach the host's own disk."""
    held = system_disks()
    if not held:
        pytest.skip("/ is not on a block device here")
    name, points = next(iter(held.items()))
    with pytest.raises(flash.Refused, match=r"it holds the running system \(/"):
        flash.check_device(inspect(Path(f"/dev/{name}")), IMAGE_SIZE)
    assert "/" in points


def test_an_image_that_ends_inside_a_block_is_written_whole(
    loop_disk: tuple[str, Path], tmp_path: Path
) -> None:
    """The tail after the last whole logical block goes without O_DIRECT; the rest is kept."""
    device, backing = loop_disk
    raw = tmp_path / "odd.bin"
    raw.write_bytes(os.urandom(5 * MIB + 100))
    after = Path(backing).read_bytes()[5 * MIB + 100 :]
    assert main(["flash", str(raw), device, "--yes", "--force-raw"]) == 0
    written = Path(backing).read_bytes()
    assert written[: 5 * MIB + 100] == raw.read_bytes()
    assert written[5 * MIB + 100 :] == after


def test_a_failed_verification_exits_3_and_says_not_to_use_the_device(
    disk_image: Path,
    loop_disk: tuple[str, Path],
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    device, backing = loop_disk

    def corrupt() -> None:
        with backing.open("r+b") as f:
            f.seek(IMAGE_SIZE - 512)
            f.write(b"\x00" * 512)

    real_flash = flash.flash
    monkeypatch.setattr(
        flash, "flash", lambda image, disk: real_flash(image, disk, after_write=corrupt)
    )
    assert main(["flash", str(disk_image), device, "--yes"]) == 3
    err = capsys.readouterr().err
    assert f"at offset {8 * MIB} of {device} differ" in err and f"do not use {device}" in err


def test_refuses_a_device_used_as_swap(
    disk_image: Path, loop_disk: tuple[str, Path], capsys: pytest.CaptureFixture
) -> None:
    device, _ = loop_disk
    run("mkswap", device)
    run("swapon", device)
    try:
        assert main(["flash", str(disk_image), device, "--yes"]) == 1
    finally:
        run("swapoff", device)
    assert f"{Path(device).name} is used as swap" in capsys.readouterr().err


def test_refuses_a_device_another_program_holds_exclusively(
    disk_image: Path, loop_disk: tuple[str, Path], capsys: pytest.CaptureFixture
) -> None:
    """What no sysfs file shows (an exclusive opener: a partitioner, another flash) the
    exclusive open finds."""
    device, backing = loop_disk
    before = _sha256(backing, 24 * MIB)
    holder = os.open(device, os.O_RDONLY | os.O_EXCL)
    try:
        assert main(["flash", str(disk_image), device, "--yes"]) == 1
    finally:
        os.close(holder)
    assert f"{device} is in use" in capsys.readouterr().err
    assert _sha256(backing, 24 * MIB) == before
