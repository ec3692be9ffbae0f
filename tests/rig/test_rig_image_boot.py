"""`vigil rig up --image`: the board's real disk layout boots through UEFI in the rig.

The canary's kernel and initramfs are put where the image keeps them (/boot/vmlinuz and
/boot/initrd.img in the root squashfs) and the board's disk is made around that root by the
image's own code (genimage: ESP with the standalone GRUB and RAUC's A/B grub.cfg, rootfs-a,
rootfs-b, data). Booting it checks the rig's firmware side (OVMF code and a private copy of its
variables on pflash, the disk on virtio-blk) and the board's boot chain up to the kernel: GRUB
picks slot A and the canary reports from the same kernel, with the rig's hardware present.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.rig.rig_wait import console, running, wait_for
from vigil_tools.cli import main
from vigil_tools.image.disk import build_disk
from vigil_tools.image.squashfs import make as make_squashfs
from vigil_tools.rig.canary import END, CanaryGuest, parse_report
from vigil_tools.rig.netns import namespaces
from vigil_tools.rig.qemu import OVMF_CODE, load_state
from vigil_tools.rig.spec import RigBoard

BOOT_TIMEOUT = 180
SQUASHFS_LIMIT_MB = 320

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def canary_disk(board: RigBoard, canary: CanaryGuest, tmp_path: Path) -> Path:
    for tool in ("genimage", "mksquashfs", "grub-mkstandalone"):
        if shutil.which(tool) is None:
            pytest.skip(f"the disk needs {tool}")
    if not OVMF_CODE.is_file():
        pytest.skip(f"no UEFI firmware at {OVMF_CODE} (Debian package ovmf)")
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    shutil.copyfile(canary.kernel, root / "boot" / "vmlinuz")
    shutil.copyfile(canary.initrd, root / "boot" / "initrd.img")
    started = time.monotonic()
    squashfs = make_squashfs_file(root, tmp_path / "rootfs.squashfs")
    disk = build_disk(board.name, squashfs, tmp_path / "disk.img")
    print(f"canary disk (squashfs + genimage): {time.monotonic() - started:.1f} s")
    return disk


def make_squashfs_file(root: Path, out: Path) -> Path:
    make_squashfs(root, out, epoch=0, architecture="amd64", max_mb=SQUASHFS_LIMIT_MB)
    return out


def test_the_board_disk_boots_through_uefi_and_grub(
    board: RigBoard, canary_disk: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "rig"
    started = time.monotonic()
    assert main(["rig", "up", "--dir", str(folder), board.name, "--image", str(canary_disk)]) == 0
    state = load_state(folder)
    try:
        wait_for("the canary's report", lambda: END in console(folder), BOOT_TIMEOUT)
        print(f"rig up --image to the canary's report: {time.monotonic() - started:.1f} s wall")
        text = console(folder)
        assert "Vigil: booting slot A" in text  # the board's grub.cfg chose the slot
        report = parse_report(text)
        assert report.one("kernel") == board.kernel.release
        assert set(report.modules.values()) == {"ok"}
        assert report.one("video0") == "vivid-000-vid-cap"
        assert int(report.one("mmcblk0_bytes")) == board.rig.card_size_mb * 1024 * 1024
        assert (folder / "ovmf-vars.fd").is_file()
    finally:
        assert main(["rig", "down", "--dir", str(folder), board.name]) == 0
    wait_for("QEMU's exit", lambda: not running(state.pid), 5)
    assert state.netns not in namespaces()
    assert not (folder / "ovmf-vars.fd").exists()
