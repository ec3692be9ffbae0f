"""What the image adds to the Debian root: the overlays, the board files, `/etc/os-release`.

`stage` makes a tree that the build copies over the root after the packages are installed (and
before the initramfs is made again and the units are enabled): `rootfs-overlay/` (common to every
board), then `board/<name>/rootfs-overlay/` (the board's own), then the generated files:
`/usr/share/vigil/board/<name>/board.toml`, `/etc/default/vigild` (the board's name for the
unit), `/usr/lib/os-release` (with `/etc/os-release` linking to it, as Debian has it), and
`/etc/rauc/system.conf` (the board's) with `/etc/rauc/keyring.pem` (the bundle signers' CA).

`finish` fixes what must hold in the final root whatever the packages did: an empty
`/etc/machine-id` (systemd mounts a new one over it at every boot on a read-only root, and an
empty file is not a "first boot"), `/etc/resolv.conf` a link into /run (vigild and udhcpc write
it), the mount points of /etc/fstab (a read-only root cannot make them at boot), and
`/boot/vmlinuz` and `/boot/initrd.img` hard links to the one kernel and initramfs, so GRUB reads
plain files from the squashfs.

The version (`VERSION_ID`) is the project's; `BUILD_ID` is `git describe` and the date of
SOURCE_DATE_EPOCH, which is the last commit's time unless set: the same tree gives the same file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from vigil_tools.image.recipe import OVERLAY, REPO, ImageError

MOUNT_POINTS = ("data", "boot/efi", "tmp", "var/tmp", "var/log", "var/lib/systemd")  # /etc/fstab's


@dataclass(frozen=True)
class BoardModules:
    """The board's kernel modules: extra .ko files (gpio-sim) and what is loaded at boot."""

    release: str  # uname -r: the modules folder
    # module name -> its .ko, installed as /usr/lib/modules/<release>/updates/<name>.ko
    extra: dict[str, Path] = field(default_factory=dict)
    load: tuple[str, ...] = ()  # /etc/modules-load.d/vigil-board.conf, in this order
    options: dict[str, str] = field(default_factory=dict)  # /etc/modprobe.d/vigil-board.conf
    # Other files the modules need (path in the root -> text; "#!" makes it executable), such
    # as the rig's gpio-sim chip set-up (`vigil_tools.rig.gpio_sim.boot_files`).
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildInfo:
    version: str  # the project's version: VERSION_ID
    build_id: str  # git describe + date: BUILD_ID
    epoch: int  # SOURCE_DATE_EPOCH: every time stamp in the image


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def build_info(repo: Path = REPO, environ: dict[str, str] | None = None) -> BuildInfo:
    environ = dict(os.environ) if environ is None else environ
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    version = project["project"]["version"]
    epoch_text = environ.get("SOURCE_DATE_EPOCH") or _git(repo, "log", "-1", "--format=%ct")
    if not epoch_text.isdigit():
        raise ImageError(f"SOURCE_DATE_EPOCH {epoch_text!r} is not a number of seconds")
    epoch = int(epoch_text)
    describe = _git(repo, "describe", "--always", "--dirty", "--tags") or "unknown"
    day = time.strftime("%Y%m%d", time.gmtime(epoch))
    return BuildInfo(version=version, build_id=f"{describe}-{day}", epoch=epoch)


def _quoted(value: str) -> str:
    return '"' + re.sub(r'(["\\`$])', r"\\\1", value) + '"'


def os_release(board: str, suite: str, info: BuildInfo) -> str:
    """os-release(5) of the image; the plain fields only use [a-z0-9._-] as the format asks."""
    fields = {
        "PRETTY_NAME": _quoted(f"Vigil {info.version} ({board})"),
        "NAME": _quoted("Vigil"),
        "ID": "vigil",
        "ID_LIKE": "debian",
        "VERSION": _quoted(f"{info.version} (Debian {suite})"),
        "VERSION_ID": info.version,
        "VERSION_CODENAME": suite,
        "BUILD_ID": re.sub(r"[^A-Za-z0-9._-]", "_", info.build_id),
        "IMAGE_ID": "vigil",
        "IMAGE_VERSION": info.version,
        "VARIANT_ID": board,
    }
    return "".join(f"{key}={value}\n" for key, value in fields.items())


