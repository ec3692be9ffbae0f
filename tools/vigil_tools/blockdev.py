"""Block devices as `vigil flash` sees them: size, model, partitions, and the reasons one must not
be written (mounted, swap, held by device-mapper/LVM/RAID, the disk of the running system's `/`
or `/boot`), all read from sysfs and procfs so the check needs no tool.

Only whole disks are accepted: writing a disk image into a partition is never what is meant. A
device is named by its sysfs directory (`/sys/dev/block/MAJ:MIN`), whatever node or link was given.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

SYS_DEV_BLOCK = Path("/sys/dev/block")
SYS_BLOCK = Path("/sys/block")
MOUNTINFO = Path("/proc/self/mountinfo")
SWAPS = Path("/proc/swaps")
SYSTEM_MOUNTS = ("/", "/boot")
SECTOR = 512  # sysfs `size` counts 512-byte sectors whatever the device's block size


class DeviceError(Exception):
    """The path cannot be flashed; the message says why."""


@dataclass(frozen=True)
class Disk:
    """A whole block device and its partitions, by kernel name (`loop7`, `loop7p1`)."""

    path: Path
    name: str
    sysdir: Path
    size: int
    logical_block_size: int
    model: str
    partitions: tuple[str, ...]

    def numbers(self) -> dict[str, str]:
        """`MAJ:MIN` -> kernel name, for the disk and each partition."""
        names = (self.name, *self.partitions)
        dirs = (self.sysdir, *(self.sysdir / part for part in self.partitions))
        return {(d / "dev").read_text().strip(): n for n, d in zip(names, dirs, strict=True)}


def _numbers_of(st_rdev: int) -> str:
    return f"{os.major(st_rdev)}:{os.minor(st_rdev)}"


def _model(sysdir: Path) -> str:
    backing = sysdir / "loop" / "backing_file"
    if backing.exists():
        return f"loop device on {backing.read_text().strip()}"
    parts = []
    for field in ("vendor", "model"):
        path = sysdir / "device" / field
        if path.exists():
            parts.append(path.read_text().strip())
    return " ".join(p for p in parts if p) or "unknown model"


def inspect(path: Path) -> Disk:
    """The whole disk at `path`; DeviceError if it is missing, not a block device or a partition."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DeviceError(f"{path}: {exc.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise DeviceError(f"{path} is not a block device")
    sysdir = (SYS_DEV_BLOCK / _numbers_of(st.st_rdev)).resolve()
    if (sysdir / "partition").exists():
        whole = f"/dev/{sysdir.parent.name}"
        raise DeviceError(f"{path} is a partition ({sysdir.name}); give the whole disk ({whole})")
    partitions = tuple(sorted(p.name for p in sysdir.iterdir() if (p / "partition").exists()))
    return Disk(
        path=path,
        name=sysdir.name,
        sysdir=sysdir,
        size=int((sysdir / "size").read_text()) * SECTOR,
        logical_block_size=int((sysdir / "queue" / "logical_block_size").read_text()),
        model=_model(sysdir),
        partitions=partitions,
    )


def _disks_under(sysdir: Path) -> set[str]:
    """The whole disks a block device lives on: itself, its parent disk, or through `slaves`
    (device-mapper, RAID) the disks under those."""
    if (sysdir / "partition").exists():
        return {sysdir.parent.name}
    slaves = sorted((sysdir / "slaves").glob("*")) if (sysdir / "slaves").is_dir() else []
    if not slaves:
        return {sysdir.name}
    return set().union(*(_disks_under(slave.resolve()) for slave in slaves))


def system_disks() -> dict[str, list[str]]:
    """Disk name -> the system mount points (`/`, `/boot`) it holds; a root on a file system
    without a block device (overlay, tmpfs) holds no disk."""
    held: dict[str, list[str]] = {}
    for point in SYSTEM_MOUNTS:
        try:
            numbers = _numbers_of(os.stat(point).st_dev)
        except OSError:
            continue
        sysdir = SYS_DEV_BLOCK / numbers
        if sysdir.exists():
            for disk in _disks_under(sysdir.resolve()):
                held.setdefault(disk, []).append(point)
    return held


def _mounts() -> list[tuple[str, str, str]]:
    """(MAJ:MIN, source, mount point) of each mount, from mountinfo (proc(5))."""
    mounts = []
    for line in MOUNTINFO.read_text().splitlines():
        fields = line.split()
        source = fields[fields.index("-") + 2]
        point = fields[4].replace("\\040", " ")
        mounts.append((fields[2], source, point))
    return mounts


def _source_numbers(source: str) -> str | None:
    if not source.startswith("/dev/"):
        return None
    try:
        st = os.stat(source)
    except OSError:
        return None
    return _numbers_of(st.st_rdev) if stat.S_ISBLK(st.st_mode) else None


def _swaps() -> list[str]:
    if not SWAPS.exists():
        return []
    return [line.split()[0] for line in SWAPS.read_text().splitlines()[1:] if line.strip()]


def _loops_on(numbers: dict[str, str]) -> dict[str, str]:
    """`MAJ:MIN` -> "loopM (on NAME)" for each loop device whose backing file is one of the
    block devices `numbers` (a partition mounted with `mount -o loop,offset=`); such a loop
    opens its backing device without claiming it, so neither holders nor O_EXCL show it."""
    loops = {}
    for backing in SYS_BLOCK.glob("loop*/loop/backing_file"):
        name = numbers.get(_source_numbers(backing.read_text().strip()) or "")
        if name:
            loop_dir = backing.parent.parent
            loops[(loop_dir / "dev").read_text().strip()] = f"{loop_dir.name} (a loop on {name})"
    return loops


def reasons_not_to_write(disk: Disk) -> list[str]:
    """Why writing `disk` would break something running; empty when it is free."""
    reasons = []
    points = system_disks().get(disk.name)
    if points:
        reasons.append(f"it holds the running system ({' and '.join(points)})")
    numbers = disk.numbers()
    loops = _loops_on(numbers)
    reasons += [f"{loop} is attached" for loop in loops.values()]
    numbers |= loops
    for major_minor, source, point in _mounts():
        name = numbers.get(major_minor) or numbers.get(_source_numbers(source) or "")
        if name:
            reasons.append(f"{name} is mounted on {point}")
    for swap in _swaps():
        name = numbers.get(_source_numbers(swap) or "")
        if name:
            reasons.append(f"{name} is used as swap")
    for name in (disk.name, *disk.partitions):
        sysdir = disk.sysdir if name == disk.name else disk.sysdir / name
        holders = sorted(h.name for h in (sysdir / "holders").glob("*"))
        if holders:
            reasons.append(f"{name} is held by {', '.join(holders)} (device-mapper, LVM or RAID)")
    return reasons


def describe(disk: Disk) -> str:
    """What the user is about to erase: model, size and partitions (lsblk's table if present)."""
    head = f"{disk.path} ({disk.name}): {disk.model}, {disk.size / 1e6:.1f} MB ({disk.size} bytes)"
    lsblk = shutil.which("lsblk")
    if lsblk:
        table = subprocess.run(
            [lsblk, "-o", "NAME,SIZE,TYPE,FSTYPE,LABEL,PARTLABEL,MOUNTPOINTS", str(disk.path)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.rstrip()
        if table:
            return f"{head}\n{table}"
    parts = ", ".join(disk.partitions) or "no partitions"
    return f"{head}; {parts}"
