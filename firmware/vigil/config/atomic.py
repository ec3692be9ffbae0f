"""Crash-safe file replacement: temp file, fsync, rename, directory fsync.

A reader sees either the old bytes or the new bytes, never a mix, whatever moment the process
or the machine dies at. The previous version can be kept beside the file as `<name>.last-good`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def last_good_path(path: Path) -> Path:
    return path.with_name(path.name + ".last-good")


def write_atomic(
    path: Path, data: bytes, *, mode: int = 0o644, keep_last_good: bool = False
) -> None:
    """Replace `path` with `data` atomically; optionally keep the replaced version as last-good."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not loosen a secret's mode
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if keep_last_good and path.exists():
        # A hard link is atomic and costs no copy; replacing the old link is atomic too.
        link_tmp = path.with_name(f".{path.name}.{os.getpid()}.lg")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link_tmp)
        os.link(path, link_tmp)
        os.replace(link_tmp, last_good_path(path))
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_stale_temporaries(directory: Path) -> None:
    """Temp files left by a process killed mid-write are garbage: the target is intact."""
    for leftover in directory.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)
    for leftover in directory.glob(".*.lg"):
        leftover.unlink(missing_ok=True)
