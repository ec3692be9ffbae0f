"""Card images on loop devices for the storage and recording tests: the skip for hosts that
cannot attach one, and a blank 64 MB image that is detached and unmounted after the test."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CARD_MB = 64


def needs_loop_devices(*tools: str) -> pytest.MarkDecorator:
    """Skip unless running as root with loop devices and every one of `tools` installed."""
    return pytest.mark.skipif(
        os.geteuid() != 0
        or not Path("/dev/loop-control").exists()
        or not all(shutil.which(tool) for tool in tools),
        reason="needs root, loop devices, util-linux and e2fsprogs",
    )


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def loops_of(image: Path) -> list[str]:
    listing = run("losetup", "-j", str(image), "-O", "NAME", "-n")
    return [line.strip() for line in listing.splitlines() if line.strip()]


def mounted(point: Path) -> bool:
    return subprocess.run(["findmnt", str(point)], capture_output=True).returncode == 0


@pytest.fixture
def card_image(tmp_path: Path) -> Iterator[Path]:
    """A blank 64 MB card; whatever the test or the daemon left attached or mounted goes."""
    image = tmp_path / "card.img"
    with image.open("wb") as f:
        f.truncate(CARD_MB * 1024 * 1024)
    try:
        yield image
    finally:
        for point in tmp_path.glob("*/card"):
            while mounted(point):
                subprocess.run(["umount", "-l", str(point)], check=False)
        for loop in loops_of(image):
            subprocess.run(["losetup", "-d", loop], check=False)
