"""The disk image of a board: a root squashfs in, a bootable GPT disk out, booted by GRUB
(qemu-x86_64: the board has grub.cfg) or by U-Boot (qemu-aarch64: the board has boot.cmd).

genimage lays the disk out from `board/<board>/genimage.cfg`: partitions `efi` (vfat: the
standalone GRUB EFI binary at /EFI/BOOT/BOOTX64.EFI, grub.cfg, grubenv), `rootfs-a` (the
squashfs), `rootfs-b` (left empty, zeros: the first RAUC bundle fills it, and grubenv says
B_OK=0 until then) and `data` (a small empty ext4 labelled vigil-data, grown on first boot).

GRUB is one file, made by `grub-mkstandalone` with its modules built in and
`board/<board>/grub-early.cfg` embedded: that finds the ESP it was loaded from and hands over to
the ESP's grub.cfg (RAUC's A/B scheme), which loads the kernel and initrd of the chosen slot
from inside its squashfs (`/boot/vmlinuz`, `/boot/initrd.img`) with GRUB's squash4. GRUB 2.06
reads gzip, lzo and xz squashfs only, so a squashfs in another compression is refused here
rather than found unbootable later. The initial grubenv (slot A good, B not) is written with
grub-editenv, the tool RAUC uses on the device.

A U-Boot board's boot partition (still named `efi`, so that /etc/fstab mounts it at /boot/efi
on every board) holds `boot.scr` (`board/<board>/boot.cmd` through `mkimage -T script`, which
U-Boot's distro boot runs from the first partition), `uboot.env` (RAUC's U-Boot variables in
U-Boot's environment format, made with mkenvimage: slot A with 3 tries, B with none, the size
/etc/fw_env.config gives) and, because Debian's U-Boot reads no squashfs, slot A's kernel and
initramfs in `A/` (taken out of the squashfs with unsquashfs; RAUC's post-install handler on the
device copies them for a slot it writes). Any squashfs compression does there.

Everything is built in a temporary folder beside `out`; `out` is replaced only when genimage
succeeded, so a failed build changes nothing.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from vigil_tools.image.recipe import ImageError, board_directory

GENIMAGE_CONFIG = "genimage.cfg"
GRUB_CONFIG = "grub.cfg"
GRUB_EARLY_CONFIG = "grub-early.cfg"
DISK_NAME = "disk.img"  # the hdimage genimage.cfg makes
SQUASHFS_INPUT = "rootfs.squashfs"  # the input name genimage.cfg puts in rootfs-a
GRUB_EFI = "BOOTX64.EFI"
BOOT_SCRIPT = "boot.cmd"  # a U-Boot board's A/B script
# RAUC's U-Boot variables on a fresh disk: A is the good slot, B is empty and never tried.
INITIAL_UBOOT_ENV = {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "0"}
UBOOT_ENV_SIZE = 0x4000  # the environment's size in boot.cmd and /etc/fw_env.config
SLOT_BOOT_FILES = ("vmlinuz", "initrd.img")  # /boot/<name> in the root -> A/<name>
# Built into the GRUB binary: GPT, the ESP, the root squashfs and its decompressors, the A/B
# script's commands and the Linux loader (ext2 reads an ext4 root, should a board use one).
GRUB_MODULES = (
    *("part_gpt", "fat", "squash4", "gzio", "lzopio", "xzio", "ext2", "normal", "configfile"),
    *("linux", "loadenv", "test", "echo", "regexp", "search", "sleep", "reboot", "halt"),
)
# RAUC's grubenv on a fresh disk: A is the good slot, B is empty.
INITIAL_GRUBENV = {"ORDER": "A B", "A_OK": "1", "B_OK": "0", "A_TRY": "0", "B_TRY": "0"}

SQUASHFS_MAGIC = b"hsqs"
# squashfs superblock: compression id (u16) at byte 20; ids GRUB 2.06's squash4 can read.
GRUB_COMPRESSIONS = {1: "gzip", 3: "lzo", 4: "xz"}
OTHER_COMPRESSIONS = {2: "lzma", 5: "lz4", 6: "zstd"}


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, cwd=cwd)
    except FileNotFoundError:
        raise ImageError(
            f"{what}: {command[0]} is not installed (see IMAGE_APT_PACKAGES in the Makefile)"
        ) from None
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or exc.stdout or "").strip().splitlines()
        errors = [line for line in output if line.startswith("ERROR")]  # genimage's own
        detail = "\n".join(errors or output[-8:]) or f"exit code {exc.returncode}"
        raise ImageError(f"{what} failed:\n{detail}") from None


def check_squashfs(path: Path) -> None:
    """ImageError unless `path` is a squashfs that GRUB can read kernels from."""
    try:
        with path.open("rb") as file:
            head = file.read(24)
    except OSError as exc:
        raise ImageError(f"cannot read the root squashfs {path}: {exc.strerror}") from None
    if len(head) < 24 or head[:4] != SQUASHFS_MAGIC:
        raise ImageError(f"{path} is not a squashfs image")
    (compression,) = struct.unpack_from("<H", head, 20)
    if compression not in GRUB_COMPRESSIONS:
        name = OTHER_COMPRESSIONS.get(compression, f"compression {compression}")
        readable = ", ".join(GRUB_COMPRESSIONS.values())
        raise ImageError(f"{path} is compressed with {name}; GRUB reads only {readable}")


def make_grub_efi(early_config: Path, out: Path) -> Path:
    """The standalone GRUB EFI binary with `early_config` as its embedded grub.cfg."""
    modules = " ".join(GRUB_MODULES)
    _run(
        [
            "grub-mkstandalone",
            "--format=x86_64-efi",
            f"--modules={modules}",
            f"--install-modules={modules}",
            "--locales=",
            "--fonts=",
            "--themes=",
            f"--output={out}",
            f"boot/grub/grub.cfg={early_config}",
        ],
        "grub-mkstandalone",
    )
    return out


def make_grubenv(out: Path, values: dict[str, str] = INITIAL_GRUBENV) -> Path:
    """A GRUB environment block holding `values` (grub-editenv, as RAUC writes it)."""
    _run(["grub-editenv", str(out), "create"], "grub-editenv")
    _run(
        ["grub-editenv", str(out), "set", *(f"{k}={v}" for k, v in values.items())],
        "grub-editenv",
    )
    return out


def make_boot_script(script: Path, out: Path) -> Path:
    """U-Boot's script image of `script` (`mkimage -T script`, as `source` runs it)."""
    header = ("-A", "arm64", "-O", "linux", "-T", "script", "-C", "none", "-n", "Vigil A/B")
    _run(["mkimage", *header, "-d", str(script), str(out)], "mkimage")
    return out


