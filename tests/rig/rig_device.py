"""The booted board image in the rig as the scenario's device: `RigDevice` is a `Vigild` whose
API is the guest's (port 80 at the address the scenario moves it to), so the integration tests'
helpers (search, download, format, alert stream) drive it unchanged; `Rig` is the running QEMU
machine with its folder, console shell and monitor.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.rig.rig_wait import console, wait_for
from tests.vigild import Vigild
from vigil_tools.cli import main
from vigil_tools.rig.guest_shell import GuestShell
from vigil_tools.rig.hardware import GuestHardware
from vigil_tools.rig.qemu import RigState, load_state, monitor_socket
from vigil_tools.rig.qmp import Qmp
from vigil_tools.rig.spec import RigBoard

RTSP_PORT = 554


@dataclass
class RigDevice(Vigild):
    """The guest's vigild, reached from inside the rig's namespace."""

    address: str = ""
    serial_number: str = ""  # as SADP reports it

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def rtsp_url(self, password: str, path: str = "/Streaming/Channels/101") -> str:
        return f"rtsp://admin:{password}@{self.address}:{RTSP_PORT}{path}"


@dataclass
class Rig:
    board: RigBoard
    folder: Path

    @property
    def state(self) -> RigState:
        return load_state(self.folder)

    def console(self) -> str:
        return console(self.folder)

    def shell(self) -> GuestShell:
        return GuestShell(monitor_socket(self.folder, "console"))

    def guest(self, command: str, timeout: float = 60) -> str:
        """`command` run in the guest's shell; its output (AssertionError on failure)."""
        with self.shell() as shell:
            status, output = shell.run(command, timeout=timeout)
        assert status == 0, f"{command!r} in the guest: {status}\n{output}"
        return output

    def hardware(self, shell: GuestShell) -> GuestHardware:
        return GuestHardware(shell, self.board)

    def hmp(self, command: str) -> str:
        with Qmp(monitor_socket(self.folder, "qmp")) as qmp:
            return qmp.hmp(command)

    def up(self, image: Path) -> None:
        assert (
            main(["rig", "up", "--dir", str(self.folder), self.board.name, "--image", str(image)])
            == 0
        )

    def down(self) -> None:
        main(["rig", "down", "--dir", str(self.folder), self.board.name])


def rtsp_answers(address: str) -> bool:
    """The RTSP server answers OPTIONS (without credentials: any RTSP status line will do)."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection((address, RTSP_PORT), timeout=2) as sock,
    ):
        sock.sendall(f"OPTIONS rtsp://{address}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
        return sock.recv(64).startswith(b"RTSP/1.0 ")
    return False


def wait_serving(address: str, timeout: float) -> float:
    """Seconds until the guest's HTTP API and RTSP server both answer."""
    started = time.monotonic()

    def serving() -> bool:
        with contextlib.suppress(requests.RequestException):
            requests.get(f"http://{address}/SDK/activateStatus", timeout=2)
            return rtsp_answers(address)
        return False

    wait_for(f"vigild at {address}", serving, timeout)
    return time.monotonic() - started


def ffprobe_stream(url: str, timeout: float = 90) -> dict[str, str]:
    """The first video stream's codec, size and frame count of a few seconds of `url`."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-read_intervals", "%+3",
         "-select_streams", "v:0", "-count_frames",
         "-show_entries", "stream=codec_name,width,height,nb_read_frames",
         "-of", "default=noprint_wrappers=1", url],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.split())
