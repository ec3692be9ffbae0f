"""The mmdebstrap run of a board's root: its options and hooks, in the order they must run."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil_tools.cli import main
from vigil_tools.image import rootfs
from vigil_tools.image.recipe import ImageError, load_recipe
from vigil_tools.rig.spec import load_rig_board

RECIPE = load_recipe("qemu-x86_64")


def command(**given) -> list[str]:
    inputs = rootfs.Inputs(apt_cache=Path("/cache/apt"), installed=Path("/w/installed"), **given)
    return rootfs.mmdebstrap_command(RECIPE.rootfs, Path("/w/root"), inputs, "linux-image-x")


def hooks(argv: list[str], kind: str) -> list[str]:
    return [a.split("=", 1)[1] for a in argv if a.startswith(f"--{kind}-hook=")]


def test_positionals_packages_and_cache():
    argv = command()
    assert argv[0] == "mmdebstrap" and "--mode=root" in argv and "--variant=minbase" in argv
    assert argv[-5:] == ["bookworm", "/w/root", *RECIPE.rootfs.mirrors]
    include = next(a for a in argv if a.startswith("--include=")).split("=", 1)[1].split(",")
    assert include[-1] == "linux-image-x" and "rauc" in include
    assert "--skip=download/empty" in argv and "--skip=essential/unlink" in argv
    assert "sync-in /cache/apt /var/cache/apt/archives/" in hooks(argv, "setup")
    customize = hooks(argv, "customize")
    assert customize[0] == "sync-out /var/cache/apt/archives /cache/apt"
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in argv


def test_lock_run_installs_nothing_of_ours():
    customize = hooks(command(), "customize")
    assert not any("venv" in hook or "sync-in" in hook or "rm -rf" in hook for hook in customize)
    assert "dpkg-query" in customize[-1] and "/w/installed" in customize[-1]
    assert not any("preferences" in hook for hook in hooks(command(), "setup"))


def test_pinned_build_hooks_in_order():
    argv = command(
        preferences=Path("/w/prefs"),
        staged_overlay=Path("/w/overlay"),
        staged_wheels=Path("/w/wheels"),
        project_wheel="vigil-0.1.0-py3-none-any.whl",
        kernel_release="6.1.0-50-amd64",
    )
    assert "upload /w/prefs /etc/apt/preferences.d/vigil-lock" in hooks(argv, "setup")
    customize = hooks(argv, "customize")

    def at(text: str) -> int:
        return next(i for i, hook in enumerate(customize) if text in hook)

    assert at("sync-in /w/overlay /") < at('rm -rf "$1"/usr/lib/modules/*/kernel/sound')
    assert at("kernel/sound") < at("depmod -a 6.1.0-50-amd64") < at("update-initramfs")
    assert at("python3 -m venv /opt/vigil/venv") < at("--require-hashes")
    assert at("--require-hashes") < at("--no-deps /tmp/vigil-wheels/vigil-0.1.0-py3-none-any")
    assert at('rm -rf "$1"/tmp/vigil-wheels') < at("systemctl enable vigild.service")
    assert at("preferences.d/vigil-lock") < at("sync-in /w/overlay")  # pins not left in the root


def test_kernel_pin_must_match_the_lock():
    kernel = load_rig_board("qemu-x86_64").kernel
    rootfs.check_kernel_pin({kernel.image_package: kernel.version}, kernel)
    with pytest.raises(ImageError, match="run `vigil image lock`"):
        rootfs.check_kernel_pin({kernel.image_package: "0.0-1"}, kernel)
    with pytest.raises(ImageError, match=r"packages\.lock has none"):
        rootfs.check_kernel_pin({}, kernel)


def test_build_refuses_without_locks(tmp_path, monkeypatch):
    monkeypatch.setattr(rootfs, "load_recipe", lambda board: _recipe_in(tmp_path))
    monkeypatch.setattr(rootfs, "_check_tools", lambda *tools: None)
    with pytest.raises(ImageError, match="missing: run `vigil image lock"):
        rootfs.build_rootfs("qemu-x86_64", tmp_path / "out", tmp_path / "cache")
    assert not (tmp_path / "out").exists()


def _recipe_in(directory: Path):
    from dataclasses import replace

    return replace(RECIPE, directory=directory)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["image", "rootfs", "--board", "nope"], "no board 'nope'"),
        (["image", "lock", "--board", "sim"], "has no image recipe"),
    ],
)
def test_cli_says_why_in_one_line(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vigil: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_failed_build_keeps_the_previous_root_and_no_work_folder(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "rootfs.squashfs").write_bytes(b"previous")
    monkeypatch.setattr(rootfs, "_check_tools", lambda *tools: None)

    def fails(recipe, pins, wheel_pins, rig, work, cache):
        (work / "root").mkdir()
        raise ImageError("mmdebstrap failed")

    monkeypatch.setattr(rootfs, "_make_root", fails)
    with pytest.raises(ImageError, match="mmdebstrap failed"):
        rootfs.build_rootfs("qemu-x86_64", out, tmp_path / "cache")
    assert sorted(p.name for p in out.iterdir()) == ["rootfs.squashfs"]
    assert (out / "rootfs.squashfs").read_bytes() == b"previous"


def test_the_initramfs_settings_are_in_place_before_the_kernel_is_installed():
    argv = command(initramfs_conf=Path("/w/overlay/etc/initramfs-tools/conf.d"))
    (essential,) = hooks(argv, "essential")
    assert essential == (
        'mkdir -p "$1"/etc/initramfs-tools/conf.d && '
        'cp -r /w/overlay/etc/initramfs-tools/conf.d/. "$1"/etc/initramfs-tools/conf.d/'
    )
    assert not hooks(command(), "essential")
