"""The disk image of a GRUB board (qemu-x86_64): a root squashfs in, a bootable GPT disk out.

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


def _stage_inputs(board_dir: Path, squashfs: Path, inputs: Path) -> None:
    inputs.mkdir()
    make_grub_efi(board_dir / GRUB_EARLY_CONFIG, inputs / GRUB_EFI)
    shutil.copyfile(board_dir / GRUB_CONFIG, inputs / GRUB_CONFIG)
    make_grubenv(inputs / "grubenv")
    (inputs / SQUASHFS_INPUT).symlink_to(squashfs.resolve())


def build_disk(board: str, squashfs: Path, out: Path) -> Path:
    """Writes the board's disk image (GPT: efi, rootfs-a, rootfs-b, data) to `out`."""
    board_dir = board_directory(board)
    for name in (GENIMAGE_CONFIG, GRUB_CONFIG, GRUB_EARLY_CONFIG):
        if not (board_dir / name).is_file():
            raise ImageError(f"board {board!r} has no {name}: it does not boot with GRUB")
    check_squashfs(squashfs)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".disk-", dir=out.parent) as tmp:
        work = Path(tmp)
        _stage_inputs(board_dir, squashfs, work / "input")
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
