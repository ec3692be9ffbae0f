"""`vigil image build --board B`: the whole board image, root squashfs then disk.

The root comes from `rootfs.build_rootfs` (`<out>/rootfs.squashfs`), the disk from
`disk.build_disk` (`<out>/disk.img`), `out` being the board's build folder (build/<board>).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from vigil_tools.image.disk import DISK_NAME, build_disk
from vigil_tools.image.rootfs import build_rootfs

log = logging.getLogger(__name__)


def build_image(board: str, out: Path, cache: Path) -> Path:
    """Builds `board`'s root and disk image into `out`; the disk image's path."""
    started = time.monotonic()
    squashfs = build_rootfs(board, out, cache)
    disk = build_disk(board, squashfs, out / DISK_NAME)
    log.info("%s: built in %.0f s", disk, time.monotonic() - started)
    return disk
