"""The pure parts of `vigil flash` and `vigil upgrade`: what counts as a disk image, the
progress line, the device URL."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from vigil_tools.flash import is_disk_image
from vigil_tools.progress import Progress
from vigil_tools.upgrade import base_url


def _head(path: Path) -> bytes:
    return path.read_bytes()[:8192]


@pytest.mark.parametrize("label", ["gpt", "dos"])
def test_partitioned_disks_are_disk_images(tmp_path: Path, label: str) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(4 * 1024 * 1024))
    layout = f"label: {label}\nsize=1MiB, type={'uefi' if label == 'gpt' else 'ef'}\n"
    subprocess.run(["sfdisk", "-q", str(image)], input=layout, text=True, check=True)
    assert is_disk_image(_head(image))


@pytest.mark.parametrize("mkfs", [["mkfs.vfat"], ["mkfs.ext4", "-q", "-F"]])
def test_file_system_images_are_not(tmp_path: Path, mkfs: list[str]) -> None:
    """A FAT boot sector ends in 0x55AA as an MBR does, but holds no partition entries."""
    image = tmp_path / "fs.img"
    image.write_bytes(bytes(4 * 1024 * 1024))
    subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
    assert not is_disk_image(_head(image))


def test_zeros_and_junk_are_not() -> None:
    assert not is_disk_image(bytes(8192))
    assert not is_disk_image(b"\x1f\x8b" + bytes(8190))  # a gzip file


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_percent_rate_and_time_left() -> None:
    now = [0.0]
    bar = Progress("write ", 100_000_000, _Tty(), clock=lambda: now[0])
    now[0] = 2.0
    bar.advance(25_000_000)
    assert bar.line(now[0]) == (
        "write   25.0% [#######.......................]     25.0 MB    12.5 MB/s ETA 0:06"
    )


def test_off_a_terminal_the_bar_prints_a_line_per_tenth() -> None:
    out = io.StringIO()
    bar = Progress("verify", 1000, out, clock=lambda: 1.0)
    for _ in range(100):
        bar.advance(10)
    bar.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("verify 100.0%")


def test_device_urls() -> None:
    assert base_url("192.168.1.64") == "http://192.168.1.64"
    assert base_url("cam:8080/") == "http://cam:8080"
    assert base_url("https://cam") == "https://cam"
