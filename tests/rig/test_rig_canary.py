"""The QEMU rig's emulated hardware, proven with the canary guest (no board image needed).

Builds (or takes from the cache) gpio-sim.ko and the canary initramfs, boots the board's Debian
kernel with `vigil rig up --kernel/--initrd`, and checks the canary's report against the board's
files: every module loaded in order, vivid's capture node, the SD card of the given size, the dome
UART (a Pelco-D frame reaches `vigil ptz-sim`'s simulator on the host PTY), i2c-stub answering
at kernel.toml's address, the gpio-sim lines of rig.toml with a working edge interrupt and output,
and the guest reaching the host side of the rig's namespace. Then the SD card is pulled through
the monitor, and `vigil rig down` must leave no QEMU, namespace or socket. The first run fetches
about 220 MB of Debian packages into $VIGIL_CACHE; boot and build times are printed (pytest -s).
Needs root (network namespaces, tap) and qemu-system-x86.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from vigil.ptz.commands import Frame, Move
from vigil_tools.cli import main
from vigil_tools.ptz_sim import READ_TIMEOUT, DomeSimulator
from vigil_tools.rig.canary import (
    DOME_ADDRESS,
    END,
    CanaryGuest,
    build_canary,
    card_state,
    parse_report,
)
from vigil_tools.rig.netns import namespaces
from vigil_tools.rig.qemu import QEMU, load_state, pull_card
from vigil_tools.rig.spec import RigBoard, load_rig_board

BOARD = "qemu-x86_64"
CARD_BYTES = 64 * 1024 * 1024  # not rig.toml's default size, so the size is seen to come through
BOOT_TIMEOUT = 120

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def board() -> RigBoard:
    if os.geteuid() != 0:
        pytest.skip("the rig needs root (network namespaces, tap devices)")
    if shutil.which(QEMU) is None or shutil.which("apt-get") is None:
        pytest.skip(f"the rig needs {QEMU} and apt-get")
    return load_rig_board(BOARD)


@pytest.fixture(scope="module")
def canary(board: RigBoard) -> CanaryGuest:
    started = time.monotonic()
    guest = build_canary(board)
    print(f"\ncanary build (gpio-sim.ko + initramfs): {time.monotonic() - started:.1f} s")
    return guest


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _console(folder: Path) -> str:
    return (folder / "console.log").read_text(errors="replace")


def _running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (waiting for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _chip_addr(board: RigBoard) -> int:
    match = re.search(r"chip_addr=(0x[0-9a-fA-F]+)", board.kernel.module_options["i2c-stub"])
    assert match, "kernel.toml gives i2c-stub its chip_addr"
    return int(match[1], 16)


def test_canary_sees_the_rig_hardware(board: RigBoard, canary: CanaryGuest, tmp_path: Path) -> None:
    folder, card = tmp_path / "rig", tmp_path / "card.img"
    with card.open("wb") as file:
        file.truncate(CARD_BYTES)
    up = [*("rig", "up", "--dir", str(folder), BOARD, "--kernel", str(canary.kernel))]
    up += ["--initrd", str(canary.initrd), "--append", canary.append, "--card", str(card)]
    started = time.monotonic()
    assert main(up) == 0
    state = load_state(folder)
    port = serial.Serial(state.dome_pty, 9600, timeout=READ_TIMEOUT)
    dome = DomeSimulator(port, "pelco-d", DOME_ADDRESS)
    dome.start()
    try:
        _wait("the canary's report", lambda: END in _console(folder), BOOT_TIMEOUT)
        print(f"rig up to the canary's report: {time.monotonic() - started:.1f} s wall")
        report = parse_report(_console(folder))
        print(f"guest uptime at the report: {report.one('uptime')} s")

        assert report.one("kernel") == board.kernel.release
        assert report.modules == dict.fromkeys(canary.modules, "ok")
        assert report.one("video0") == "vivid-000-vid-cap"
        assert int(report.one("mmcblk0_bytes")) == CARD_BYTES
        assert report.one(f"{board.rig.dome_uart}_type") == "4"  # PORT_16550A
        assert report.one("dome_frame") == "0"
        assert report.one("i2c0") == "SMBus stub driver"
        assert report.i2c_addresses == [_chip_addr(board)]
        assert report.gpio_lines == {line.offset: line.name for line in board.rig.gpio_lines}
        assert "RISING EDGE offset: 0" in report.one("gpio_edge")
        assert report.one("gpio_output") == "1"
        assert report.one("net_ping") == "ok"
        expected = Frame(DOME_ADDRESS, Move(pan=1, pan_speed=0x20))
        _wait("the dome frame", lambda: any(r.frame == expected for r in dome.received), 10)

        pull_card(folder)
        _wait("the card's removal", lambda: card_state(_console(folder)) is not None, 30)
        assert card_state(_console(folder)) == "removed"
    finally:
        dome.stop()
        port.close()
        assert main(["rig", "down", "--dir", str(folder), BOARD]) == 0
    _wait("QEMU's exit", lambda: not _running(state.pid), 5)
    assert state.netns not in namespaces()
    assert not any(folder.glob("*.sock")) and not (folder / "state.json").exists()
