"""The root as a squashfs: `mksquashfs`, reproducible, checked against the board's size limit.

xz, not zstd: GRUB reads the kernel and the initramfs out of the squashfs (`squash4`), and
bookworm's GRUB reads gzip, xz and lzo squashfs only. On amd64 the x86 BCJ filter shrinks the
binaries some more. `-all-root` (the tree is root's anyway), `-all-time` and `-mkfs-time` at
SOURCE_DATE_EPOCH, `-noappend`: the same tree gives the same bytes (mksquashfs sorts directory
entries and, since 4.5, is reproducible by default). A file over the limit is deleted and the
build fails, so no oversized root is left for a bundle or a disk to pick up; a failed build leaves
the previous squashfs as it was.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from vigil_tools.image.recipe import ImageError

MB = 1_000_000
BCJ_FILTERS = {"amd64": "x86", "i386": "x86", "armhf": "armthumb", "armel": "arm"}


def mksquashfs_command(root: Path, out: Path, epoch: int, architecture: str) -> list[str]:
    command = ["mksquashfs", str(root), str(out), "-noappend", "-all-root", "-quiet"]
    command += ["-comp", "xz", "-b", "1M"]
    if architecture in BCJ_FILTERS:
        command += ["-Xbcj", BCJ_FILTERS[architecture]]
    command += ["-mkfs-time", str(epoch), "-all-time", str(epoch)]
    return command


def make(root: Path, out: Path, epoch: int, architecture: str, max_mb: int) -> int:
    """`out` made from `root`; its size in bytes. On failure, and above `max_mb` MB, an
    ImageError and `out` as it was (the new file is made beside it and renamed when good)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    done = subprocess.run(
        mksquashfs_command(root, partial, epoch, architecture), capture_output=True, text=True
    )
    if done.returncode:
        partial.unlink(missing_ok=True)
        raise ImageError(f"mksquashfs failed: {done.stderr.strip() or done.stdout.strip()}")
    size = partial.stat().st_size
    if size > max_mb * MB:
        partial.unlink()
        raise ImageError(f"the root is {size / MB:.1f} MB, more than the board's {max_mb} MB")
    partial.replace(out)
    return size


def listing(image: Path) -> list[str]:
    """The paths in a squashfs (`unsquashfs -l`), relative to its root, sorted."""
    done = subprocess.run(
        ["unsquashfs", "-l", "-d", "", str(image)], capture_output=True, text=True
    )
    if done.returncode:
        raise ImageError(f"unsquashfs -l {image} failed: {done.stderr.strip()}")
    return sorted(line.lstrip("/") for line in done.stdout.splitlines() if line.startswith("/"))