def make_uboot_env(
    out: Path, values: dict[str, str] = INITIAL_UBOOT_ENV, size: int = UBOOT_ENV_SIZE
) -> Path:
    """A U-Boot environment file holding `values` (mkenvimage: CRC32 then the variables)."""
    text = out.with_name(out.name + ".txt")
    text.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    _run(["mkenvimage", "-s", str(size), "-o", str(out), str(text)], "mkenvimage")
    text.unlink()
    return out


def extract_slot_boot(squashfs: Path, out: Path) -> Path:
    """The root's /boot/vmlinuz and /boot/initrd.img, copied out of `squashfs` into `out`."""
    with tempfile.TemporaryDirectory(prefix=".boot-", dir=out.parent) as tmp:
        tree = Path(tmp) / "root"
        members = [f"boot/{name}" for name in SLOT_BOOT_FILES]
        _run(["unsquashfs", "-n", "-d", str(tree), str(squashfs), *members], "unsquashfs")
        out.mkdir()
        for name in SLOT_BOOT_FILES:
            if not (tree / "boot" / name).is_file():
                raise ImageError(f"{squashfs} has no /boot/{name} for U-Boot to load")
            shutil.copyfile(tree / "boot" / name, out / name)
    return out


def _stage_grub(board_dir: Path, inputs: Path) -> None:
    make_grub_efi(board_dir / GRUB_EARLY_CONFIG, inputs / GRUB_EFI)
    shutil.copyfile(board_dir / GRUB_CONFIG, inputs / GRUB_CONFIG)
    make_grubenv(inputs / "grubenv")


def _stage_uboot(board_dir: Path, squashfs: Path, inputs: Path) -> None:
    make_boot_script(board_dir / BOOT_SCRIPT, inputs / "boot.scr")
    make_uboot_env(inputs / "uboot.env")
    extract_slot_boot(squashfs, inputs / "A")


def _bootloader(board: str, board_dir: Path) -> str:
    """ "grub" or "uboot", from the board's files; ImageError if it has neither complete."""
    if not (board_dir / GENIMAGE_CONFIG).is_file():
        raise ImageError(f"board {board!r} has no {GENIMAGE_CONFIG}")
    if (board_dir / BOOT_SCRIPT).is_file():
        return "uboot"
    for name in (GRUB_CONFIG, GRUB_EARLY_CONFIG):
        if not (board_dir / name).is_file():
            raise ImageError(
                f"board {board!r} has no {name} (GRUB) nor {BOOT_SCRIPT} (U-Boot): it does not boot"
            )
    return "grub"


def build_disk(board: str, squashfs: Path, out: Path) -> Path:
    """Writes the board's disk image (GPT: efi, rootfs-a, rootfs-b, data) to `out`."""
    board_dir = board_directory(board)
    bootloader = _bootloader(board, board_dir)
    if bootloader == "grub":
        check_squashfs(squashfs)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".disk-", dir=out.parent) as tmp:
        work = Path(tmp)
        inputs = work / "input"
        inputs.mkdir()
        if bootloader == "grub":
            _stage_grub(board_dir, inputs)
        else:
            _stage_uboot(board_dir, squashfs, inputs)
        (inputs / SQUASHFS_INPUT).symlink_to(squashfs.resolve())
        (work / "root").mkdir()  # genimage wants a root path; every image here has its content
        _run(
            [
                "genimage",
                "--config",
                str(board_dir / GENIMAGE_CONFIG),
                "--rootpath",
                str(work / "root"),
                "--tmppath",
                str(work / "tmp"),
                "--inputpath",
                str(work / "input"),
                "--outputpath",
                str(work / "output"),
            ],
            "genimage",
            cwd=work,
        )
        os.replace(work / "output" / DISK_NAME, out)
    return out
