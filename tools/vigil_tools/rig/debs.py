"""Debian packages for the rig, fetched with `apt-get download` into `$VIGIL_CACHE/kernel/` and
unpacked with `dpkg-deb -x` into cache folders: nothing is installed on the host.

A package is named `name=version` (pinned) or `name` (apt's candidate, for tools such as
busybox-static whose exact version does not matter). Downloads land in a temporary folder first
and unpacked trees are renamed into place when complete (`publish`; a concurrent run that got
there first wins), so an interrupted run leaves nothing that a later run would take for finished.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

DOWNLOAD_TIMEOUT = 900


class DebError(Exception):
    """A package could not be fetched or unpacked."""


def scratch(final: Path) -> Path:
    """A name beside `final` for building it, private to this process."""
    return final.with_name(f".{final.name}.{os.getpid()}.partial")


def publish(partial: Path, final: Path) -> Path:
    """`partial` renamed to `final`; if another process got there first, theirs is kept (the same
    inputs give the same result) and `partial` is removed."""
    try:
        partial.rename(final)
    except OSError:
        if not final.exists():
            raise
        if partial.is_dir():
            shutil.rmtree(partial)
        else:
            partial.unlink()
    return final


def cache_root() -> Path:
    """`$VIGIL_CACHE`, else ~/.cache/vigil (the Makefile exports VIGIL_CACHE)."""
    return Path(os.environ.get("VIGIL_CACHE") or Path.home() / ".cache" / "vigil")


def kernel_cache() -> Path:
    path = cache_root() / "kernel"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cached(spec: str, folder: Path) -> Path | None:
    name, _, version = spec.partition("=")
    quoted = version.replace(":", "%3a")
    matches = sorted(folder.glob(f"{name}_{quoted or '*'}_*.deb"))
    return matches[-1] if matches else None


def fetch(specs: Sequence[str]) -> list[Path]:
    """The .deb files of `specs`, downloaded once into the kernel cache."""
    folder = kernel_cache()
    missing = [spec for spec in specs if _cached(spec, folder) is None]
    if missing:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
            result = subprocess.run(
                ["apt-get", "download", "-q", *missing],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=DOWNLOAD_TIMEOUT,
            )
            if result.returncode != 0:
                detail = result.stderr.strip().splitlines()
                raise DebError(f"apt-get download {' '.join(missing)}: {detail[-1:]}")
            for deb in Path(tmp).glob("*.deb"):
                publish(deb, folder / deb.name)
    found = [_cached(spec, folder) for spec in specs]
    if None in found:
        lost = [spec for spec, path in zip(specs, found, strict=True) if path is None]
        raise DebError(f"apt-get download did not produce {', '.join(lost)}")
    return [path for path in found if path is not None]


def unpack(debs: Sequence[Path], label: str) -> Path:
    """One tree with every package of `debs` unpacked into it, kept in the cache by their names."""
    digest = hashlib.sha256("\n".join(sorted(d.name for d in debs)).encode()).hexdigest()[:16]
    tree = kernel_cache() / f"{label}-{digest}"
    if tree.is_dir():
        return tree
    partial = Path(tempfile.mkdtemp(dir=kernel_cache(), prefix=f".{label}-"))
    try:
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True, timeout=600)
        publish(partial, tree)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise DebError(f"cannot unpack {', '.join(d.name for d in debs)}: {exc}") from None
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return tree
