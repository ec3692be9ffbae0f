"""The lock files that pin an image's inputs: `packages.lock` (Debian) and `wheels.lock` (PyPI).

`packages.lock` holds every package of the root as `name=version`, one a line, sorted, as
`vigil image lock` found them installed after an unpinned build. A pinned build gives apt a
preferences file that pins each of them at priority 1001 (so apt takes exactly that version, even
an older one) and then compares what dpkg installed with the lock: a package missing, extra or at
another version fails the build. A pinned version that has left the archive (Debian's point
releases replace versions) makes apt fail; `vigil image lock` then records the new ones.

`wheels.lock` is a pip requirements file in hash-checking mode, `name==version --hash=sha256:...`,
one per line, for the board's platform: the dependencies of the Vigil wheel (not the wheel
itself, which is built from this tree). One lock per board, next to packages.lock, since a
board's machine (x86_64, aarch64) decides which wheel file, and so which hash, is installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vigil_tools.image.recipe import PACKAGE_NAME, ImageError

# Debian policy 5.6.12: [epoch:]upstream[-revision].
DEBIAN_VERSION = re.compile(r"(\d+:)?[0-9][A-Za-z0-9.+~:-]*")
WHEEL_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
WHEEL_VERSION = re.compile(r"[A-Za-z0-9.+!_-]+")
SHA256 = re.compile(r"[0-9a-f]{64}")
LOCK_PRIORITY = 1001


def _content_lines(text: str) -> Iterable[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


def parse_packages(text: str, source: str = "packages.lock") -> dict[str, str]:
    """`name=version` lines (and # comments) -> {name: version}; ImageError on a bad line."""
    pins: dict[str, str] = {}
    for number, line in _content_lines(text):
        name, sep, version = line.partition("=")
        if not sep or not PACKAGE_NAME.fullmatch(name) or not DEBIAN_VERSION.fullmatch(version):
            raise ImageError(f"{source}:{number}: {line!r} is not package=version")
        if name in pins:
            raise ImageError(f"{source}:{number}: {name} is pinned twice")
        pins[name] = version
    return pins


def installed_packages(text: str) -> dict[str, str]:
    """`dpkg-query -f '${db:Status-Abbrev} ${Package}=${Version}\\n'` -> the installed ones.

    Packages dpkg only remembers (removed, configuration files left) are not installed."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    kept = "\n".join(fields[1] for fields in lines if len(fields) == 2 and fields[0] == "ii")
    return parse_packages(kept, "dpkg-query")


def format_packages(pins: Mapping[str, str], header: str) -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{name}={pins[name]}" for name in sorted(pins)]
    return "\n".join(lines) + "\n"


def apt_preferences(pins: Mapping[str, str]) -> str:
    """An apt_preferences(5) file that makes apt install exactly the pinned versions."""
    return "\n".join(
        f"Package: {name}\nPin: version {pins[name]}\nPin-Priority: {LOCK_PRIORITY}\n"
        for name in sorted(pins)
    )


def compare(pins: Mapping[str, str], installed: Mapping[str, str]) -> list[str]:
    """What differs between the lock and the installed packages, one line each ([] if none)."""
    problems = [f"{n}: locked, not installed" for n in sorted(set(pins) - set(installed))]
    problems += [f"{n}: installed, not locked" for n in sorted(set(installed) - set(pins))]
    problems += [
        f"{n}: {installed[n]} installed, {pins[n]} locked"
        for n in sorted(set(pins) & set(installed))
        if pins[n] != installed[n]
    ]
    return problems


@dataclass(frozen=True)
class WheelPin:
    name: str  # normalized (PEP 503): lower case, runs of -_. as one -
    version: str
    sha256: str

    def requirement(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_wheels(text: str, source: str = "wheels.lock") -> list[WheelPin]:
    pins: dict[str, WheelPin] = {}
    pattern = re.compile(r"(\S+)==(\S+)\s+--hash=sha256:(\S+)")
    for number, line in _content_lines(text):
        match = pattern.fullmatch(line)
        if not match:
            raise ImageError(f"{source}:{number}: {line!r} is not name==version --hash=sha256:...")
        name, version, digest = match.groups()
        if not WHEEL_NAME.fullmatch(name) or not WHEEL_VERSION.fullmatch(version):
            raise ImageError(f"{source}:{number}: {name}=={version} is not a normalized pin")
        if not SHA256.fullmatch(digest):
            raise ImageError(f"{source}:{number}: {digest!r} is not a sha256 digest")
        if name in pins:
            raise ImageError(f"{source}:{number}: {name} is pinned twice")
        pins[name] = WheelPin(name, version, digest)
    return [pins[name] for name in sorted(pins)]


def format_wheels(pins: Iterable[WheelPin], header: str) -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [pin.requirement() for pin in sorted(pins, key=lambda p: p.name)]
    return "\n".join(lines) + "\n"


def read_lock(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImageError(f"{path} is missing: run `vigil image lock --board <board>`") from None
