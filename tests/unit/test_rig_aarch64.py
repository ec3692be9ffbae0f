"""The qemu-aarch64 board's rig files and QEMU command line: virt under TCG, U-Boot as -bios,
the dome's line on a PCI UART (virt has one PL011, the console)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vigil_tools.rig.qemu import UBOOT, Boot, RigError, emulator, qemu_argv
from vigil_tools.rig.spec import REPO_BOARDS, load_rig_board

BOARD = "qemu-aarch64"


def test_the_aarch64_board_pins_the_x86_64_kernel_version_for_arm64() -> None:
    arm, x86 = load_rig_board(BOARD), load_rig_board("qemu-x86_64")
    assert arm.kernel.release == f"{x86.kernel.abi}-arm64"
    assert (arm.kernel.version, arm.kernel.abi) == (x86.kernel.version, x86.kernel.abi)
    assert "i2c-stub" not in arm.kernel.modules  # not built for arm64 by Debian
    assert 'light_sensor = "none"' in (REPO_BOARDS / BOARD / "board.toml").read_text()
    assert all(p.is_file() for p in arm.kernel.gpio_sim_patches)
    assert (arm.rig.machine, arm.rig.accel, arm.rig.dome_uart) == ("virt,acpi=off", "tcg", "ttyS0")
    assert 'device = "/dev/ttyS0"' in (REPO_BOARDS / BOARD / "board.toml").read_text()


def test_an_aarch64_disk_boots_through_u_boot_with_the_dome_on_a_pci_uart(tmp_path: Path) -> None:
    board = load_rig_board(BOARD)
    disk, card = tmp_path / "disk.img", tmp_path / "card.img"
    disk.write_bytes(b"")
    argv = qemu_argv(board, Boot(image=disk), tmp_path, card, "tap0")
    assert argv[0] == emulator(board) == "qemu-system-aarch64"
    joined = " ".join(argv)
    assert "-machine virt,acpi=off -accel tcg -cpu cortex-a57" in joined
    assert argv[argv.index("-bios") + 1] == str(UBOOT)
    assert "pflash" not in joined and not (tmp_path / "ovmf-vars.fd").exists()
    assert "-serial chardev:console -device pci-serial,chardev=dome" in joined
    assert argv.count("-serial") == 1
    assert f"if=none,id=disk,file={disk},format=raw" in joined
    assert "virtio-blk-pci,drive=disk" in joined


def test_the_x86_64_machine_keeps_ovmf_and_two_8250_uarts(tmp_path: Path) -> None:
    board = load_rig_board("qemu-x86_64")
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"")
    argv = qemu_argv(board, Boot(image=disk), tmp_path, tmp_path / "card.img", "tap0")
    joined = " ".join(argv)
    assert argv[0] == "qemu-system-x86_64" and "-bios" not in argv
    assert "if=pflash" in joined and (tmp_path / "ovmf-vars.fd").is_file()
    assert "-serial chardev:console -serial chardev:dome" in joined


def test_a_kernel_flavour_without_an_emulator_is_refused() -> None:
    board = load_rig_board(BOARD)
    other = dataclasses.replace(board, kernel=dataclasses.replace(board.kernel, flavour="s390x"))
    with pytest.raises(RigError, match="not s390x"):
        emulator(other)
