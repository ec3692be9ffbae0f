"""`vigil flash IMAGE DEVICE`: write a disk image to a whole block device, read it back to verify,
and have the kernel re-read the partition table.

Chosen where the issue is silent:
- The device is opened O_EXCL (the kernel then refuses mounts and other exclusive users while we
  write, and we fail with EBUSY if one is there) and O_DIRECT in 4 MiB chunks from a page-aligned
  buffer, so the page cache neither doubles the memory nor hides what reached the device; a tail
  that is not a whole logical block is written with O_DIRECT cleared. Where O_DIRECT is refused
  the writes are buffered. Either way the device is fsync'ed before the read-back.
- Verification compares a SHA-256 per chunk of the image with one per chunk read back, after
  dropping the device's buffers (BLKFLSBUF and posix_fadvise DONTNEED), and names the first chunk
  that differs.
- Only raw disk images (an MBR or GPT at the start) are accepted unless --force-raw: a file
  system image or a compressed file on a whole disk is a mistake more often than not.
- Exit codes: 0 written and verified; 1 refused, nothing written; 2 usage; 3 the device was
  written but the write or the verification failed, so its contents cannot be trusted;
  130 interrupted (a partly written device).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import mmap
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from vigil_tools.blockdev import DeviceError, Disk, describe, inspect, reasons_not_to_write
from vigil_tools.progress import Progress

CHUNK = 4 * 1024 * 1024
BLKRRPART = 0x125F  # <linux/fs.h> _IO(0x12, 95): re-read the partition table
BLKFLSBUF = 0x1261  # <linux/fs.h> _IO(0x12, 97): flush and drop the device's buffers
MBR_SIGNATURE = b"\x55\xaa"
GPT_SIGNATURE = b"EFI PART"
GPT_HEADER_OFFSETS = (512, 4096)  # LBA 1 on 512-byte and 4 KiB sector disks
MBR_ENTRIES = 446
EXIT_REFUSED = 1
EXIT_BROKEN = 3
EXIT_INTERRUPTED = 130


class Refused(Exception):
    """Nothing was written; the message says why."""


class FlashFailed(Exception):
    """The device was written (at least partly) but cannot be trusted; the message says why."""


@dataclass(frozen=True)
class FlashResult:
    written: int
    direct_io: bool
    partitions_reread: bool
    reread_error: str


def _is_mbr(head: bytes) -> bool:
    """A DOS partition table (or GPT's protective MBR): the 0x55AA signature and four entries
    whose boot flags are 0x00 or 0x80, at least one in use. A FAT or ext boot sector also ends
    in 0x55AA but has boot code where the entries would be."""
    if len(head) < 512 or head[510:512] != MBR_SIGNATURE:
        return False
    entries = [head[MBR_ENTRIES + 16 * i : MBR_ENTRIES + 16 * (i + 1)] for i in range(4)]
    return all(e[0] in (0x00, 0x80) for e in entries) and any(e[4] != 0 for e in entries)


def is_disk_image(head: bytes) -> bool:
    """Whether the first 8 KiB of a file start a partitioned disk (MBR or GPT)."""
    gpt = any(head[o : o + 8] == GPT_SIGNATURE for o in GPT_HEADER_OFFSETS)
    return gpt or _is_mbr(head)


def check_image(image: Path, force_raw: bool) -> int:
    """The image's size in bytes; Refused if it is missing, empty or not a disk image."""
    try:
        size = image.stat().st_size
        if not image.is_file():
            raise Refused(f"{image} is not a regular file")
        with image.open("rb") as f:
            head = f.read(8192)
    except OSError as exc:
        raise Refused(f"cannot read the image {image}: {exc.strerror}") from None
    if size == 0:
        raise Refused(f"{image} is empty")
    if not force_raw and not is_disk_image(head):
        raise Refused(
            f"{image} has no MBR or GPT partition table, so it is not a disk image "
            "(a file system image or a compressed file?); --force-raw writes it anyway"
        )
    return size


def check_device(disk: Disk, image_size: int) -> None:
    """Refused if writing `disk` would break a running system or the image does not fit."""
    reasons = reasons_not_to_write(disk)
    if reasons:
        raise Refused(f"refusing to write {disk.path}: " + "; ".join(reasons))
    if disk.size < image_size:
        raise Refused(
            f"{disk.path} is too small: {disk.size} bytes for an image of {image_size} bytes"
        )


def confirm(disk: Disk, image: Path, answer_from: TextIO, ask_to: TextIO) -> bool:
    """Show what is on the device and ask; anything but y/yes (or end of input) is no."""
    print(describe(disk), file=ask_to)
    ask_to.write(f"Write {image} to {disk.path}? Everything on {disk.path} is lost. [y/N] ")
    ask_to.flush()
    return answer_from.readline().strip().lower() in ("y", "yes")


def _open_device(disk: Disk) -> tuple[int, bool]:
    """An exclusive read-write descriptor, with O_DIRECT when the device takes it."""
    flags = os.O_RDWR | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(disk.path, flags | os.O_DIRECT), True
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise Refused(f"{disk.path} is in use (mounted or opened exclusively)") from None
        if exc.errno != errno.EINVAL:
            raise Refused(f"cannot open {disk.path}: {exc.strerror}") from None
    try:
        return os.open(disk.path, flags), False
    except OSError as exc:
        raise Refused(f"cannot open {disk.path}: {exc.strerror}") from None


@contextlib.contextmanager
def _aligned_buffer() -> Iterator[memoryview]:
    """A CHUNK-sized, page-aligned buffer (what O_DIRECT needs), released on the way out."""
    with mmap.mmap(-1, CHUNK) as buffer, memoryview(buffer) as view:
        yield view


def _set_direct(fd: int, on: bool) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT if on else flags & ~os.O_DIRECT)


