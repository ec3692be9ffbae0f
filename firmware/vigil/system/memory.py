"""The daemon's process-wide memory settings, applied once at start-up.

Transparent huge pages are turned off for the process. x264 asks for huge pages
(`madvise(MADV_HUGEPAGE)`) on each of its buffers of 2 MB or more, among them output buffers of
8 to 12 MB of which a frame fills a few hundred kB: with huge pages the first touch makes a whole
2 MB page resident, about 7 MB of the daemon's memory at 1080p spent on nothing. The price is a
little encoder speed: 3 to 5 % more CPU for 1080p25 + 360p15 libx264 (1 to 2 % of a core on the
development machine). A kernel built without THP, as on most camera SoCs, has nothing to turn off.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

PR_SET_THP_DISABLE = 41  # <linux/prctl.h>; inherited by child processes, kept across execve


def disable_transparent_huge_pages() -> bool:
    """Turn THP off for this process; False (and a debug line) where the kernel cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0
    except (OSError, AttributeError):  # not Linux, or no prctl in this C library
        failed = True
    if failed:
        log.debug("transparent huge pages: cannot turn them off (errno %d)", ctypes.get_errno())
    return not failed
