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

import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from tests.rig.rig_wait import console, running, wait_for
from vigil.ptz.commands import Frame, Move
from vigil_tools.cli import main
from vigil_tools.ptz_sim import READ_TIMEOUT, DomeSimulator
from vigil_tools.rig import accel
from vigil_tools.rig.canary import (
    CARD_FLAG,
    DOME_ADDRESS,
    END,
    SHELL,
    CanaryGuest,
    card_state,
    parse_report,
)
from vigil_tools.rig.guest_shell import GuestShell
from vigil_tools.rig.hardware import GuestHardware
from vigil_tools.rig.netns import exec_args, namespaces
from vigil_tools.rig.qemu import load_state, pull_card
from vigil_tools.rig.spec import RigBoard

CARD_BYTES = 64 * 1024 * 1024  # not rig.toml's default size, so the size is seen to come through
BOOT_TIMEOUT = 120

pytestmark = pytest.mark.timeout(900)


def _vigil(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    vigil = str(Path(sys.executable).parent / "vigil")
    return subprocess.run([vigil, *args], input=stdin, capture_output=True, text=True, timeout=60)


def _drive_the_guest(folder: Path, board: RigBoard) -> None:
    """What a rig test does inside the guest (an alarm input pulled up, a light level set) and
    over the network (HTTP to the guest from inside the namespace); the CLI's console, exec and
    monitor through pipes."""
    (address,) = board.kernel.i2c_stub_addresses
    with GuestShell(folder / "console.sock") as guest:
        hardware = GuestHardware(guest, board)
        assert hardware.level("alarm-in-2") == 0
        hardware.drive("alarm-in-2", high=True)
        assert hardware.level("alarm-in-2") == 1
        hardware.drive("alarm-in-2", high=False)
        assert hardware.level("alarm-in-2") == 0
        assert hardware.set_lux(250.0) == 300  # BH1750: 1.2 counts a lux
        assert hardware.lux() == 250.0
        # read as the BH1750 driver reads: an I2C block read at 0x10 (i2cdump's mode i)
        status, dump = guest.run(f"i2cdump -y 0 {address:#x} i")
        assert status == 0 and "\n10: 01 2c 00 " in dump
        assert guest.run("false")[0] == 1
        web = "mkdir -p /www && echo vigil-canary > /www/index.html && httpd -p 80 -h /www"
        assert guest.run(web)[0] == 0
    state = load_state(folder)
    url = f"http://{board.rig.guest_address.ip}/index.html"
    fetched = subprocess.run(
        [*exec_args(state.netns), "curl", "-sS", "--max-time", "20", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert fetched.stdout == "vigil-canary\n", fetched.stderr
    rig = ("rig", "--dir", str(folder), board.name)
    done = _vigil(rig[0], "exec", *rig[1:], "--", "i2cget", "-y", "0", f"{address:#x}", "0x11")
    assert (done.returncode, done.stdout) == (0, "0x2c\n")
    done = _vigil(rig[0], "exec", *rig[1:], "--", "sh", "-c", "'exit 3'")
    assert done.returncode == 3
    assert "VM status: running" in _vigil(rig[0], "monitor", *rig[1:], stdin="info status\n").stdout
    assert (
        "canary-42" in _vigil(rig[0], "console", *rig[1:], stdin="echo canary-$((40+2))\n").stdout
    )


def test_canary_sees_the_rig_hardware(board: RigBoard, canary: CanaryGuest, tmp_path: Path) -> None:
    folder, card = tmp_path / "rig", tmp_path / "card.img"
    with card.open("wb") as file:
        file.truncate(CARD_BYTES)
    up = [*("rig", "up", "--dir", str(folder), board.name, "--kernel", str(canary.kernel))]
    append = f"{canary.append} {CARD_FLAG}"  # the canary waits for the card to be pulled
    up += ["--initrd", str(canary.initrd), "--append", append, "--card", str(card)]
    started = time.monotonic()
    assert main(up) == 0
    state = load_state(folder)
    port = serial.Serial(state.dome_pty, 9600, timeout=READ_TIMEOUT)
    dome = DomeSimulator(port, "pelco-d", DOME_ADDRESS)
    dome.start()
    try:
        wait_for("the canary's report", lambda: END in console(folder), BOOT_TIMEOUT)
        print(f"rig up to the canary's report: {time.monotonic() - started:.1f} s wall")
        report = parse_report(console(folder))
        print(f"guest uptime at the report: {report.one('uptime')} s")

        assert report.one("kernel") == board.kernel.release
        assert report.modules == dict.fromkeys(canary.modules, "ok")
        assert report.one("video0") == "vivid-000-vid-cap"
        assert int(report.one("mmcblk0_bytes")) == CARD_BYTES
        assert report.one(f"{board.rig.dome_uart}_type") == "4"  # PORT_16550A
        assert report.one("dome_frame") == "0"
        assert report.one("i2c0") == "SMBus stub driver"
        assert report.i2c_addresses == list(board.kernel.i2c_stub_addresses)
        assert report.gpio_lines == {line.offset: line.name for line in board.rig.gpio_lines}
        assert "RISING EDGE offset: 0" in report.one("gpio_edge")
        assert report.one("gpio_output") == "1"
        assert report.one("dhcp_address") == board.rig.guest_address.with_prefixlen
        assert report.one("net_ping") == "ok"
        expected = Frame(DOME_ADDRESS, Move(pan=1, pan_speed=0x20))
        wait_for("the dome frame", lambda: any(r.frame == expected for r in dome.received), 10)

        pull_card(folder)
        wait_for("the card's removal", lambda: card_state(console(folder)) is not None, 30)
        assert card_state(console(folder)) == "removed"

        wait_for("the canary's shell", lambda: SHELL in console(folder), 10)
        _drive_the_guest(folder, board)
    finally:
        dome.stop()
        port.close()
        assert main(["rig", "down", "--dir", str(folder), board.name]) == 0
    wait_for("QEMU's exit", lambda: not running(state.pid), 5)
    assert state.netns not in namespaces()
    assert not running(state.dhcp_pid)
    assert not _processes_naming(folder)
    assert not any(folder.glob("*.sock")) and not (folder / "state.json").exists()


def _processes_naming(folder: Path) -> list[int]:
    """Live processes whose command line names a path in `folder`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(folder).encode() in cmdline and running(int(proc.name)):
            found.append(int(proc.name))
    return found


def test_a_refused_start_leaves_nothing(board: RigBoard, tmp_path: Path) -> None:
    """A card QEMU cannot take, or a kernel it cannot load: an error, no namespace, no process."""
    before = namespaces()
    card, kernel = tmp_path / "card.img", tmp_path / "vmlinuz"
    with card.open("wb") as file:
        file.truncate(3 * 1024 * 1024)
    kernel.write_text("not a kernel\n")
    folder = tmp_path / "rig"
    up = ["rig", "up", "--dir", str(folder), board.name, "--kernel", str(kernel)]
    done = _vigil(*up, "--card", str(card))
    assert done.returncode == 1 and "power of two" in done.stderr
    done = _vigil(*up)
    assert done.returncode == 1 and "QEMU did not start" in done.stderr
    assert namespaces() == before
    assert not (folder / "state.json").exists() and not (folder / "udhcpd.conf").exists()
    assert not _processes_naming(folder)
    done = _vigil("rig", "down", "--dir", str(folder), board.name)
    assert done.returncode == 1 and "no rig is up" in done.stderr


def test_the_accelerator_probe(board: RigBoard, canary: CanaryGuest) -> None:
    """The probe that decides on KVM sees a boot where there is one (TCG), and "auto" gives KVM
    only with its verdict (on this machine kind KVM guests hang, so TCG)."""
    assert accel.canary_boots(board, "tcg")
    chosen = accel.choose(board)
    assert chosen in ("tcg", "kvm")
    if chosen == "kvm":
        assert accel.kvm_present()
