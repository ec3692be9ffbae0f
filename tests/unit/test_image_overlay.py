"""What the image lays over the Debian root (overlay, board files, os-release, modules) and the
squashfs made of it, checked on a small tree with the real mksquashfs and unsquashfs."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from vigil_tools.image import overlay, squashfs
from vigil_tools.image.recipe import BOARDS, OVERLAY, ImageError

INFO = overlay.BuildInfo(version="0.1.0", build_id="v0.1.0-3-gabc1234-dirty-20261121", epoch=1)
needs_squashfs_tools = pytest.mark.skipif(
    shutil.which("mksquashfs") is None, reason="squashfs-tools (make setup) not installed"
)


def parse_os_release(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        fields[key] = value[1:-1].replace('\\"', '"') if value.startswith('"') else value
    return fields


def test_os_release_fields():
    fields = parse_os_release(overlay.os_release("qemu-x86_64", "bookworm", INFO))
    assert fields["ID"] == "vigil" and fields["IMAGE_ID"] == "vigil"
    assert fields["VERSION_ID"] == "0.1.0" and fields["ID_LIKE"] == "debian"
    assert fields["BUILD_ID"] == "v0.1.0-3-gabc1234-dirty-20261121"
    assert fields["VARIANT_ID"] == "qemu-x86_64"
    assert fields["PRETTY_NAME"] == "Vigil 0.1.0 (qemu-x86_64)"


def test_os_release_build_id_is_kept_to_its_characters():
    info = overlay.BuildInfo(version="1", build_id='x y/"z"', epoch=0)
    assert "BUILD_ID=x_y__z_\n" in overlay.os_release("b", "bookworm", info)


def test_build_info_from_git_and_source_date_epoch():
    info = overlay.build_info(environ={"SOURCE_DATE_EPOCH": "1700000000"})
    assert info.epoch == 1700000000
    assert info.build_id.endswith("-20231114")
    assert info.version  # pyproject's
    with pytest.raises(ImageError, match="SOURCE_DATE_EPOCH"):
        overlay.build_info(environ={"SOURCE_DATE_EPOCH": "yesterday"})


@pytest.fixture
def staged(tmp_path):
    module = tmp_path / "gpio-sim-6.1.0-50-amd64-0123.ko"
    module.write_bytes(b"\x7fELF module")
    modules = overlay.BoardModules(
        release="6.1.0-50-amd64",
        extra={"gpio-sim": module},
        load=("vivid", "i2c-stub", "gpio-sim"),
        options={"i2c-stub": "chip_addr=0x23"},
        files={
            "usr/libexec/vigil/gpio-sim-setup": "#!/bin/sh\necho set up\n",
            "/etc/systemd/system/vigil-gpio-sim.service": "[Unit]\n",
        },
    )
    keyring = tmp_path / "ca.cert.pem"
    keyring.write_text("-----BEGIN CERTIFICATE-----\n")
    return overlay.stage(
        tmp_path / "staged", BOARDS / "qemu-x86_64", "bookworm", INFO, modules, keyring=keyring
    )


def test_stage_lays_common_then_board_overlay_and_board_files(staged):
    assert (staged / "etc/systemd/system/vigild.service").is_file()
    assert (staged / "usr/share/vigil/board/qemu-x86_64/board.toml").read_bytes() == (
        BOARDS / "qemu-x86_64/board.toml"
    ).read_bytes()
    assert (staged / "etc/default/vigild").read_text().endswith("VIGIL_BOARD=qemu-x86_64\n")
    assert (staged / "etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf").is_file()
    assert os.readlink(staged / "etc/systemd/system/getty@.service") == "/dev/null"
    assert os.readlink(staged / "etc/os-release") == "../usr/lib/os-release"
    assert "IMAGE_ID=vigil" in (staged / "usr/lib/os-release").read_text()
    setup = staged / "usr/lib/vigil/vigil-data-setup"
    assert setup.stat().st_mode & stat.S_IXUSR


def test_stage_writes_the_board_modules(staged):
    ko = staged / "usr/lib/modules/6.1.0-50-amd64/updates/gpio-sim.ko"
    assert ko.read_bytes() == b"\x7fELF module"
    load = (staged / "etc/modules-load.d/vigil-board.conf").read_text().splitlines()
    assert load[1:] == ["vivid", "i2c-stub", "gpio-sim"]
    options = (staged / "etc/modprobe.d/vigil-board.conf").read_text()
    assert "options i2c-stub chip_addr=0x23" in options
    script = staged / "usr/libexec/vigil/gpio-sim-setup"
    assert script.read_text() == "#!/bin/sh\necho set up\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    unit = staged / "etc/systemd/system/vigil-gpio-sim.service"
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644


def test_stage_installs_the_boards_rauc_config_and_the_keyring(staged, tmp_path):
    assert (staged / "etc/rauc/system.conf").read_bytes() == (
        BOARDS / "qemu-x86_64/system.conf"
    ).read_bytes()
    assert (staged / "etc/rauc/keyring.pem").read_text() == "-----BEGIN CERTIFICATE-----\n"


def test_a_rauc_board_without_a_keyring_is_refused(tmp_path):
    with pytest.raises(ImageError, match="no keyring"):
        overlay.stage(tmp_path / "staged", BOARDS / "qemu-x86_64", "bookworm", INFO)


def test_stage_empties_its_folder(tmp_path):
    out = tmp_path / "staged"
    (out / "stale").mkdir(parents=True)
    keyring = tmp_path / "ca.pem"
    keyring.write_text("")
    overlay.stage(out, BOARDS / "qemu-x86_64", "bookworm", INFO, keyring=keyring)
    assert not (out / "stale").exists()
    assert not (out / "etc/modules-load.d/vigil-board.conf").exists()


def test_unit_runs_the_venv_daemon_with_the_board_restarts_and_watches_it():
    unit = (OVERLAY / "etc/systemd/system/vigild.service").read_text()
    assert (
        "ExecStart=/opt/vigil/venv/bin/vigild --board ${VIGIL_BOARD} --data-dir /data/vigil" in unit
    )
    assert "Restart=on-failure" in unit and "EnvironmentFile=/etc/default/vigild" in unit
    assert "RequiresMountsFor=/data" in unit
    assert "Environment=LG_WD=/run/vigil" in unit and "RuntimeDirectory=vigil" in unit
    # Started once it serves, restarted when its event loop stops pinging the watchdog
    # (vigil.system.service_manager; tests/integration/test_service_manager.py).
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line)
    assert (settings["Type"], settings["NotifyAccess"], settings["WatchdogSec"]) == (
        "notify",
        "main",
        "60",
    )


def test_fstab_data_and_memory_file_systems():
    rows = [
        line.split()
        for line in (OVERLAY / "etc/fstab").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    mounts = {row[1]: row for row in rows}
    assert mounts["/data"][:3] == ["PARTLABEL=data", "/data", "ext4"]
    assert "x-systemd.requires=vigil-data.service" in mounts["/data"][3]
    for path in ("/tmp", "/var/log", "/var/tmp", "/var/lib/systemd"):
        assert mounts[path][2] == "tmpfs"


def fake_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "boot").mkdir()
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "etc/resolv.conf").write_text("nameserver 10.0.0.1\n")
    (root / "boot/vmlinuz-6.1.0-50-amd64").write_bytes(b"kernel")
    (root / "boot/initrd.img-6.1.0-50-amd64").write_bytes(b"initrd")
    return root


def test_finish_machine_id_resolv_conf_and_boot_files(tmp_path):
    root = fake_root(tmp_path)
    overlay.finish(root)
    assert (root / "etc/machine-id").read_bytes() == b""
    assert os.readlink(root / "etc/resolv.conf") == "../run/resolv.conf"
    fstab = (OVERLAY / "etc/fstab").read_text().splitlines()
    for row in (line.split() for line in fstab if line and not line.startswith("#")):
        assert (root / row[1].lstrip("/")).is_dir(), row[1]
    vmlinuz = root / "boot/vmlinuz"
    assert not vmlinuz.is_symlink() and vmlinuz.read_bytes() == b"kernel"
    assert vmlinuz.stat().st_ino == (root / "boot/vmlinuz-6.1.0-50-amd64").stat().st_ino
    assert (root / "boot/initrd.img").read_bytes() == b"initrd"
    overlay.finish(root)  # again: same result
    assert (root / "boot/vmlinuz").read_bytes() == b"kernel"


def test_finish_wants_exactly_one_kernel(tmp_path):
    root = fake_root(tmp_path)
    (root / "boot/vmlinuz-6.1.0-56-amd64").write_bytes(b"another")
    with pytest.raises(ImageError, match="one /boot/vmlinuz-"):
        overlay.finish(root)


@needs_squashfs_tools
def test_squashfs_of_a_staged_tree_is_reproducible_and_listed(staged, tmp_path):
    first, second = tmp_path / "a.sqfs", tmp_path / "b.sqfs"
    os.utime(staged / "etc/fstab", (5, 5))
    size = squashfs.make(staged, first, 1700000000, "amd64", max_mb=16)
    os.utime(staged / "etc/fstab", (9, 9))  # time stamps are SOURCE_DATE_EPOCH's
    squashfs.make(staged, second, 1700000000, "amd64", max_mb=16)
    assert size == first.stat().st_size and first.read_bytes() == second.read_bytes()
    listing = squashfs.listing(first)
    assert "usr/share/vigil/board/qemu-x86_64/board.toml" in listing
    assert "etc/systemd/system/vigil-data.service" in listing
    long = subprocess.run(
        ["unsquashfs", "-lln", "-d", "", str(first)], capture_output=True, text=True, check=True
    ).stdout
    row = next(
        line for line in long.splitlines() if line.endswith("/usr/lib/vigil/vigil-data-setup")
    )
    assert row.split()[:2] == ["-rwxr-xr-x", "0/0"]  # -all-root, modes kept
    stats = subprocess.run(
        ["unsquashfs", "-s", str(first)], capture_output=True, text=True, check=True
    ).stdout
    assert "Compression xz" in stats


@needs_squashfs_tools
def test_squashfs_over_the_limit_fails_and_leaves_nothing(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "noise").write_bytes(os.urandom(1_200_000))  # does not compress
    out = tmp_path / "root.sqfs"
    with pytest.raises(ImageError, match=r"1\.2 MB, more than the board's 1 MB"):
        squashfs.make(tree, out, 0, "amd64", max_mb=1)
    assert list(tmp_path.glob("root.sqfs*")) == []
    out.write_bytes(b"the previous build")
    with pytest.raises(ImageError, match="more than the board's"):
        squashfs.make(tree, out, 0, "amd64", max_mb=1)
    assert out.read_bytes() == b"the previous build"
    assert list(tmp_path.glob("root.sqfs*")) == [out]


def test_mksquashfs_command_uses_xz_and_fixed_times(tmp_path):
    command = squashfs.mksquashfs_command(tmp_path, tmp_path / "o", 42, "amd64")
    assert command[:3] == ["mksquashfs", str(tmp_path), str(tmp_path / "o")]
    for option in ("-noappend", "-all-root"):
        assert option in command
    assert command[command.index("-comp") + 1] == "xz"
    assert command[command.index("-Xbcj") + 1] == "x86"
    assert command[command.index("-mkfs-time") + 1] == "42"
    assert command[command.index("-all-time") + 1] == "42"
    assert "-Xbcj" not in squashfs.mksquashfs_command(tmp_path, tmp_path / "o", 42, "arm64")
