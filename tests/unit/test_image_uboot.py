"""The U-Boot side of a board's disk (qemu-aarch64): the boot script image, RAUC's variables in
U-Boot's environment format, and the slot's kernel taken out of the root squashfs."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from vigil_tools.image import disk
from vigil_tools.image.recipe import REPO, ImageError

BOARD_DIR = REPO / "board" / "qemu-aarch64"
needs = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mkimage", "mkenvimage", "mksquashfs")),
    reason="u-boot-tools and squashfs-tools (make image-setup)",
)


@needs
def test_the_boot_script_is_a_u_boot_script_image(tmp_path: Path) -> None:
    image = disk.make_boot_script(BOARD_DIR / "boot.cmd", tmp_path / "boot.scr")
    header = image.read_bytes()[:64]
    assert struct.unpack(">I", header[:4])[0] == 0x27051956  # the legacy image's magic
    assert header[30] == 6  # IH_TYPE_SCRIPT
    assert b"BOOT_ORDER" in image.read_bytes() and b"rauc.slot=${raucslot}" in image.read_bytes()


@needs
def test_the_environment_holds_raucs_variables_behind_a_crc(tmp_path: Path) -> None:
    env = disk.make_uboot_env(tmp_path / "uboot.env").read_bytes()
    assert len(env) == disk.UBOOT_ENV_SIZE
    assert struct.unpack("<I", env[:4])[0] == zlib.crc32(env[4:])
    data = env[4:].split(b"\0\0")[0]  # the variables end with an empty one (then padding)
    variables = dict(v.split(b"=", 1) for v in data.split(b"\0"))
    assert variables == {b"BOOT_ORDER": b"A B", b"BOOT_A_LEFT": b"3", b"BOOT_B_LEFT": b"0"}
    assert not (tmp_path / "uboot.env.txt").exists()
    fw_env = (BOARD_DIR / "rootfs-overlay/etc/fw_env.config").read_text()
    assert f"{disk.UBOOT_ENV_SIZE:#06x}" in fw_env.split("\n")[-2]


@needs
def test_the_slots_kernel_comes_out_of_the_squashfs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz").write_bytes(b"kernel")
    (root / "boot/initrd.img").write_bytes(b"initrd")
    image = tmp_path / "rootfs.squashfs"
    subprocess.run(["mksquashfs", str(root), str(image), "-quiet"], check=True)
    out = disk.extract_slot_boot(image, tmp_path / "A")
    assert (out / "vmlinuz").read_bytes() == b"kernel"
    assert (out / "initrd.img").read_bytes() == b"initrd"
    (root / "boot/initrd.img").unlink()
    subprocess.run(["mksquashfs", str(root), str(image), "-quiet", "-noappend"], check=True)
    with pytest.raises(ImageError, match=r"no /boot/initrd\.img"):
        disk.extract_slot_boot(image, tmp_path / "B")


def test_a_board_without_a_bootloader_is_refused(tmp_path: Path) -> None:
    board_dir = tmp_path / "bare"
    board_dir.mkdir()
    (board_dir / "genimage.cfg").write_text("")
    with pytest.raises(ImageError, match=r"nor boot\.cmd"):
        disk._bootloader("bare", board_dir)
    assert disk._bootloader("qemu-aarch64", BOARD_DIR) == "uboot"
    assert disk._bootloader("qemu-x86_64", REPO / "board" / "qemu-x86_64") == "grub"
