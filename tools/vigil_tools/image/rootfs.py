"""The board's root file system: mmdebstrap, Vigil in a venv, the overlay, then a squashfs.

`build_rootfs(board, out, cache)` is the whole of `vigil image rootfs`: it reads the board's
recipe and locks, runs mmdebstrap (root mode, into a directory) whose hooks

1. keep the downloaded .debs in `<cache>/apt` (and take them from there next time:
   `--skip=download/empty` + sync-in/sync-out, the man page's cache recipe),
2. record what dpkg installed (compared with packages.lock after the run),
3. lay the staged overlay over the root, make the initramfs again (its config is in the overlay),
4. make `/opt/vigil/venv` and install the staged wheels into it offline, enable the units,

then `overlay.finish` and `squashfs.make`. A pinned build gives apt a preferences file pinning
every locked package; `lock_rootfs` (`vigil image lock`) runs the same build without pins and
writes what it installed to packages.lock and the wheels pip resolves to wheels.lock.

Documentation and translations are not installed (dpkg path-exclude); copyright files are.
The root directory is deleted once the squashfs is made; the squashfs is `<out>/rootfs.squashfs`.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from vigil_tools.image import lock, overlay, squashfs, wheels
from vigil_tools.image.keys import ensure_keys
from vigil_tools.image.recipe import OVERLAY, ImageError, Recipe, RootfsRecipe, load_recipe
from vigil_tools.rig.gpio_sim import BuildError, boot_files, build_gpio_sim
from vigil_tools.rig.spec import KernelPin, RigBoard, SpecError, load_rig_board

log = logging.getLogger(__name__)

VENV = "/opt/vigil/venv"
STAGED_WHEELS = "/tmp/vigil-wheels"
UNITS = ("vigild.service", "vigil-data.service")
INITRAMFS_CONF = "etc/initramfs-tools/conf.d"
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
)


@dataclass(frozen=True)
class Inputs:
    """What a mmdebstrap run takes besides the recipe (None: that step is left out)."""

    apt_cache: Path
    installed: Path  # where the hook writes `name=version` of every installed package
    preferences: Path | None = None  # apt preferences pinning the lock
    staged_overlay: Path | None = None
    staged_wheels: Path | None = None
    project_wheel: str = ""  # file name of the Vigil wheel in staged_wheels
    kernel_release: str = ""  # depmod for this kernel after the overlay (its extra modules)
    # initramfs-tools conf.d files laid before the kernel's postinst makes its first initramfs
    initramfs_conf: Path | None = None


def _chroot(*argv: str) -> str:
    return 'chroot "$1" ' + shlex.join(argv)


def _prune(patterns: tuple[str, ...]) -> str:
    # Globs stay unquoted for the hook's shell; the recipe allows no space, quote or `..`.
    return "rm -rf " + " ".join(f'"$1"/{pattern}' for pattern in patterns)


def _hooks(inputs: Inputs, prune: tuple[str, ...] = ()) -> list[str]:
    q = shlex.quote
    setup = [
        'mkdir -p "$1"/var/cache/apt/archives/',
        f"sync-in {q(str(inputs.apt_cache))} /var/cache/apt/archives/",
    ]
    if inputs.preferences:
        setup.append('mkdir -p "$1"/etc/apt/preferences.d')
        setup.append(f"upload {q(str(inputs.preferences))} /etc/apt/preferences.d/vigil-lock")
    essential = []
    if inputs.initramfs_conf:
        # The image's initramfs settings (MODULES=list) before the kernel's postinst and the
        # triggers make initramfs: Debian's MODULES=most takes minutes each time, over ten under
        # qemu-user (an arm64 root), for an initramfs that the customize hook makes again.
        conf = f'"$1"/{INITRAMFS_CONF}'
        essential = [f"mkdir -p {conf} && cp -r {q(str(inputs.initramfs_conf))}/. {conf}/"]
    customize = [
        f"sync-out /var/cache/apt/archives {q(str(inputs.apt_cache))}",
        'rm -f "$1"/var/cache/apt/archives/*.deb "$1"/etc/apt/preferences.d/vigil-lock',
        'dpkg-query --admindir "$1"/var/lib/dpkg -W '
        "-f '${db:Status-Abbrev} ${Package}=${Version}\\n' > " + q(str(inputs.installed)),
    ]
    if inputs.staged_overlay:
        customize.append(f"sync-in {q(str(inputs.staged_overlay))} /")
        if prune:
            customize.append(_prune(prune))
        if inputs.kernel_release:
            customize.append(_chroot("depmod", "-a", inputs.kernel_release))
        customize.append(_chroot("update-initramfs", "-u", "-k", "all"))
    if inputs.staged_wheels:
        customize.append(f'mkdir -p "$1"{STAGED_WHEELS}')
        customize.append(f"sync-in {q(str(inputs.staged_wheels))} {STAGED_WHEELS}")
        commands = wheels.install_commands(STAGED_WHEELS, VENV, inputs.project_wheel)
        customize += [_chroot(*command) for command in commands]
        customize.append(f'rm -rf "$1"{STAGED_WHEELS}')
    if inputs.staged_overlay:
        customize.append(_chroot("systemctl", "enable", *UNITS))
    return [
        *(f"--setup-hook={hook}" for hook in setup),
        *(f"--essential-hook={hook}" for hook in essential),
        *(f"--customize-hook={hook}" for hook in customize),
    ]


def mmdebstrap_command(
    recipe: RootfsRecipe, target: Path, inputs: Inputs, kernel_package: str = ""
) -> list[str]:
    packages = [*recipe.packages, *([kernel_package] if kernel_package else [])]
    command = [
        "mmdebstrap",
        "--mode=root",
        "--format=directory",
        f"--variant={recipe.variant}",
        f"--architectures={recipe.architecture}",
        "--skip=download/empty",
        "--skip=essential/unlink",
        "--include=" + ",".join(packages),
    ]
    command += [f"--dpkgopt={option}" for option in DPKG_EXCLUDES]
    command += _hooks(inputs, recipe.prune)
    return [*command, recipe.suite, str(target), *recipe.mirrors]


def _run_mmdebstrap(command: list[str], epoch: int, logfile: Path) -> None:
    environ = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), LC_ALL="C.UTF-8")
    log.info("mmdebstrap, log in %s", logfile)
    with logfile.open("w", encoding="utf-8") as out:
        out.write(shlex.join(command) + "\n")
        out.flush()
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=environ)
    if done.returncode:
        tail = logfile.read_text(encoding="utf-8", errors="replace").splitlines()[-8:]
        raise ImageError(f"mmdebstrap failed ({logfile}):\n" + "\n".join(tail))


def _check_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise ImageError(f"missing host tools: {', '.join(missing)} (make setup installs them)")
    if os.geteuid() != 0:
        raise ImageError("building a root file system needs root (mmdebstrap --mode=root)")


def board_rig(recipe: Recipe) -> RigBoard | None:
    """The board's kernel.toml and rig.toml (None: no kernel.toml, the recipe names a kernel)."""
    if not (recipe.directory / "kernel.toml").is_file():
        return None
    try:
        return load_rig_board(recipe.directory)
    except SpecError as exc:
        raise ImageError(str(exc)) from None


