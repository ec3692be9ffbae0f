"""A board's image recipe: `board/<name>/image.toml` (suite, mirrors, packages, wheel platform,
boot partition files).

Kept apart from board.toml, which is the daemon's hardware map and is loaded strictly by the
daemon: the recipe is only the host build's business. It is loaded strictly too: an unknown key
or a wrong type is an `ImageError` naming the file and the key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BOARDS = REPO / "board"
OVERLAY = REPO / "rootfs-overlay"
# Debian policy: package names are lower case alphanumerics and + - . (at least two chars).
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")


class ImageError(Exception):
    """The image cannot be built as asked; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class RootfsRecipe:
    suite: str
    architecture: str
    variant: str
    mirrors: tuple[str, ...]
    packages: tuple[str, ...]
    squashfs_max_mb: int
    prune: tuple[str, ...] = ()  # paths (shell globs) relative to / removed from the root


@dataclass(frozen=True)
class WheelsRecipe:
    platforms: tuple[str, ...]
    python: str
    extra: tuple[str, ...] = ()  # requirements of this board only (its drivers' libraries)

    @property
    def machine(self) -> str:
        """The wheel cache's folder: `x86_64` of `manylinux_2_36_x86_64`."""
        match = re.fullmatch(r"[a-z]+\d*(?:_\d+)*_([a-z0-9_]+)", self.platforms[0])
        return match.group(1) if match else self.platforms[0]


@dataclass(frozen=True)
class BootRecipe:
    """What a board's boot partition takes besides its bootloader's own files (rpi4: the Pi
    firmware, U-Boot, the device tree, config.txt): files of the root (paths relative to /, `*`
    allowed, each to match one file) and of the board's folder, put in genimage's input path
    under their base names."""

    root_files: tuple[str, ...] = ()
    board_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    board: str
    directory: Path
    rootfs: RootfsRecipe
    wheels: WheelsRecipe
    boot: BootRecipe = BootRecipe()

    @property
    def packages_lock(self) -> Path:
        return self.directory / "packages.lock"

    @property
    def wheels_lock(self) -> Path:
        return self.directory / "wheels.lock"


_ROOTFS_KEYS = {
    "suite": str,
    "architecture": str,
    "variant": str,
    "mirrors": list,
    "packages": list,
    "squashfs_max_mb": int,
    "prune": list,
}
_WHEELS_KEYS = {"platforms": list, "python": str, "extra": list}
_BOOT_KEYS = {"root_files": list, "board_files": list}
OPTIONAL = {"prune", "extra", "root_files", "board_files"}
# A name with optional extras and version clauses (no markers, URLs or spaces).
REQUIREMENT = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[a-z0-9,_-]+\])?([<>=!~]=?[A-Za-z0-9.*+!-]+,?)*"
)
# What `prune` may name: a relative path of plain names and * globs, never .. nor absolute.
PRUNE_PATTERN = re.compile(r"(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9_.*+-]+(/[A-Za-z0-9_.*+-]+)*")
VARIANTS = ("minbase", "apt", "required", "important", "standard")


def board_directory(board: str, boards: Path = BOARDS) -> Path:
    """`board/<board>/` of the repository; ImageError for a bad or unknown name."""
    if not re.fullmatch(r"[a-z0-9_-]{1,32}", board):
        raise ImageError(f"{board!r} is not a board name")
    directory = boards / board
    if not (directory / "board.toml").is_file():
        known = sorted(p.name for p in boards.iterdir() if (p / "board.toml").is_file())
        raise ImageError(f"no board {board!r} (boards: {', '.join(known)})")
    return directory


