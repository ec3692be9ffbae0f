"""Board files: every board under board/ loads as the daemon loads it; recipes load strictly."""

from __future__ import annotations

import shutil

import pytest

from vigil.board.description import load_board
from vigil_tools.image.recipe import BOARDS, ImageError, board_directory, load_recipe

ALL_BOARDS = sorted(p.name for p in BOARDS.iterdir() if (p / "board.toml").is_file())


def test_the_rig_board_is_there():
    assert {"sim", "qemu-x86_64"} <= set(ALL_BOARDS)


@pytest.mark.parametrize("board", ALL_BOARDS)
def test_every_board_loads(board):
    description = load_board(str(BOARDS / board / "board.toml"))
    assert description.board.name == board


def test_rig_board_uses_the_linux_drivers_on_the_rig_devices():
    board = load_board(str(BOARDS / "qemu-x86_64" / "board.toml"))
    assert board.sensor.driver == "v4l2" and board.sensor.device == "/dev/video0"
    assert board.storage.driver == "linux" and board.storage.devices == ["/dev/mmcblk0"]
    assert board.ptz.device == "/dev/ttyS1"
    assert board.alarm_io.driver == "gpio" and board.day_night.driver == "gpio"
    assert (board.day_night.light_sensor, board.day_night.i2c_bus) == ("bh1750", 0)
    assert board.network.driver == "linux" and board.network.interfaces == ["eth0"]
    assert board.clock.driver == board.power.driver == "linux"


def test_rig_recipe():
    recipe = load_recipe("qemu-x86_64")
    assert recipe.rootfs.suite == "bookworm" and recipe.rootfs.architecture == "amd64"
    assert {"systemd", "rauc", "python3-venv", "e2fsprogs"} <= set(recipe.rootfs.packages)
    assert recipe.wheels.machine == "x86_64" and recipe.wheels.python == "311"
    assert recipe.wheels.extra == ("lgpio>=0.2",)
    assert recipe.rootfs.squashfs_max_mb == 250
    assert "usr/lib/modules/*/kernel/sound" in recipe.rootfs.prune


@pytest.mark.parametrize("name", ["", "../sim", "Sim", "a/b"])
def test_bad_board_names(name):
    with pytest.raises(ImageError, match="not a board name"):
        board_directory(name)


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(ImageError, match="qemu-x86_64"):
        board_directory("nope")


def test_board_without_recipe():
    with pytest.raises(ImageError, match="no image recipe"):
        load_recipe("sim")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (("suite = ", "suit = "), "has no key 'suit'"),
        (('variant = "minbase"', 'variant = "tiny"'), "variant must be one of"),
        (('"rauc",', '"Rauc!",'), "not a Debian package name"),
        (("squashfs_max_mb = 250", "squashfs_max_mb = 5"), "16..4096"),
        (("squashfs_max_mb = 250", 'squashfs_max_mb = "250"'), "must be a int"),
        (('python = "311"', 'python = "3.11"'), "like 311"),
        (("[wheels]", "[wheelz]"), "unknown section"),
        (('"lgpio>=0.2"', '"lgpio; rm -rf /"'), "not a requirement"),
        (('"usr/lib/modules/*/kernel/sound"', '"/usr/lib"'), "not a path relative to /"),
        (('"usr/lib/modules/*/kernel/sound"', '"usr/../etc"'), "not a path relative to /"),
        (('"usr/lib/modules/*/kernel/sound"', '"usr/a b"'), "not a path relative to /"),
        (('"usr/lib/modules/*/kernel/sound"', '"x; rm"'), "not a path relative to /"),
    ],
)
def test_recipe_is_strict(tmp_path, edit, reason):
    shutil.copytree(BOARDS / "qemu-x86_64", tmp_path / "qemu-x86_64")
    path = tmp_path / "qemu-x86_64" / "image.toml"
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ImageError, match=reason):
        load_recipe("qemu-x86_64", boards=tmp_path)
