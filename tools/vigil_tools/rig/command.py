"""`vigil rig up|down|console|monitor|exec BOARD`: the board booted in QEMU with emulated hardware.

`up` boots the board's image (`--image`, by default build/<board>/disk.img when it exists), a
kernel with its initrd, or the canary guest (`--canary`), and prints where everything is; `down`
stops it and removes its network namespace; `console` joins the serial console; `monitor` runs
one human-monitor command (`system_reset`; `-- eject -f card` pulls the SD card; `info block`)
or, without one, joins the human monitor; `exec` runs one shell command in the guest through the
console (which must hold a shell) and exits with its status. Options go before BOARD (`vigil
rig monitor --dir D BOARD info status`). The rig's state is kept in build/rig/<board>/ (`--dir`
picks another folder, so that tests run their own rig).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vigil_tools.rig import terminal
from vigil_tools.rig.canary import CanaryError, build_canary
from vigil_tools.rig.debs import DebError
from vigil_tools.rig.gpio_sim import BuildError
from vigil_tools.rig.guest_shell import GuestShell, GuestShellError
from vigil_tools.rig.netns import NetnsError, exec_args
from vigil_tools.rig.qemu import Boot, RigError, RigState, default_folder, down, monitor_socket, up
from vigil_tools.rig.qmp import Qmp, QmpError
from vigil_tools.rig.spec import RigBoard, SpecError, load_rig_board

ERRORS = (
    *(RigError, SpecError, QmpError, NetnsError, GuestShellError),
    *(CanaryError, DebError, BuildError, OSError),
)


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rig = commands.add_parser("rig", help="run a board in QEMU with emulated hardware")
    actions = rig.add_subparsers(dest="rig_action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("board", metavar="BOARD", help="board name (board/<name>/) or folder")
    common.add_argument("--dir", type=Path, help="the rig's folder (default build/rig/<board>)")
    start = actions.add_parser("up", parents=[common], help="boot the board")
    start.add_argument("--image", type=Path, help="disk image to boot (UEFI)")
    start.add_argument("--kernel", type=Path, help="kernel to boot directly (with --initrd)")
    start.add_argument("--initrd", type=Path, help="initramfs for --kernel")
    start.add_argument("--append", help="kernel command line for --kernel")
    start.add_argument("--card", type=Path, help="SD card image (default: the rig's card.img)")
    start.add_argument(
        "--canary",
        action="store_true",
        help="boot the canary guest (kernel + busybox initramfs reporting the hardware, a shell)",
    )
    actions.add_parser("down", parents=[common], help="stop the board and remove its network")
    actions.add_parser("console", parents=[common], help="join the serial console (Ctrl-] leaves)")
    monitor = actions.add_parser("monitor", parents=[common], help="QEMU monitor command or shell")
    monitor.add_argument(
        "words", nargs="*", metavar="COMMAND", help="e.g. system_reset; -- eject -f card"
    )
    shell = actions.add_parser("exec", parents=[common], help="run a shell command in the guest")
    shell.add_argument("words", nargs="+", metavar="COMMAND", help="e.g. -- cat /proc/uptime")


def _boot(args: argparse.Namespace, board: RigBoard) -> Boot:
    if args.canary:
        if args.image or args.kernel or args.initrd or args.append:
            raise RigError(
                "--canary boots its own kernel: no --image, --kernel, --initrd, --append"
            )
        guest = build_canary(board)
        return Boot(kernel=guest.kernel, initrd=guest.initrd, append=guest.append)
    if args.kernel is None and (args.initrd or args.append):
        raise RigError("--initrd and --append go with --kernel")
    if args.kernel is not None:
        if args.image is not None:
            raise RigError("--image and --kernel exclude each other")
        return Boot(kernel=args.kernel, initrd=args.initrd, append=args.append or Boot.append)
    image = args.image or default_folder(board.name).parents[1] / board.name / "disk.img"
    if args.image is None and not image.is_file():
        raise RigError(
            f"no image at {image}: build one (make image BOARD={board.name}) or pass --image"
        )
    return Boot(image=image)


def _print_up(state: RigState) -> None:
    folder = state.path
    print(f"rig {state.board} up: QEMU pid {state.pid} ({state.accel})")
    print(
        f"  network    {state.netns}: host {state.host_address}, guest {state.guest_address} (DHCP)"
    )
    print(f"             clients: {' '.join(exec_args(state.netns))} <command>")
    print(f"  console    {folder / 'console.sock'} (log {folder / 'console.log'})")
    print(f"  dome UART  {state.dome_pty} (vigil ptz-sim --port {folder / 'dome'})")
    print(f"  monitor    {folder / 'monitor.sock'} (QMP {folder / 'qmp.sock'})")
    print(f"  SD card    {state.card}")


def run(args: argparse.Namespace) -> int:
    """Run one `vigil rig` action; 1 with a one-line message on failure."""
    try:
        board = load_rig_board(args.board)
        folder = args.dir or default_folder(board.name)
        if args.rig_action == "up":
            _print_up(up(board, _boot(args, board), folder, args.card))
        elif args.rig_action == "down":
            state = down(folder)
            print(f"rig {state.board} down: QEMU {state.pid} stopped, {state.netns} removed")
        elif args.rig_action == "console":
            terminal.join(monitor_socket(folder, "console"))
        elif args.rig_action == "exec":
            with GuestShell(monitor_socket(folder, "console")) as guest:
                status, output = guest.run(" ".join(args.words))
            print(output, end="")
            return min(status, 255)
        elif args.words:
            with Qmp(monitor_socket(folder, "qmp")) as qmp:
                print(qmp.hmp(" ".join(args.words)), end="")
        else:
            terminal.join(monitor_socket(folder, "monitor"))
    except ERRORS as exc:
        print(f"vigil: rig {args.rig_action}: {exc}", file=sys.stderr)
        return 1
    return 0
