"""A tiny root file system for boot tests: the board's real kernel, a busybox initramfs.

The squashfs holds `/boot/vmlinuz` (the Debian kernel pinned in `board/<board>/kernel.toml`)
and `/boot/initrd.img`, where GRUB looks for them in a board image's root slot. The initramfs's
`/init` prints the `rauc.slot=` word of the kernel command line to the serial console as
`VIGIL-SLOT <X>` and powers the machine off, so a boot test learns which slot GRUB chose in
seconds, without a full Debian root.

The two Debian packages come from the rig's package cache (`vigil_tools.rig.debs`:
`$VIGIL_CACHE/kernel/`, fetched with `apt-get download` when they are not there); only the two
files needed are read out of them.
"""

from __future__ import annotations

import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path

from vigil_tools.image.squashfs import mksquashfs_command
from vigil_tools.rig.debs import fetch
from vigil_tools.rig.spec import load_rig_board

BUSYBOX_PACKAGE = "busybox-static"
SLOT_MARK = "VIGIL-SLOT"

INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
for word in $(/bin/busybox cat /proc/cmdline); do
    case "$word" in
        rauc.slot=*) echo "{SLOT_MARK} ${{word#rauc.slot=}}" ;;
    esac
done
/bin/busybox poweroff -f
"""


def _debs(board: str) -> tuple[Path, Path]:
    """The board's pinned kernel package and busybox-static, from (or into) the kernel cache."""
    kernel = load_rig_board(board).kernel
    image, busybox = fetch([f"{kernel.image_package}={kernel.version}", BUSYBOX_PACKAGE])
    return image, busybox


def _extract(deb: Path, member_prefix: str, dest: Path) -> None:
    """Writes the one file of `deb` whose path starts with `member_prefix` to `dest`."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                if member.isfile() and member.name.startswith(member_prefix):
                    source = tar.extractfile(member)
                    assert source is not None
                    dest.write_bytes(source.read())
                    break
            else:
                raise RuntimeError(f"{deb.name} has no {member_prefix}*")
        proc.stdout.close()
        proc.kill()


def _cpio_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> bytes:
    """One record of a `newc` cpio archive (the format of Linux initramfs)."""
    encoded = name.encode() + b"\0"
    fields = [0, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    pad_name = -(len(header) + len(encoded)) % 4
    return header + encoded + b"\0" * pad_name + data + b"\0" * (-len(data) % 4)


def initramfs(busybox: bytes) -> bytes:
    entries = [
        _cpio_entry("dev", stat.S_IFDIR | 0o755),
        _cpio_entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        _cpio_entry("proc", stat.S_IFDIR | 0o755),
        _cpio_entry("bin", stat.S_IFDIR | 0o755),
        _cpio_entry("bin/busybox", stat.S_IFREG | 0o755, busybox),
        _cpio_entry("init", stat.S_IFREG | 0o755, INIT_SCRIPT.encode()),
        _cpio_entry("TRAILER!!!", 0),
    ]
    return b"".join(entries)


def build_tiny_squashfs(out: Path, board: str = "qemu-x86_64") -> Path:
    """Writes the squashfs with the board's kernel to `out`, made as the board's root is."""
    kernel_deb, busybox_deb = _debs(board)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        (root / "boot").mkdir(parents=True)
        _extract(kernel_deb, "./boot/vmlinuz-", root / "boot" / "vmlinuz")
        busybox = Path(tmp) / "busybox"
        _extract(busybox_deb, "./bin/busybox", busybox)
        (root / "boot" / "initrd.img").write_bytes(initramfs(busybox.read_bytes()))
        command = mksquashfs_command(root, out, epoch=0, architecture="amd64")
        subprocess.run(command, check=True, capture_output=True)
    return out