def board_kernel(recipe: Recipe) -> KernelPin | None:
    rig = board_rig(recipe)
    return rig.kernel if rig else None


def board_modules(rig: RigBoard) -> overlay.BoardModules:
    """The boot modules, and gpio-sim.ko (built for the pinned kernel, or taken from the cache)
    with the set-up of rig.toml's chip at boot."""
    kernel, extra, files = rig.kernel, {}, {}
    if "gpio-sim" in kernel.modules:
        try:
            extra["gpio-sim"] = build_gpio_sim(kernel)
        except BuildError as exc:
            raise ImageError(f"gpio-sim.ko: {exc}") from None
        files = boot_files(rig.rig)
    return overlay.BoardModules(
        release=kernel.release,
        extra=extra,
        load=kernel.modules,
        options=dict(kernel.module_options),
        files=files,
    )


def check_kernel_pin(pins: dict[str, str], kernel: KernelPin) -> None:
    locked = pins.get(kernel.image_package)
    if locked != kernel.version:
        raise ImageError(
            f"kernel.toml pins {kernel.image_package} {kernel.version}, packages.lock has "
            f"{locked or 'none'}: run `vigil image lock`"
        )


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def build_rootfs(board: str, out: Path, cache: Path) -> Path:
    """Build `board`'s root from its locks into `<out>/rootfs.squashfs` and return that path.

    `out` is the board's build folder (build/<board>); `cache` the download cache
    ($VIGIL_CACHE). Raises ImageError with the reason on any failure, which leaves the previous
    squashfs as it was (and mmdebstrap's log in `out`).
    """
    started = time.monotonic()
    recipe = load_recipe(board)
    _check_tools("mmdebstrap", "mksquashfs")
    pins = lock.parse_packages(lock.read_lock(recipe.packages_lock), str(recipe.packages_lock))
    wheel_pins = lock.parse_wheels(lock.read_lock(recipe.wheels_lock), str(recipe.wheels_lock))
    rig = board_rig(recipe)
    if rig is not None:
        check_kernel_pin(pins, rig.kernel)
    work = _fresh(out / "rootfs-work")
    try:
        root, info = _make_root(recipe, pins, wheel_pins, rig, work, cache)
        image = out / "rootfs.squashfs"
        size = squashfs.make(
            root, image, info.epoch, recipe.rootfs.architecture, recipe.rootfs.squashfs_max_mb
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("%s: %.1f MB in %.0f s", image, size / squashfs.MB, time.monotonic() - started)
    return image


def _make_root(
    recipe: Recipe,
    pins: dict[str, str],
    wheel_pins: list[lock.WheelPin],
    rig: RigBoard | None,
    work: Path,
    cache: Path,
) -> tuple[Path, overlay.BuildInfo]:
    """The finished root directory in `work` (steps 1-4 of the module's docstring)."""
    kernel = rig.kernel if rig else None
    info = overlay.build_info()
    project_wheel = wheels.build_project_wheel(work / "project")
    wheel_cache = cache / "wheels" / recipe.wheels.machine
    locked = wheels.fetch(recipe.wheels, wheel_pins, recipe.wheels_lock, wheel_cache)
    preferences = work / "preferences"
    preferences.write_text(lock.apt_preferences(pins), encoding="utf-8")
    staged_overlay = overlay.stage(
        work / "overlay",
        recipe.directory,
        recipe.rootfs.suite,
        info,
        board_modules(rig) if rig else None,
        keyring=ensure_keys().ca_cert,
    )
    inputs = Inputs(
        apt_cache=_apt_cache(cache),
        installed=work / "installed",
        preferences=preferences,
        staged_overlay=staged_overlay,
        initramfs_conf=_conf_dir(staged_overlay / INITRAMFS_CONF),
        staged_wheels=wheels.stage(project_wheel, locked, recipe.wheels_lock, work / "wheels"),
        project_wheel=project_wheel.name,
        kernel_release=kernel.release if kernel else "",
    )
    root = work / "root"
    package = kernel.image_package if kernel else ""
    command = mmdebstrap_command(recipe.rootfs, root, inputs, package)
    _run_mmdebstrap(command, info.epoch, work.parent / "mmdebstrap.log")
    installed = lock.installed_packages(inputs.installed.read_text(encoding="utf-8"))
    problems = lock.compare(pins, installed)
    if problems:
        raise ImageError("the root differs from packages.lock: " + "; ".join(problems[:10]))
    overlay.finish(root)
    return root, info


def _conf_dir(path: Path) -> Path | None:
    return path if path.is_dir() else None


def _apt_cache(cache: Path) -> Path:
    apt = cache / "apt"
    apt.mkdir(parents=True, exist_ok=True)
    return apt


def lock_rootfs(board: str, out: Path, cache: Path) -> Recipe:
    """Resolve the newest packages and wheels for `board` and write its two lock files (only
    once both are resolved: a failure leaves the old locks)."""
    recipe = load_recipe(board)
    _check_tools("mmdebstrap")
    kernel = board_kernel(recipe)
    work = _fresh(out / "lock-work")
    try:
        project_wheel = wheels.build_project_wheel(work / "project")
        wheel_pins = wheels.resolve(recipe.wheels, project_wheel)
        inputs = Inputs(
            apt_cache=_apt_cache(cache),
            installed=work / "installed",
            initramfs_conf=_conf_dir(OVERLAY / INITRAMFS_CONF),
        )
        package = f"{kernel.image_package}={kernel.version}" if kernel else ""
        command = mmdebstrap_command(recipe.rootfs, work / "root", inputs, package)
        _run_mmdebstrap(command, overlay.build_info().epoch, out / "mmdebstrap-lock.log")
        installed = lock.installed_packages(inputs.installed.read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    header = (
        f"The Debian packages of board {board}'s root (Debian {recipe.rootfs.suite}, "
        f"{recipe.rootfs.architecture}),\nas `vigil image lock` resolved them on {day}. "
        "Builds install exactly these."
    )
    recipe.packages_lock.write_text(lock.format_packages(installed, header), encoding="utf-8")
    header = (
        f"The Python wheels of board {board}'s venv ({', '.join(recipe.wheels.platforms)}, "
        f"cp{recipe.wheels.python}),\nas `vigil image lock` resolved them on {day}; "
        "pip installs them with --require-hashes."
    )
    recipe.wheels_lock.write_text(lock.format_wheels(wheel_pins, header), encoding="utf-8")
    return recipe
