"""Vigil and its Python dependencies as wheels for the board, installed offline in the image.

The Vigil wheel is built from this tree on the host (`pip wheel . --no-deps`). Its dependencies
are resolved for the board's platform (manylinux, CPython of the board's Debian) without
installing anything (`pip install --dry-run --report`), recorded in `wheels.lock`, then fetched
by hash into `$VIGIL_CACHE/wheels/<machine>/` (pip skips files already there) and installed in
the root by the root's own pip with `--no-index --require-hashes`: binary wheels only, so
nothing is compiled for the board.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from vigil_tools.image.lock import WheelPin, normalize
from vigil_tools.image.recipe import REPO, ImageError, WheelsRecipe


def _pip(*args: str, what: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        detail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-5:]
        raise ImageError(f"{what} failed: " + " / ".join(detail))


def platforms(recipe: WheelsRecipe) -> list[str]:
    """The recipe's platforms with every older glibc of a `manylinux_2_N` one (pip takes
    --platform literally: manylinux_2_36 alone would refuse a manylinux_2_28 wheel)."""
    found = []
    for platform in recipe.platforms:
        match = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform)
        if match:
            newest, machine = int(match.group(1)), match.group(2)
            found += [f"manylinux_2_{n}_{machine}" for n in range(newest, 4, -1)]
            found += [f"manylinux2014_{machine}", f"manylinux2010_{machine}"]
            found += [f"manylinux1_{machine}"]
        else:
            found.append(platform)
    return list(dict.fromkeys(found))


def target_options(recipe: WheelsRecipe) -> list[str]:
    """pip's options that pick wheels for the board instead of the host."""
    options = ["--only-binary=:all:", "--implementation", "cp"]
    options += ["--python-version", recipe.python]
    options += ["--abi", f"cp{recipe.python}", "--abi", "abi3", "--abi", "none"]
    for platform in platforms(recipe):
        options += ["--platform", platform]
    return options


def build_project_wheel(out: Path, source: Path = REPO) -> Path:
    """The Vigil wheel built from `source` into `out` (emptied first)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _pip("wheel", "--no-deps", "-q", "-w", str(out), str(source),
         what="building the Vigil wheel")  # fmt: skip
    wheels = list(out.glob("vigil-*.whl"))
    if len(wheels) != 1:
        raise ImageError(f"building the Vigil wheel left {len(wheels)} wheels in {out}")
    return wheels[0]


def pins_from_report(report: dict) -> list[WheelPin]:
    """The pins of a `pip install --report` (format 1), Vigil itself left out."""
    pins = []
    for item in report.get("install", []):
        name = normalize(item["metadata"]["name"])
        if name == "vigil":
            continue
        archive = item["download_info"].get("archive_info", {})
        digest = archive.get("hashes", {}).get("sha256")
        if digest is None and archive.get("hash", "").startswith("sha256="):
            digest = archive["hash"].removeprefix("sha256=")
        if not digest:
            raise ImageError(f"pip reported no sha256 for {name}")
        pins.append(WheelPin(name, item["metadata"]["version"], digest))
    return sorted(pins, key=lambda p: p.name)


def resolve(recipe: WheelsRecipe, project_wheel: Path) -> list[WheelPin]:
    """The newest versions of Vigil's dependencies and the board's extra requirements, as pip
    resolves them for the board (needs PyPI)."""
    with tempfile.TemporaryDirectory(prefix="vigil-resolve-") as scratch:
        report = Path(scratch, "report.json")
        _pip("install", "--dry-run", "--ignore-installed", "-q", "--report", str(report),
             "--target", str(Path(scratch, "target")), *target_options(recipe),
             str(project_wheel), *recipe.extra, what="resolving the wheels")  # fmt: skip
        return pins_from_report(json.loads(report.read_text(encoding="utf-8")))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def find_locked(pins: list[WheelPin], directory: Path) -> dict[WheelPin, Path]:
    """The file of each pin in `directory` whose sha256 matches; ImageError naming one missing."""
    by_digest = {}
    for path in sorted(directory.glob("*.whl")):
        prefix = normalize(path.name.split("-", 1)[0])
        if any(normalize(pin.name) == prefix for pin in pins):
            by_digest[sha256_of(path)] = path
    found = {}
    for pin in pins:
        if pin.sha256 not in by_digest:
            raise ImageError(f"no wheel of {pin.name}=={pin.version} with the locked hash")
        found[pin] = by_digest[pin.sha256]
    return found


def fetch(recipe: WheelsRecipe, pins: list[WheelPin], lock: Path, cache: Path) -> dict:
    """Every locked wheel, from the cache or PyPI (by hash); {pin: file in the cache}."""
    cache.mkdir(parents=True, exist_ok=True)
    try:
        return find_locked(pins, cache)
    except ImageError:
        pass
    _pip("download", "--no-deps", "--require-hashes", "-q", "-r", str(lock), "-d", str(cache),
         *target_options(recipe), what="downloading the locked wheels")  # fmt: skip
    return find_locked(pins, cache)


def stage(project_wheel: Path, locked: dict, lock: Path, out: Path) -> Path:
    """`out` with the wheels to install and `wheels.lock`: what the root's pip is given."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for path in [project_wheel, *locked.values()]:
        shutil.copy2(path, out / path.name)
    shutil.copy2(lock, out / "wheels.lock")
    return out


def install_commands(staged: str, venv: str, project_wheel: str) -> list[list[str]]:
    """The commands run in the root (`staged` is where the staged folder is, seen from it)."""
    pip = [f"{venv}/bin/pip", "--disable-pip-version-check", "--no-cache-dir"]
    offline = ["--no-index", "--find-links", staged]
    return [
        ["python3", "-m", "venv", venv],
        [*pip, "install", "-q", *offline, "--require-hashes", "-r", f"{staged}/wheels.lock"],
        [*pip, "install", "-q", *offline, "--no-deps", f"{staged}/{project_wheel}"],
        # The device installs nothing: pip would only take room. (setuptools stays: a locked
        # dependency may want it at run time.)
        [*pip, "uninstall", "-q", "-y", "pip"],
        # Byte code that Python loads without looking at its source: the root is read-only and
        # only ever replaced whole, and pip's checked-hash files (under SOURCE_DATE_EPOCH)
        # would make each start read and hash every module's source again.
        [f"{venv}/bin/python3", "-m", "compileall", "-q", "-j", "0",
         "--invalidation-mode", "unchecked-hash", f"{venv}/lib"],
    ]  # fmt: skip
