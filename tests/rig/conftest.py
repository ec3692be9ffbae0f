"""Fixtures of the rig tests: the board's rig files and the canary guest (built once a session,
its downloads and gpio-sim.ko cached in $VIGIL_CACHE), skipped without root, QEMU or apt-get."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from vigil_tools.rig.canary import CanaryGuest, build_canary
from vigil_tools.rig.qemu import QEMU
from vigil_tools.rig.spec import RigBoard, load_rig_board

BOARD = "qemu-x86_64"


@pytest.fixture(scope="session")
def board() -> RigBoard:
    if os.geteuid() != 0:
        pytest.skip("the rig needs root (network namespaces, tap devices)")
    if shutil.which(QEMU) is None or shutil.which("apt-get") is None:
        pytest.skip(f"the rig needs {QEMU} and apt-get")
    return load_rig_board(BOARD)


@pytest.fixture(scope="session")
def canary(board: RigBoard) -> CanaryGuest:
    started = time.monotonic()
    guest = build_canary(board)
    print(f"\ncanary build (gpio-sim.ko + initramfs): {time.monotonic() - started:.1f} s")
    return guest
