"""Running a rig board under QEMU: the machine's command line, `up` and `down`, and the state kept
in the rig's folder (build/rig/<board>/ by default) so that later commands find the machine.

The machine (rig.toml `[machine]`), by the kernel's flavour (kernel.toml): x86_64 (amd64) or
aarch64 (arm64, QEMU's `virt`), under TCG, or KVM where rig.toml says "kvm", or says "auto" and a
short canary boot proved KVM works on this host (`accel`; on the machine kind this was written on
KVM guests hang early in boot); no display;
- the console, ttyS0 (x86_64) or virt's PL011 ttyAMA0 (aarch64): unix socket `console.sock`
  (`vigil rig console`), everything also written to `console.log`;
- the dome's RS-485 line, ttyS1 (x86_64) or a PCI 16550 (`pci-serial`, ttyS0) on aarch64, whose
  virt machine has one UART: a host PTY, linked as `dome` in the rig folder, for
  `vigil ptz-sim --port build/rig/<board>/dome`;
- the monitor: QMP on `qmp.sock` (`vigil rig monitor BOARD COMMAND…` and the tests), the human
  monitor on `monitor.sock` (`vigil rig monitor BOARD`). A power cut is `system_reset` (or `quit`).
  Pulling the SD card is `eject -f card` (QMP `eject`): the guest's sdhci sees the card go, as
  when one is pulled; `device_del sdcard` is refused ("Bus 'sd-bus' does not support
  hotplugging"). `change card <file> raw` puts a card back;
- the SD card: `sdhci-pci` with `sd-card` (id `sdcard`) on a raw image file whose size QEMU wants
  a power of two (`card.img` in the rig folder, made sparse at rig.toml's size when not given);
- the network: the NIC on tap0 in the rig's namespace (`netns`), QEMU started inside it, and a
  DHCP server there that leases rig.toml's guest address to the NIC (`dhcp`);
- boot: a disk image (`--image`: a file or a block device such as a flashed loop device, on
  virtio-blk; x86_64 starts UEFI firmware from OVMF with its variables copied into the rig
  folder, aarch64 Debian's U-Boot for QEMU as `-bios`, which runs the disk's boot.scr) or a
  kernel and initrd (`--kernel/--initrd`, e.g. the canary).

QEMU daemonizes once its devices and sockets exist, so `up` returns a machine that is running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from vigil_tools.rig import accel, dhcp, netns
from vigil_tools.rig.debs import DebError
from vigil_tools.rig.qmp import Qmp, QmpError
from vigil_tools.rig.spec import REPO_BOARDS, RigBoard

QEMU = "qemu-system-x86_64"
# The emulator of a kernel flavour, and the Debian package that has it.
EMULATORS = {
    "amd64": ("qemu-system-x86_64", "qemu-system-x86"),
    "arm64": ("qemu-system-aarch64", "qemu-system-arm"),
}
UBOOT = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")  # Debian's u-boot-qemu
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
CARD_ID = "sdcard"
DOME_CHARDEV = "dome"
STATE = "state.json"
START_TIMEOUT = 60
STOP_TIMEOUT = 10
SOCKET_PATH_MAX = 107


class RigError(Exception):
    """The rig cannot start, is not running, or cannot be stopped cleanly."""


@dataclass(frozen=True)
class Boot:
    """What the machine boots: a disk image, or a kernel with its initrd and command line."""

    image: Path | None = None
    kernel: Path | None = None
    initrd: Path | None = None
    append: str = "console=ttyS0 net.ifnames=0"

    def check(self) -> None:
        if (self.image is None) == (self.kernel is None):
            raise RigError("boot either a disk image (--image) or a kernel (--kernel/--initrd)")
        if self.image is not None and not (self.image.is_file() or self.image.is_block_device()):
            raise RigError(f"{self.image} is neither a disk image file nor a block device")
        for path in (self.kernel, self.initrd):
            if path is not None and not path.is_file():
                raise RigError(f"{path} does not exist")


@dataclass(frozen=True)
class RigState:
    """A running rig, as state.json keeps it."""

    board: str
    folder: str
    pid: int
    netns: str
    card: str
    dome_pty: str
    host_address: str
    guest_address: str
    started: float
    dhcp_pid: int = 0
    accel: str = "tcg"

    @property
    def path(self) -> Path:
        return Path(self.folder)


def default_folder(board: str) -> Path:
    return REPO_BOARDS.parent / "build" / "rig" / board


def _sockets(folder: Path) -> dict[str, Path]:
    return {name: folder / f"{name}.sock" for name in ("console", "qmp", "monitor")}


def load_state(folder: Path) -> RigState:
    try:
        return RigState(**json.loads((folder / STATE).read_text()))
    except FileNotFoundError:
        raise RigError(f"no rig is up in {folder} (no {STATE})") from None
    except (ValueError, TypeError) as exc:
        raise RigError(f"{folder / STATE} is damaged ({exc}); remove the folder") from None


def _owned(pid: int, marker: Path) -> bool:
    """Whether `pid` runs with `marker` (a path of this rig's) on its command line."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return pid > 0 and any(str(marker).encode() in arg for arg in cmdline)


def _alive(pid: int, folder: Path) -> bool:
    """Whether `pid` is still this rig's QEMU (its command line names our QMP socket)."""
    return _owned(pid, _sockets(folder)["qmp"])


def _card(board: RigBoard, folder: Path, card: Path | None) -> Path:
    if card is None:
        card = folder / "card.img"
        if not card.exists():
            with card.open("wb") as file:
                file.truncate(board.rig.card_size_mb * 1024 * 1024)
    if not card.is_file():
        raise RigError(f"the SD card image {card} does not exist")
    size = card.stat().st_size
    if size == 0 or size & (size - 1):
        raise RigError(
            f"QEMU's SD card must be a power of two in size; {card} has {size} bytes"
            f" (e.g. truncate -s 256M {card})"
        )
    return card.resolve()


def emulator(board: RigBoard) -> str:
    """The QEMU binary for the board's kernel flavour (RigError for one the rig does not run)."""
    try:
        return EMULATORS[board.kernel.flavour][0]
    except KeyError:
        known = ", ".join(EMULATORS)
        raise RigError(f"the rig runs kernels of {known}, not {board.kernel.flavour}") from None


def _serials(board: RigBoard) -> list[str]:
    """The console first, then the dome's line (a PCI UART on arm64's one-UART virt)."""
    if board.kernel.flavour == "arm64":
        return ["-serial", "chardev:console", "-device", f"pci-serial,chardev={DOME_CHARDEV}"]
    return ["-serial", "chardev:console", "-serial", f"chardev:{DOME_CHARDEV}"]


def _firmware(board: RigBoard, folder: Path) -> list[str]:
    """What starts a disk image: OVMF (UEFI, its variables copied here) or U-Boot."""
    if board.kernel.flavour == "arm64":
        if not UBOOT.is_file():
            raise RigError(f"{UBOOT} is missing (Debian package u-boot-qemu)")
        return ["-bios", str(UBOOT)]
    shutil.copyfile(OVMF_VARS, folder / "ovmf-vars.fd")
    return [
        *("-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}"),
        *("-drive", f"if=pflash,format=raw,file={folder / 'ovmf-vars.fd'}"),
    ]


def qemu_argv(
    board: RigBoard, boot: Boot, folder: Path, card: Path, tap: str, accel: str = "tcg"
) -> list[str]:
    """QEMU's command line for the rig (without the namespace prefix)."""
    rig, socks = board.rig, _sockets(folder)

    def server(name: str, extra: str = "") -> str:
        return f"socket,id={name},path={socks[name]},server=on,wait=off{extra}"

    argv = [
        emulator(board),
        *("-name", f"vigil-rig-{board.name}", "-machine", rig.machine, "-accel", accel),
        *("-cpu", rig.cpu, "-smp", str(rig.cpus), "-m", str(rig.memory_mb)),
        *("-display", "none", "-vga", "none", "-nodefaults"),
        *("-chardev", server("console", f",logfile={folder / 'console.log'}")),
        *("-chardev", f"pty,id={DOME_CHARDEV}", *_serials(board)),
        *("-chardev", server("qmp"), "-mon", "chardev=qmp,mode=control"),
        *("-chardev", server("monitor"), "-mon", "chardev=monitor,mode=readline"),
        *("-device", "sdhci-pci,id=sdhci"),
        *("-drive", f"if=none,id=card,file={card},format=raw"),
        *("-device", f"sd-card,drive=card,id={CARD_ID}"),
        *("-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no"),
        *("-device", f"{rig.nic},netdev=net0,mac={_mac(board.name)}"),
        *("-pidfile", str(folder / "qemu.pid"), "-daemonize"),
    ]
    if boot.image is not None:
        argv += [
            *_firmware(board, folder),
            *("-drive", f"if=none,id=disk,file={boot.image.resolve()},format=raw"),
            *("-device", "virtio-blk-pci,drive=disk"),
        ]
    else:
        assert boot.kernel is not None
        argv += ["-kernel", str(boot.kernel), "-append", boot.append]
        if boot.initrd is not None:
            argv += ["-initrd", str(boot.initrd)]
    return argv


def _mac(board: str) -> str:
    """A stable locally administered MAC per board, in QEMU's 52:54:00 range."""
    digest = sum(board.encode()) & 0xFFFF
    return f"52:54:00:76:{digest >> 8:02x}:{digest & 0xFF:02x}"


def _dome_pty(qmp_path: Path) -> str:
    with Qmp(qmp_path) as qmp:
        for chardev in qmp.execute("query-chardev"):
            if chardev.get("label") == DOME_CHARDEV:
                return str(chardev["filename"]).removeprefix("pty:")
    raise RigError("QEMU reports no PTY for the dome's UART")


def _prepare(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / STATE).exists():
        state = load_state(folder)
        if _alive(state.pid, folder):
            raise RigError(f"a rig is already up in {folder} (QEMU pid {state.pid})")
        _cleanup(state)  # left over by a machine that died: its namespace and sockets go
    if len(str(_sockets(folder)["monitor"])) > SOCKET_PATH_MAX:
        raise RigError(f"{folder} is too long a path for unix sockets")


def up(board: RigBoard, boot: Boot, folder: Path, card: Path | None = None) -> RigState:
    """Start the rig; it runs until `down`."""
    binary = emulator(board)
    if shutil.which(binary) is None:
        package = EMULATORS[board.kernel.flavour][1]
        raise RigError(f"{binary} is not installed (Debian package {package})")
    boot.check()
    folder = folder.resolve()
    _prepare(folder)
    card = _card(board, folder, card)
    accelerator = accel.choose(board)
    network = netns.create(board.rig.host_address)
    dhcp_pid = 0
    try:
        dhcp_pid = dhcp.start(network, board.rig.guest_address, _mac(board.name), folder)
        argv = qemu_argv(board, boot, folder, card, network.tap, accelerator)
        result = subprocess.run(
            [*netns.exec_args(network.netns), *argv],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RigError(f"QEMU did not start: {result.stderr.strip()}")
        pid = int((folder / "qemu.pid").read_text())
        pty = _dome_pty(_sockets(folder)["qmp"])
    except (RigError, QmpError, DebError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        _kill_started(folder)
        _stop_dhcp(dhcp_pid, folder)
        netns.delete(network.netns)
        raise RigError(str(exc)) from None
    dome = folder / "dome"
    dome.unlink(missing_ok=True)
    dome.symlink_to(pty)
    state = RigState(
        board=board.name,
        folder=str(folder),
        pid=pid,
        netns=network.netns,
        card=str(card),
        dome_pty=pty,
        host_address=network.host_address,
        guest_address=board.rig.guest_address.with_prefixlen,
        started=time.time(),
        dhcp_pid=dhcp_pid,
        accel=accelerator,
    )
    (folder / STATE).write_text(json.dumps(asdict(state), indent=2) + "\n")
    return state


def _stop_qemu(state: RigState) -> None:
    folder = state.path
    if not _alive(state.pid, folder):
        return
    try:
        with Qmp(_sockets(folder)["qmp"], timeout=3) as qmp:
            qmp.execute("quit")
    except QmpError:
        pass  # quit closes the socket before it answers, or the monitor is gone: wait or kill
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(state.pid, folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(state.pid, folder):
        os.kill(state.pid, signal.SIGKILL)
        time.sleep(0.2)


def _kill_started(folder: Path) -> None:
    """Kill a QEMU that daemonized but whose start then failed (its pidfile names it)."""
    try:
        pid = int((folder / "qemu.pid").read_text())
    except (OSError, ValueError):
        return
    if _alive(pid, folder):
        os.kill(pid, signal.SIGKILL)


def _stop_dhcp(pid: int, folder: Path) -> None:
    if _owned(pid, folder / dhcp.CONFIG):
        os.kill(pid, signal.SIGTERM)
    dhcp.cleanup(folder)


def _cleanup(state: RigState) -> None:
    folder = state.path
    _stop_dhcp(state.dhcp_pid, folder)
    netns.delete(state.netns)
    for path in [*_sockets(folder).values(), folder / "qemu.pid", folder / "dome"]:
        path.unlink(missing_ok=True)
    (folder / "ovmf-vars.fd").unlink(missing_ok=True)
    (folder / STATE).unlink(missing_ok=True)


def down(folder: Path) -> RigState:
    """Stop the rig in `folder`: QEMU, its namespace, tap and sockets (the card and log stay)."""
    state = load_state(folder.resolve())
    _stop_qemu(state)
    if _alive(state.pid, state.path):
        raise RigError(f"QEMU (pid {state.pid}) does not stop")
    _cleanup(state)
    return state


def pull_card(folder: Path) -> None:
    """Take the SD card out of the running rig (the drive stays, empty)."""
    with Qmp(monitor_socket(folder, "qmp")) as qmp:
        qmp.execute("eject", id=CARD_ID, force=True)


def power_cut(folder: Path) -> None:
    """Reset the machine at once, as a power cut followed by power coming back."""
    with Qmp(monitor_socket(folder, "qmp")) as qmp:
        qmp.execute("system_reset")


def monitor_socket(folder: Path, kind: str) -> Path:
    """The `console`, `qmp` or `monitor` socket of the rig up in `folder`."""
    state = load_state(folder.resolve())
    if not _alive(state.pid, state.path):
        raise RigError(f"the rig in {folder} is not running (QEMU pid {state.pid} is gone)")
    return _sockets(state.path)[kind]