def _copy_tree(source: Path, out: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, out, symlinks=True, dirs_exist_ok=True)


def _stage_modules(out: Path, modules: BoardModules) -> None:
    updates = out / "usr/lib/modules" / modules.release / "updates"
    updates.mkdir(parents=True)
    for name, module in sorted(modules.extra.items()):
        shutil.copy2(module, updates / f"{name}.ko")
    header = "# Written by `vigil image` from the board's kernel.toml.\n"
    (out / "etc/modules-load.d").mkdir(parents=True, exist_ok=True)
    (out / "etc/modules-load.d/vigil-board.conf").write_text(
        header + "".join(f"{name}\n" for name in modules.load), encoding="utf-8"
    )
    for relative, text in sorted(modules.files.items()):
        path = out / relative.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755 if text.startswith("#!") else 0o644)
    (out / "etc/modprobe.d").mkdir(parents=True, exist_ok=True)
    (out / "etc/modprobe.d/vigil-board.conf").write_text(
        header + "".join(f"options {m} {o}\n" for m, o in sorted(modules.options.items())),
        encoding="utf-8",
    )


def stage(
    out: Path,
    board_dir: Path,
    suite: str,
    info: BuildInfo,
    modules: BoardModules | None = None,
    overlay: Path = OVERLAY,
    keyring: Path | None = None,
) -> Path:
    """The tree laid over the root (see the module's docstring), made in `out` (emptied).
    `keyring`: the CA certificate the image trusts bundles from (RAUC's keyring)."""
    board = board_dir.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _copy_tree(overlay, out)
    _copy_tree(board_dir / "rootfs-overlay", out)
    installed = out / "usr/share/vigil/board" / board
    installed.mkdir(parents=True)
    shutil.copy2(board_dir / "board.toml", installed / "board.toml")
    (out / "etc/default").mkdir(parents=True, exist_ok=True)
    (out / "etc/default/vigild").write_text(
        f"# The board vigild.service runs with.\nVIGIL_BOARD={board}\n", encoding="utf-8"
    )
    (out / "usr/lib").mkdir(parents=True, exist_ok=True)
    (out / "usr/lib/os-release").write_text(os_release(board, suite, info), encoding="utf-8")
    _replace_with_link(out / "etc/os-release", "../usr/lib/os-release")
    if modules is not None:
        _stage_modules(out, modules)
    _stage_rauc(out, board_dir, keyring)
    return out


def _stage_rauc(out: Path, board_dir: Path, keyring: Path | None) -> None:
    """The board's RAUC system config and the keyring it names, at the paths it names."""
    if not (board_dir / "system.conf").is_file():
        return
    if keyring is None:
        raise ImageError(f"{board_dir.name} has a RAUC system.conf but no keyring was given")
    (out / "etc/rauc").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(board_dir / "system.conf", out / "etc/rauc/system.conf")
    shutil.copyfile(keyring, out / "etc/rauc/keyring.pem")


def _replace_with_link(path: Path, target: str) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def _only(root: Path, pattern: str) -> Path:
    found = sorted(p for p in (root / "boot").glob(pattern) if not p.is_symlink())
    if len(found) != 1:
        raise ImageError(f"expected one /boot/{pattern} in the root, found {len(found)}")
    return found[0]


def finish(root: Path) -> None:
    """The final fixes of the root (see the module's docstring)."""
    machine_id = root / "etc/machine-id"
    machine_id.unlink(missing_ok=True)
    machine_id.write_bytes(b"")
    machine_id.chmod(0o444)
    _replace_with_link(root / "etc/resolv.conf", "../run/resolv.conf")
    for mount_point in MOUNT_POINTS:  # a read-only root cannot make them at boot
        (root / mount_point).mkdir(mode=0o755, parents=True, exist_ok=True)
    for name, pattern in (("vmlinuz", "vmlinuz-*"), ("initrd.img", "initrd.img-*")):
        source = _only(root, pattern)
        link = root / "boot" / name
        link.unlink(missing_ok=True)
        os.link(source, link)