def _write_all(fd: int, data: memoryview, offset: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


def _write(fd: int, image: Path, disk: Disk, direct: bool, progress: Progress) -> list[bytes]:
    """Copy the image to offset 0 of the device; the SHA-256 of each chunk, in order."""
    digests = []
    block = disk.logical_block_size
    with image.open("rb", buffering=0) as source, _aligned_buffer() as view:
        offset = 0
        while count := _read_all(source.fileno(), view, offset):
            digests.append(hashlib.sha256(view[:count]).digest())
            whole = count - count % block if direct else count
            _write_all(fd, view[:whole], offset)
            if whole < count:  # an image that ends inside a logical block
                _set_direct(fd, False)
                _write_all(fd, view[whole:count], offset + whole)
                _set_direct(fd, True)
            offset += count
            progress.advance(count)
    os.fsync(fd)
    progress.finish()
    return digests


def _drop_buffers(fd: int) -> None:
    fcntl.ioctl(fd, BLKFLSBUF)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _read_all(fd: int, view: memoryview, offset: int) -> int:
    done = 0
    while done < len(view):
        count = os.preadv(fd, [view[done:]], offset + done)
        if count == 0:
            break
        done += count
    return done


def _verify(fd: int, digests: list[bytes], size: int, disk: Disk, progress: Progress) -> None:
    """Read the image's extent back and compare chunk digests; FlashFailed at the first miss."""
    block = disk.logical_block_size
    with _aligned_buffer() as view:
        for index, expected in enumerate(digests):
            offset = index * CHUNK
            count = min(CHUNK, size - offset)
            aligned = -(-count // block) * block  # O_DIRECT reads whole blocks
            if _read_all(fd, view[:aligned], offset) < count:
                raise FlashFailed(f"{disk.path} ended at {offset} bytes while reading back")
            if hashlib.sha256(view[:count]).digest() != expected:
                raise FlashFailed(
                    f"verification failed: the {count} bytes at offset {offset} of {disk.path} "
                    "differ from the image (a failing card or reader?)"
                )
            progress.advance(count)
    progress.finish()


def _reread_partitions(fd: int) -> str:
    """Ask the kernel for the new partition table; the error text, or "" when it worked."""
    try:
        fcntl.ioctl(fd, BLKRRPART)
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def flash(
    image: Path,
    disk: Disk,
    *,
    stream: TextIO | None = None,
    after_write: Callable[[], None] | None = None,
) -> FlashResult:
    """Write, verify and re-read the partitions. `after_write` runs between the fsync and the
    read-back: the tests corrupt the medium there to see the verification catch it."""
    size = image.stat().st_size
    fd, direct = _open_device(disk)
    try:
        try:
            digests = _write(fd, image, disk, direct, Progress("write ", size, stream))
            if after_write is not None:
                after_write()
            _drop_buffers(fd)
            _verify(fd, digests, size, disk, Progress("verify", size, stream))
        except OSError as exc:
            raise FlashFailed(f"I/O error on {disk.path}: {exc.strerror or exc}") from None
        error = _reread_partitions(fd)
    finally:
        os.close(fd)
    return FlashResult(size, direct, not error, error)


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    flash_cmd = commands.add_parser(
        "flash",
        help="write a disk image to a card or disk, verify it by reading it back",
        description="Write IMAGE to the whole block device DEVICE and verify it. Refuses a "
        "mounted, swap, held or system device and one smaller than the image.",
    )
    flash_cmd.add_argument("image", type=Path, metavar="IMAGE", help="raw disk image (.img)")
    flash_cmd.add_argument(
        "device", type=Path, metavar="DEVICE", help="a whole disk: /dev/sdX, /dev/mmcblkN"
    )
    flash_cmd.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    flash_cmd.add_argument(
        "--force-raw",
        action="store_true",
        help="write IMAGE even if it has no MBR or GPT partition table",
    )


def _checked_and_confirmed(args: argparse.Namespace) -> Disk:
    size = check_image(args.image, args.force_raw)
    disk = inspect(args.device)
    check_device(disk, size)
    try:
        if args.yes or confirm(disk, args.image, sys.stdin, sys.stderr):
            return disk
    except KeyboardInterrupt:
        print(file=sys.stderr)
    raise Refused(f"not written: {args.device} is as it was")


def run(args: argparse.Namespace) -> int:
    """The `vigil flash` command: checks, confirmation, flash; the exit code."""
    try:
        disk = _checked_and_confirmed(args)
        result = flash(args.image, disk)
    except (Refused, DeviceError) as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except FlashFailed as exc:
        print(f"vigil: {exc}; do not use {args.device}", file=sys.stderr)
        return EXIT_BROKEN
    except KeyboardInterrupt:
        print(f"\nvigil: interrupted: {args.device} is partly written", file=sys.stderr)
        return EXIT_INTERRUPTED
    mode = "direct I/O" if result.direct_io else "buffered I/O"
    print(f"{args.device}: {result.written} bytes written ({mode}) and verified")
    if not result.partitions_reread:
        print(
            f"vigil: warning: the kernel did not re-read the partition table of {args.device} "
            f"({result.reread_error}); replug the card or run `blockdev --rereadpt {args.device}`",
            file=sys.stderr,
        )
    return 0
