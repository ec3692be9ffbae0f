"""The Raspberry Pi 4 board (board/rpi4), untested on a Pi: its files are checked with the tools
that use them. The daemon's loader reads board.toml, the image tooling image.toml, RAUC 1.8
system.conf, genimage genimage.cfg; the partition names agree across genimage.cfg, system.conf,
/etc/fstab, vigil-data.service and boot.cmd; every GPIO line is the Pi 4 header pin that the
board's README names (gpiozero's Pi 4 table); RAUC's handler copies a slot's kernel out of a
real squashfs; and boot.cmd runs in real U-Boot (Debian's qemu_arm64 build of the U-Boot
2023.01 source that the Pi's rpi_arm64 build comes from) under QEMU, with the environment file
it shares with RAUC made by mkenvimage and read back here."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import struct
import subprocess
import time
import tomllib
import zlib
from pathlib import Path

import pytest
from gpiozero.pins.pi import pi_info

from vigil.board.description import load_board
from vigil_tools.image.recipe import OVERLAY, REPO, ImageError, load_recipe

BOARD = REPO / "board" / "rpi4"
HANDLER = BOARD / "rootfs-overlay/usr/lib/vigil/rauc-slot-boot-files"
PARTITIONS = ["efi", "rootfs-a", "rootfs-b", "data"]  # every Vigil board's, in disk order
ENV_SIZE = 0x4000  # boot.cmd's vigil_env_size and fw_env.config's size
UBOOT = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")
PI4 = pi_info("c03111")  # Raspberry Pi 4 Model B rev 1.1


def _have(*tools: str) -> bool:
    return all(shutil.which(tool) for tool in tools)


def test_the_daemon_loads_the_board() -> None:
    board = load_board(str(BOARD / "board.toml"))
    assert board.board.name == "rpi4" and board.update.driver == "rauc"
    assert board.sensor.driver == "v4l2" and board.sensor.formats == ["NV12", "YUYV"]
    assert board.encoder.hardware_h264 == ""  # no mem2mem codec in Debian's kernel
    assert board.storage.devices == ["/dev/sda"]  # never the boot card
    assert (board.ptz.device, board.ptz.rs485) == ("/dev/ttyS1", True)
    assert board.alarm_io.pin_factory == board.day_night.pin_factory == "lgpio"
    assert (board.day_night.light_sensor, board.day_night.i2c_bus) == ("bh1750", 1)


def _header_pin(line: str) -> int:
    ((_, pin),) = PI4.find_pin(line)
    return pin.number


def test_every_gpio_line_is_the_header_pin_the_readme_names() -> None:
    board = load_board(str(BOARD / "board.toml"))
    dn = board.day_night
    lines = [*board.alarm_io.inputs, *board.alarm_io.outputs]
    lines += [dn.day_line, dn.night_line, dn.illuminator]
    assert len(set(lines)) == len(lines)
    readme = (BOARD / "README.md").read_text(encoding="utf-8")
    for line in lines:
        pin = _header_pin(line)
        assert re.search(rf"^\| {pin} \| {line} \|", readme, re.M), f"{line} (pin {pin})"
    # Not on the pins the board uses otherwise: the HAT ID EEPROM, I2C 1, the UART.
    reserved = {_header_pin(f"GPIO{n}") for n in (0, 1, 2, 3, 14, 15)}
    assert not reserved & {_header_pin(line) for line in lines}
    assert re.search(r"^\| 3 \| GPIO2 \(SDA1\) \|", readme, re.M)
    assert re.search(r"^\| 8 \| GPIO14 \(TXD1\) \|", readme, re.M)


def test_the_image_recipe_loads() -> None:
    recipe = load_recipe("rpi4")
    assert (recipe.rootfs.suite, recipe.rootfs.architecture) == ("bookworm", "arm64")
    assert recipe.wheels.machine == "aarch64"
    for package in ("raspi-firmware", "u-boot-rpi", "libubootenv-tool", "squashfs-tools"):
        assert package in recipe.rootfs.packages
    # raspi-firmware is in non-free-firmware
    assert all("non-free-firmware" in mirror for mirror in recipe.rootfs.mirrors)
    # the Pi's camera driver is in staging: not pruned as the QEMU boards do
    assert not any("staging" in pattern for pattern in recipe.rootfs.prune)
    assert "boot/firmware/*" in recipe.rootfs.prune
    # the boot partition's files besides boot.scr and A/: genimage.cfg's inputs
    staged = [f.rsplit("/", 1)[-1] for f in recipe.boot.root_files + recipe.boot.board_files]
    inputs = re.findall(r'image = "([^"]+)"', (BOARD / "genimage.cfg").read_text())
    assert sorted(staged) == sorted(set(inputs) - {"boot.scr", "A/vmlinuz", "A/initrd.img"}
                                    - {"efi.vfat", "data.ext4", "rootfs.squashfs"})  # fmt: skip


@pytest.mark.parametrize(
    ("boot", "error"),
    [
        ('root_files = ["/usr/lib/x"]', "is not a path relative to /"),
        ('root_files = ["usr/../etc/shadow"]', "is not a path relative to /"),
        ('board_files = ["nothere.txt"]', "no file 'nothere.txt'"),
        ('root_files = ["usr/a/config.txt"]\nboard_files = ["config.txt"]', "two files"),
        ('root_file = ["usr/lib/x"]', "has no key 'root_file'"),
    ],
)
def test_the_recipe_refuses_a_bad_boot_section(tmp_path: Path, boot: str, error: str) -> None:
    board = tmp_path / "rpi4"
    shutil.copytree(BOARD, board, symlinks=True)
    text = (board / "image.toml").read_text(encoding="utf-8")
    text = text[: text.index("[boot]")] + "[boot]\n" + boot + "\n"
    (board / "image.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ImageError, match=re.escape(error)):
        load_recipe("rpi4", boards=tmp_path)


def test_the_kernel_is_the_one_the_rig_boards_pin() -> None:
    pi = tomllib.loads((BOARD / "kernel.toml").read_text(encoding="utf-8"))
    rig = tomllib.loads((REPO / "board/qemu-x86_64/kernel.toml").read_text(encoding="utf-8"))
    assert pi["kernel"]["flavour"] == "arm64"
    for key in ("abi", "version", "source_package", "kbuild_package"):
        assert pi["kernel"][key] == rig["kernel"][key]
    for module in ("genet", "sdhci-iproc", "bcm2835-v4l2", "i2c-dev", "uas"):
        assert module in pi["modules"]["load"]
    initramfs = (BOARD / "rootfs-overlay/etc/initramfs-tools/modules").read_text()
    assert {"squashfs", "sdhci-iproc", "gpio-regulator"} <= set(initramfs.split())


def _genimage_partitions() -> list[str]:
    text = (BOARD / "genimage.cfg").read_text(encoding="utf-8")
    return re.findall(r"^\tpartition ([\w-]+) \{", text, re.M)


def test_the_partition_names_agree_across_the_files() -> None:
    assert _genimage_partitions() == PARTITIONS
    system = configparser.ConfigParser()
    system.read(BOARD / "system.conf")
    assert system["system"]["compatible"] == "vigil-rpi4"
    assert system["system"]["bootloader"] == "uboot"
    slots = {system[s]["bootname"]: system[s]["device"] for s in system if s.startswith("slot.")}
    assert slots == {
        "A": "/dev/disk/by-partlabel/rootfs-a",
        "B": "/dev/disk/by-partlabel/rootfs-b",
    }
    fstab = (OVERLAY / "etc/fstab").read_text(encoding="utf-8")
    mounts = dict(re.findall(r"^PARTLABEL=([\w-]+)\s+(\S+)", fstab, re.M))
    assert mounts["data"] == "/data" and mounts["efi"] == "/boot/efi"
    unit = (OVERLAY / "etc/systemd/system/vigil-data.service").read_text(encoding="utf-8")
    assert "/dev/disk/by-partlabel/data" in unit
    script = (BOARD / "boot.cmd").read_text(encoding="utf-8")
    assert "setenv vigil_root rootfs-a" in script and "setenv vigil_root rootfs-b" in script
    assert f"setenv vigil_env_size {ENV_SIZE:#x}" in script
    fw_env = (BOARD / "rootfs-overlay/etc/fw_env.config").read_text(encoding="utf-8")
    (entry,) = [line.split() for line in fw_env.splitlines() if line.startswith("/")]
    assert entry == [f"{mounts['efi']}/vigil.env", "0x0000", f"{ENV_SIZE:#06x}"]
    handlers = [system["handlers"][h] for h in ("pre-install", "post-install")]
    overlay = BOARD / "rootfs-overlay"
    for handler in handlers:
        assert os.path.realpath(overlay / handler.lstrip("/")) == str(HANDLER)
    assert f"boot=${{VIGIL_BOOT_DIR:-{mounts['efi']}}}" in HANDLER.read_text(encoding="utf-8")


@pytest.mark.skipif(not _have("rauc"), reason="rauc (make image-setup)")
def test_rauc_accepts_the_system_config(tmp_path: Path) -> None:
    config = (BOARD / "system.conf").read_text(encoding="utf-8")
    config = config.replace("data-directory=/data/rauc", f"data-directory={tmp_path}")
    (tmp_path / "system.conf").write_text(config, encoding="utf-8")
    bad = config.replace("boot-attempts=", "boot-attempt=")
    (tmp_path / "bad.conf").write_text(bad, encoding="utf-8")

    def rauc(conf: str) -> str:
        command = ["rauc", f"--conf={tmp_path / conf}", "info", str(tmp_path / "no.raucb")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr

    assert "Failed to load system config" in rauc("bad.conf")  # the check can fail
    output = rauc("system.conf")
    assert "Failed to load system config" not in output and "No such file" in output


def _sfdisk_json(disk: Path) -> dict:
    done = subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True, check=True)
    return json.loads(done.stdout)["partitiontable"]


@pytest.mark.skipif(not _have("genimage", "mkfs.vfat", "mcopy", "mke2fs", "sfdisk"),
                    reason="genimage, dosfstools, mtools, fdisk (make image-setup)")  # fmt: skip
def test_genimage_lays_out_the_card(tmp_path: Path) -> None:
    inputs = tmp_path / "input"
    (inputs / "A").mkdir(parents=True)
    names = ["start4x.elf", "fixup4x.dat", "bcm2711-rpi-4-b.dtb", "u-boot.bin", "boot.scr"]
    for name in [*names, "A/vmlinuz", "A/initrd.img"]:
        (inputs / name).write_bytes(name.encode())
    shutil.copyfile(BOARD / "config.txt", inputs / "config.txt")
    (inputs / "rootfs.squashfs").write_bytes(b"hsqs" + bytes(4092))
    (tmp_path / "root").mkdir()
    args = [f"--{p}path={tmp_path / p}" for p in ("root", "tmp", "input", "output")]
    subprocess.run(
        ["genimage", f"--config={BOARD / 'genimage.cfg'}", *args],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    disk = tmp_path / "output/disk.img"
    table = _sfdisk_json(disk)
    assert table["label"] == "gpt"
    assert [p["name"] for p in table["partitions"]] == PARTITIONS
    efi = table["partitions"][0]
    assert efi["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"  # a FAT ESP, as the EEPROM reads
    fat = f"{disk}@@{efi['start'] * 512}"
    listing = subprocess.run(
        ["mdir", "-b", "-i", fat, "::/", "::/A"], capture_output=True, text=True, check=True
    ).stdout
    for name in [*names, "config.txt", "A/vmlinuz", "A/initrd.img"]:
        assert f"::/{name}" in listing
    config = subprocess.run(
        ["mtype", "-i", fat, "::/config.txt"], capture_output=True, text=True, check=True
    ).stdout
    assert "kernel=u-boot.bin" in config and "start_file=start4x.elf" in config


def _squashfs_root(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    root = tmp_path / name
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    image = tmp_path / f"{name}.squashfs"
    subprocess.run(["mksquashfs", str(root), str(image), "-quiet", "-noappend", "-no-progress"],
                   check=True, capture_output=True)  # fmt: skip
    return image


def _handler(phase: str, boot: Path, device: Path, **slot: str) -> subprocess.CompletedProcess:
    link = boot.parent / f"rauc-slot-boot-files-{phase}"
    link.unlink(missing_ok=True)
    link.symlink_to(HANDLER)
    environ = dict(os.environ, VIGIL_BOOT_DIR=str(boot), RAUC_TARGET_SLOTS="1")
    environ |= {"RAUC_SLOT_CLASS_1": "rootfs", "RAUC_SLOT_DEVICE_1": str(device)}
    environ |= {"RAUC_SLOT_BOOTNAME_1": "B", **slot}
    return subprocess.run([str(link)], env=environ, capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(not _have("mksquashfs", "unsquashfs"), reason="squashfs-tools")
def test_rauc_handler_puts_the_new_slots_kernel_on_the_boot_partition(tmp_path: Path) -> None:
    boot = tmp_path / "efi"
    (boot / "B").mkdir(parents=True)
    (boot / "B/vmlinuz").write_bytes(b"old kernel")
    image = _squashfs_root(
        tmp_path, "new", {"boot/vmlinuz": b"new kernel", "boot/initrd.img": b"new initrd"}
    )
    done = _handler("pre", boot, image)
    assert done.returncode == 0, done.stderr
    assert not (boot / "B").exists()  # never an old kernel beside a new root
    done = _handler("post", boot, image)
    assert done.returncode == 0, done.stderr
    assert (boot / "B/vmlinuz").read_bytes() == b"new kernel"
    assert (boot / "B/initrd.img").read_bytes() == b"new initrd"
    assert sorted(p.name for p in boot.iterdir()) == ["B"]
    # another class of slot is left alone; a bad boot name or a root without a kernel fails
    assert _handler("post", boot, tmp_path, RAUC_SLOT_CLASS_1="appfs").returncode == 0
    assert _handler("post", boot, image, RAUC_SLOT_BOOTNAME_1="C").returncode != 0
    broken = _squashfs_root(tmp_path, "broken", {"boot/vmlinuz": b"kernel"})
    done = _handler("post", boot, broken)
    assert done.returncode != 0 and "no /boot/initrd.img" in done.stderr
    assert not (boot / "B").exists() and not (boot / "B.new").exists()


# -- boot.cmd in U-Boot ------------------------------------------------------------------------
BOOT_SECTORS = 69632  # 34 MiB FAT32 at sector 2048
needs_uboot = pytest.mark.skipif(
    not (UBOOT.is_file() and _have("qemu-system-aarch64", "mkimage", "mkenvimage", "mkfs.vfat"))
    or not _have("mcopy", "sfdisk"),
    reason="u-boot-qemu, qemu-system-arm, u-boot-tools, dosfstools, mtools (make image-setup)",
)


def _boot_disk(tmp_path: Path, slots: tuple[str, ...], env: dict[str, str] | None) -> Path:
    """A GPT disk whose first partition holds boot.scr, the slots' (dummy) kernels and env."""
    disk, fat = tmp_path / "disk.img", tmp_path / "efi.vfat"
    subprocess.run(["mkimage", "-A", "arm64", "-T", "script", "-C", "none", "-d",
                    str(BOARD / "boot.cmd"), str(tmp_path / "boot.scr")],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["mkfs.vfat", "-F", "32", "-S", "512", "-C", str(fat), str(BOOT_SECTORS // 2)],
                   check=True, capture_output=True)  # fmt: skip
    mtools = ["-i", str(fat)]
    subprocess.run(["mcopy", *mtools, str(tmp_path / "boot.scr"), "::/"], check=True)
    for slot in slots:
        (tmp_path / "vmlinuz").write_bytes(b"not an Image")
        (tmp_path / "initrd.img").write_bytes(b"initrd")
        subprocess.run(["mmd", *mtools, f"::/{slot}"], check=True)
        files = [str(tmp_path / "vmlinuz"), str(tmp_path / "initrd.img")]
        subprocess.run(["mcopy", *mtools, *files, f"::/{slot}/"], check=True)
    if env is not None:
        text = tmp_path / "env.txt"
        text.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
        image = tmp_path / "vigil.env"
        subprocess.run(["mkenvimage", "-s", str(ENV_SIZE), "-o", str(image), str(text)],
                       check=True)  # fmt: skip
        subprocess.run(["mcopy", *mtools, str(image), "::/vigil.env"], check=True)
    with disk.open("wb") as out:
        out.truncate((2048 + BOOT_SECTORS + 2048) * 512)
    table = f'label: gpt\nstart=2048, size={BOOT_SECTORS}, type=U, name="efi"\n'
    subprocess.run(["sfdisk", "-q", str(disk)], input=table, text=True, check=True)
    with disk.open("r+b") as out:
        out.seek(2048 * 512)
        out.write(fat.read_bytes())
    return disk


def _run_uboot(disk: Path, timeout: float = 60) -> list[str]:
    """U-Boot's console lines up to boot.cmd's verdict (the dummy kernel does not start)."""
    command = [
        "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-m", "512", "-nographic",
        "-no-reboot", "-nic", "none", "-bios", str(UBOOT),
        "-drive", f"if=none,file={disk},format=raw,id=d", "-device", "virtio-blk-device,drive=d",
    ]  # fmt: skip
    qemu = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert qemu.stdout is not None
        for raw in qemu.stdout:
            lines.append(raw.decode(errors="replace").rstrip())
            if "restarting" in lines[-1] or time.monotonic() > deadline:
                break
    finally:
        qemu.kill()
        qemu.wait()
    return lines


def _env(disk: Path) -> dict[str, str]:
    """vigil.env as fw_printenv reads it: CRC32 (little endian) of the rest, then k=v\\0..."""
    data = subprocess.run(
        ["mtype", "-i", f"{disk}@@{2048 * 512}", "::/vigil.env"], capture_output=True, check=True
    ).stdout
    assert len(data) == ENV_SIZE
    assert struct.unpack_from("<I", data)[0] == zlib.crc32(data[4:])
    variables = data[4:].split(b"\0\0")[0].decode().split("\0")
    return dict(v.split("=", 1) for v in variables)


def _verdict(lines: list[str]) -> str:
    (line,) = [line for line in lines if line.startswith("Vigil: booting slot")]
    return line


@needs_uboot
def test_boot_script_starts_a_on_a_new_card(tmp_path: Path) -> None:
    disk = _boot_disk(tmp_path, ("A",), env=None)  # vigil.env is made on the first boot
    verdict = _verdict(_run_uboot(disk))
    assert verdict.startswith("Vigil: booting slot A (BOOT_ORDER=A B A_LEFT=2 B_LEFT=0)")
    assert "root=PARTLABEL=rootfs-a " in verdict and "rauc.slot=A " in verdict
    assert "console=tty1" in verdict
    assert _env(disk) == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "2", "BOOT_B_LEFT": "0"}


@needs_uboot
def test_boot_script_passes_over_a_slot_without_its_kernel(tmp_path: Path) -> None:
    # RAUC marked B active, its handler has not copied B's kernel yet (or was cut off)
    env = {"BOOT_ORDER": "B A", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "3"}
    disk = _boot_disk(tmp_path, ("A",), env)
    assert "slot A (BOOT_ORDER=B A A_LEFT=2 B_LEFT=3)" in _verdict(_run_uboot(disk))
    assert _env(disk)["BOOT_B_LEFT"] == "3"


@needs_uboot
def test_boot_script_tries_the_new_slot_then_falls_back(tmp_path: Path) -> None:
    env = {"BOOT_ORDER": "B A", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "1"}
    disk = _boot_disk(tmp_path, ("A", "B"), env)
    verdict = _verdict(_run_uboot(disk))
    assert "slot B (BOOT_ORDER=B A A_LEFT=3 B_LEFT=0)" in verdict
    assert "root=PARTLABEL=rootfs-b " in verdict and "rauc.slot=B " in verdict
    # B never reached mark-good: its last try is spent, A starts
    assert "slot A (BOOT_ORDER=B A A_LEFT=2 B_LEFT=0)" in _verdict(_run_uboot(disk))


@needs_uboot
def test_boot_script_gives_new_tries_when_none_is_left(tmp_path: Path) -> None:
    env = {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "0", "BOOT_B_LEFT": "0"}
    disk = _boot_disk(tmp_path, ("A", "B"), env)
    lines = _run_uboot(disk)
    assert "Vigil: no slot has boots left; giving both new tries" in lines
    assert "slot A (BOOT_ORDER=A B A_LEFT=2 B_LEFT=3)" in _verdict(lines)


@needs_uboot
@pytest.mark.skipif(not _have("fw_printenv", "fw_setenv"), reason="libubootenv-tool")
def test_boot_script_and_raucs_fw_setenv_share_the_environment(tmp_path: Path) -> None:
    disk = _boot_disk(tmp_path, ("A", "B"), env=None)
    _run_uboot(disk)  # U-Boot writes vigil.env
    fat = f"{disk}@@{2048 * 512}"
    env = tmp_path / "vigil.env"
    env.write_bytes(
        subprocess.run(["mtype", "-i", fat, "::/vigil.env"], capture_output=True, check=True).stdout
    )
    # the board's /etc/fw_env.config, pointed at the copy
    fw_env = (BOARD / "rootfs-overlay/etc/fw_env.config").read_text(encoding="utf-8")
    (entry,) = [line.split() for line in fw_env.splitlines() if line.startswith("/")]
    config = tmp_path / "fw_env.config"
    config.write_text(" ".join([str(env), *entry[1:]]) + "\n", encoding="utf-8")
    tool = ["-c", str(config)]
    printed = subprocess.run(["fw_printenv", *tool], capture_output=True, text=True, check=True)
    assert printed.stdout.split("\n")[:3] == ["BOOT_A_LEFT=2", "BOOT_B_LEFT=0", "BOOT_ORDER=A B"]
    # what RAUC's U-Boot backend does to mark B active
    subprocess.run(["fw_setenv", *tool, "BOOT_ORDER", "B A"], check=True)
    subprocess.run(["fw_setenv", *tool, "BOOT_B_LEFT", "3"], check=True)
    subprocess.run(["mcopy", "-o", "-i", fat, str(env), "::/vigil.env"], check=True)
    assert "slot B (BOOT_ORDER=B A A_LEFT=2 B_LEFT=2)" in _verdict(_run_uboot(disk))