def _section(path: Path, raw: dict, name: str, keys: dict[str, type]) -> dict:
    section = raw.get(name)
    if not isinstance(section, dict):
        raise ImageError(f"{path}: missing section [{name}]")
    for key, value in section.items():
        if key not in keys:
            raise ImageError(f"{path}: [{name}] has no key {key!r}")
        if not isinstance(value, keys[key]) or isinstance(value, bool):
            raise ImageError(f"{path}: [{name}] {key} must be a {keys[key].__name__}")
        if isinstance(value, list) and not all(isinstance(v, str) and v for v in value):
            raise ImageError(f"{path}: [{name}] {key} must be a list of strings")
    missing = sorted(set(keys) - set(section) - OPTIONAL)
    if missing:
        raise ImageError(f"{path}: [{name}] needs {missing[0]}")
    return section


def load_recipe(board: str, boards: Path = BOARDS) -> Recipe:
    directory = board_directory(board, boards)
    path = directory / "image.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImageError(f"board {board!r} has no image recipe ({path})") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ImageError(f"{path}: {exc}") from None
    unknown = sorted(set(raw) - {"rootfs", "wheels", "boot"})
    if unknown:
        raise ImageError(f"{path}: unknown section [{unknown[0]}]")
    rootfs = _section(path, raw, "rootfs", _ROOTFS_KEYS)
    wheels = _section(path, raw, "wheels", _WHEELS_KEYS)
    if rootfs["variant"] not in VARIANTS:
        raise ImageError(f"{path}: [rootfs] variant must be one of {', '.join(VARIANTS)}")
    bad = [p for p in rootfs["packages"] if not PACKAGE_NAME.fullmatch(p)]
    if bad:
        raise ImageError(f"{path}: [rootfs] packages: {bad[0]!r} is not a Debian package name")
    bad = [p for p in rootfs.get("prune", []) if not PRUNE_PATTERN.fullmatch(p)]
    if bad:
        raise ImageError(f"{path}: [rootfs] prune: {bad[0]!r} is not a path relative to /")
    if not 16 <= rootfs["squashfs_max_mb"] <= 4096:
        raise ImageError(f"{path}: [rootfs] squashfs_max_mb must be 16..4096")
    bad = [r for r in wheels.get("extra", []) if not REQUIREMENT.fullmatch(r)]
    if bad:
        raise ImageError(f"{path}: [wheels] extra: {bad[0]!r} is not a requirement (name>=1.0)")
    if not re.fullmatch(r"3\d{1,2}", wheels["python"]):
        raise ImageError(f"{path}: [wheels] python is like 311 (CPython 3.11)")
    boot = _boot(path, raw) if "boot" in raw else BootRecipe()
    return Recipe(
        board=board,
        directory=directory,
        rootfs=RootfsRecipe(
            suite=rootfs["suite"],
            architecture=rootfs["architecture"],
            variant=rootfs["variant"],
            mirrors=tuple(rootfs["mirrors"]),
            packages=tuple(rootfs["packages"]),
            squashfs_max_mb=rootfs["squashfs_max_mb"],
            prune=tuple(rootfs.get("prune", [])),
        ),
        wheels=WheelsRecipe(
            platforms=tuple(wheels["platforms"]),
            python=wheels["python"],
            extra=tuple(wheels.get("extra", [])),
        ),
        boot=boot,
    )


def _boot(path: Path, raw: dict) -> BootRecipe:
    boot = _section(path, raw, "boot", _BOOT_KEYS)
    root_files, board_files = boot.get("root_files", []), boot.get("board_files", [])
    bad = [f for f in root_files if not PRUNE_PATTERN.fullmatch(f)]
    if bad:
        raise ImageError(f"{path}: [boot] root_files: {bad[0]!r} is not a path relative to /")
    bad = [f for f in board_files if "/" in f or not (path.parent / f).is_file()]
    if bad:
        raise ImageError(f"{path}: [boot] board_files: no file {bad[0]!r} in {path.parent}")
    names = [f.rsplit("/", 1)[-1] for f in (*root_files, *board_files)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ImageError(f"{path}: [boot] two files are named {twice[0]!r}")
    return BootRecipe(root_files=tuple(root_files), board_files=tuple(board_files))
