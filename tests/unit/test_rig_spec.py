"""The rig's pure parts: board files read into specs (and refused when wrong), the canary's
script and report parsing, the module load order, and QEMU's command line."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from vigil_tools.rig.canary import BEGIN, END, CanaryError, parse_report
from vigil_tools.rig.gpio_sim import boot_files, gpio_sim_setup
from vigil_tools.rig.guest_shell import GuestShell, GuestShellError
from vigil_tools.rig.modules import ModuleError, load_order, module_name
from vigil_tools.rig.qemu import Boot, RigError, _card, qemu_argv
from vigil_tools.rig.spec import REPO_BOARDS, SpecError, load_rig_board

BOARD = "qemu-x86_64"


def _copy_board(tmp_path: Path) -> Path:
    folder = tmp_path / BOARD
    shutil.copytree(REPO_BOARDS / BOARD, folder)
    return folder


def test_the_board_files_agree() -> None:
    board = load_rig_board(BOARD)
    assert board.kernel.release == f"{board.kernel.abi}-amd64"
    assert board.kernel.image_package == f"linux-image-{board.kernel.release}"
    assert board.kernel.i2c_stub_addresses == (0x23,)  # board.toml's BH1750 address
    assert "i2c_address = 0x23" in (REPO_BOARDS / BOARD / "board.toml").read_text()
    assert all(p.is_file() for p in board.kernel.gpio_sim_patches)
    names = {line.name for line in board.rig.gpio_lines}
    assert {"alarm-in-1", "alarm-in-2", "relay-out-1", "ircut-day", "ircut-night"} <= names
    board_toml = (REPO_BOARDS / BOARD / "board.toml").read_text()
    for line in board.rig.gpio_lines:  # board.toml names each line beside its GPIOn
        assert f"GPIO{line.offset}" in board_toml and line.name in board_toml


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "rig.toml",
            "memory_mb = 1024",
            'memory_mb = "1G"',
            "machine.memory_mb must be an integer",
        ),
        ("rig.toml", 'accel = "auto"', 'accel = "hvf"', "machine.accel is one of tcg, kvm,"),
        ("rig.toml", "offset = 5", "offset = 8", "offset 8 >= 8"),
        ("rig.toml", 'name = "ir-led"', 'name = "alarm-in-1"', "share an offset or a name"),
        ("rig.toml", '"192.168.1.1/24"', '"192.168.1/24"', "network.host_address is not"),
        ("kernel.toml", 'abi = "6.1.0-50"', "abi = 6", "kernel.abi must be a string"),
        ("kernel.toml", "[modules]", "[other]", "modules.load must be a list"),
    ],
)
def test_a_bad_board_file_is_refused_by_name(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    folder = _copy_board(tmp_path)
    text = (folder / file).read_text()
    assert old in text
    (folder / file).write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError, match=message) as caught:
        load_rig_board(folder)
    assert file in str(caught.value)


def test_a_board_without_a_rig_is_refused(tmp_path: Path) -> None:
    folder = _copy_board(tmp_path)
    (folder / "rig.toml").unlink()
    with pytest.raises(SpecError, match="has no QEMU rig"):
        load_rig_board(folder)
    with pytest.raises(SpecError, match="no board named"):
        load_rig_board("no-such-board")


def test_gpio_sim_setup_names_every_line() -> None:
    rig = load_rig_board(BOARD).rig
    script = gpio_sim_setup(rig)
    assert f"echo {rig.gpio_num_lines} > /sys/kernel/config/gpio-sim/rig/bank0/num_lines" in script
    for line in rig.gpio_lines:
        folder = f"/sys/kernel/config/gpio-sim/rig/bank0/line{line.offset}"
        assert f"mkdir {folder}\necho {line.name} > {folder}/name\n" in script
    assert script.rstrip().endswith("echo 1 > /sys/kernel/config/gpio-sim/rig/live")


def test_boot_files_set_the_chip_up_before_vigild(tmp_path: Path) -> None:
    rig = load_rig_board(BOARD).rig
    files = boot_files(rig)
    script = files["usr/libexec/vigil/gpio-sim-setup"]
    assert script.startswith("#!/bin/sh\n") and script.endswith(gpio_sim_setup(rig))
    unit = files["etc/systemd/system/vigil-gpio-sim.service"]
    assert "ExecStart=/usr/libexec/vigil/gpio-sim-setup\n" in unit
    assert "Before=vigild.service" in unit and "After=systemd-modules-load.service" in unit
    drop_in = files["etc/systemd/system/vigild.service.d/gpio-sim.conf"]
    assert "Wants=vigil-gpio-sim.service" in drop_in
    path = tmp_path / "setup"
    path.write_text(script)
    assert subprocess.run(["sh", "-n", str(path)], check=False).returncode == 0


def test_the_report_is_read_between_its_markers() -> None:
    console = "\r\n".join(
        [
            "[ 1.0] noise=before",
            BEGIN,
            "module=configfs ok",
            "module=gpio_sim failed",
            'gpioinfo=line   0: "alarm-in-1"       unused   input  active-high',
            "gpioinfo=line   7:      unnamed       unused   input  active-high",
            "i2cdetect=0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f",
            "i2cdetect=20: -- -- -- 23 -- -- -- -- -- -- -- -- -- -- -- --",
            "video0=vivid-000-vid-cap",
            END,
            "noise=after",
        ]
    )
    report = parse_report(console)
    assert report.modules == {"configfs": "ok", "gpio_sim": "failed"}
    assert report.gpio_lines == {0: "alarm-in-1"}
    assert report.i2c_addresses == [0x23]
    assert report.one("video0") == "vivid-000-vid-cap"
    with pytest.raises(CanaryError, match="0 values of noise"):
        report.one("noise")
    with pytest.raises(CanaryError, match="no complete canary report"):
        parse_report(console.replace(END, ""))


def test_load_order_puts_dependencies_first(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    depends = {"vivid": "v4l2_tpg,videodev", "videodev": "mc", "mc": "", "v4l2_tpg": ""}
    modules = {name: tmp_path / f"{name}.ko" for name in depends}
    monkeypatch.setattr(
        "vigil_tools.rig.modules.modinfo", lambda path: {"depends": depends[path.stem]}
    )
    assert load_order(["vivid", "mc"], modules) == ["v4l2_tpg", "mc", "videodev", "vivid"]
    assert module_name("i2c-stub.ko") == "i2c_stub"
    with pytest.raises(ModuleError, match="no module gpio_sim"):
        load_order(["gpio-sim"], modules)


def test_qemu_command_line(tmp_path: Path) -> None:
    board = load_rig_board(BOARD)
    card = tmp_path / "card.img"
    with card.open("wb") as file:
        file.truncate(3 * 1024 * 1024)
    with pytest.raises(RigError, match="power of two"):
        _card(board, tmp_path, card)
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"")
    boot = Boot(kernel=kernel, append="console=ttyS0")
    argv = qemu_argv(board, boot, tmp_path, card, "tap0")
    joined = " ".join(argv)
    assert "-accel tcg" in joined and "-machine q35" in joined
    assert "sd-card,drive=card,id=sdcard" in joined
    assert f"logfile={tmp_path / 'console.log'}" in joined
    assert "tap,id=net0,ifname=tap0,script=no,downscript=no" in joined
    assert argv[argv.index("-append") + 1] == "console=ttyS0"
    with pytest.raises(RigError, match="either a disk image"):
        Boot().check()


def _fake_console(path: Path, reply: Callable[[str], bytes]) -> threading.Thread:
    """A console socket that answers each command line with reply(tag)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        connection, _ = server.accept()
        with connection, server:
            line = b""
            while not line.endswith(b"\n"):
                line += connection.recv(4096)
            tag = re.search(r"'@@S-%s\\n' (\w+);", line.decode())
            assert tag is not None
            connection.sendall(line.replace(b"\n", b"\r\n") + reply(tag[1]))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_guest_shell_reads_status_and_output_behind_terminal_modes(tmp_path: Path) -> None:
    def reply(tag: str) -> bytes:  # as bash prints it: bracketed paste off, CR LF line ends
        return f"\x1b[?2004l\r@@S-{tag}\r\nvivid-000-vid-cap\r\n\r\n@@E-{tag}-3\r\n$ ".encode()

    path = tmp_path / "console.sock"
    thread = _fake_console(path, reply)
    with GuestShell(path) as guest:
        with pytest.raises(ValueError, match="one line"):
            guest.run("echo a\necho b")
        assert guest.run("cat /sys/class/video4linux/video0/name") == (3, "vivid-000-vid-cap\n")
    thread.join(5)
    with pytest.raises(GuestShellError, match="cannot reach the guest's console"):
        GuestShell(tmp_path / "gone.sock").__enter__()
