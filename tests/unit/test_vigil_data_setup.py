"""vigil-data-setup (the image's first-boot /data partition script) on a real loop device:
made, grown to the end of a larger disk with the data kept, left alone when foreign."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil_tools.image.recipe import OVERLAY

SCRIPT = OVERLAY / "usr/lib/vigil/vigil-data-setup"
TOOLS = ("losetup", "partx", "sfdisk", "mkfs.ext4", "e2fsck", "resize2fs", "blkid", "debugfs")
MIB = 1 << 20

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(t) is None for t in TOOLS),
    reason="needs root, loop devices and util-linux/e2fsprogs",
)


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


@pytest.fixture
def disk(tmp_path) -> Iterator[tuple[Path, str]]:
    """A 64 MiB GPT disk image whose 8 MiB partition 2 is "data", on a loop device."""
    image = tmp_path / "disk.img"
    with image.open("wb") as file:
        file.truncate(64 * MIB)
    layout = "label: gpt\nstart=2048, size=4096, name=efi\nstart=6144, size=16384, name=data\n"
    subprocess.run(["sfdisk", "-q", str(image)], input=layout, text=True, check=True)
    loop = run("losetup", "-f", "--show", str(image)).stdout.strip()
    try:
        run("partx", "-a", loop)
        yield image, loop
    finally:
        run("partx", "-d", loop, check=False)
        run("losetup", "-d", loop, check=False)


def setup(partition: str) -> subprocess.CompletedProcess[str]:
    return run("sh", str(SCRIPT), partition, check=False)


def sectors(loop: str, number: int) -> tuple[int, int]:
    block = Path("/sys/class/block", f"{Path(loop).name}p{number}")
    return int((block / "start").read_text()), int((block / "size").read_text())


def block_count(partition: str) -> int:
    header = run("dumpe2fs", "-h", partition).stdout
    return int(re.search(r"Block count:\s+(\d+)", header).group(1))


def test_first_boot_grows_the_partition_and_makes_ext4(disk):
    image, loop = disk
    part = f"{loop}p2"
    done = setup(part)
    assert done.returncode == 0, done.stderr
    assert "growing" in done.stdout and "making an ext4" in done.stdout
    start, size = sectors(loop, 2)
    assert start == 6144
    assert (64 * MIB // 512) - (start + size) <= 2048  # up to the GPT's backup at the end
    assert run("blkid", "-p", "-s", "LABEL", "-o", "value", part).stdout.strip() == "vigil-data"
    table = run("sfdisk", "--dump", str(image)).stdout
    assert re.search(rf'size=\s*{size},.*name="data"', table)  # the table on disk says so too
    again = setup(part)  # the next boot: nothing to do
    assert again.returncode == 0 and "clean" in again.stdout  # e2fsck -p's one line
    assert "growing" not in again.stdout and "making" not in again.stdout


def test_a_larger_card_is_grown_into_and_the_data_kept(disk):
    image, loop = disk
    part = f"{loop}p2"
    assert setup(part).returncode == 0
    run("debugfs", "-w", "-R", f"write {SCRIPT} kept", part)
    before = block_count(part)
    run("partx", "-d", loop)
    with image.open("r+b") as file:  # the image written to a card twice the size
        file.truncate(128 * MIB)
    run("losetup", "-c", loop)
    run("partx", "-a", loop)
    done = setup(part)
    assert done.returncode == 0, done.stderr
    assert "growing" in done.stdout and "making" not in done.stdout
    assert block_count(part) > 1.9 * before
    kept = run("debugfs", "-R", "cat kept", part).stdout
    assert kept == SCRIPT.read_text()


def test_a_foreign_file_system_is_not_touched(disk):
    _, loop = disk
    part = f"{loop}p2"
    run("mkfs.ext2", "-q", "-L", "photos", part)
    done = setup(part)
    assert done.returncode == 1
    assert "ext2 file system, not ext4: not touched" in done.stderr
    assert run("blkid", "-p", "-s", "LABEL", "-o", "value", part).stdout.strip() == "photos"


def test_refuses_what_is_not_a_partition(disk):
    _, loop = disk
    done = setup(loop)
    assert done.returncode == 1 and "is not a partition" in done.stderr
