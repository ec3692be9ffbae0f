"""Waiting on a rig from a test: polling with a deadline, the console log, QEMU's exit."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def console(folder: Path) -> str:
    """Everything the guest has written on its console (ttyS0) so far."""
    return (folder / "console.log").read_text(errors="replace")


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (waiting for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
