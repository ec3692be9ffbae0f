"""RAUC update bundles: a board's root squashfs, its manifest, signed with the development key.

`make_bundle` writes `manifest.raucm` (`compatible=vigil-<board>`, the version, the `verity`
format, whose hash tree lets the device check every byte of the payload, and one image for slot
class `rootfs`) beside the image and runs `rauc bundle --cert --key --signing-keyring`, which
also checks that the signature chains to the CA the images trust. The bundle is written under a
temporary name and renamed, so an interrupted run never leaves a half bundle at `out`.

`vigil bundle --board B [--rootfs PATH] [--version V] [--out PATH]` (`make bundle BOARD=B`) signs
`build/<board>/rootfs.squashfs` (what `vigil image rootfs` makes) into
`build/<board>/vigil-<board>-<version>.raucb` by default.

The default version is the root's own (`VERSION_ID` of its `/etc/os-release`, read with
`unsquashfs -cat`), so the device reports what the bundle says; else Vigil's package version.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vigil import __version__
from vigil_tools.image.keys import KEYS_DIR, KeysError, SigningKeys, ensure_keys

REPO = Path(__file__).resolve().parents[3]

SQUASHFS_MAGIC = b"hsqs"
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}")
BOARD = re.compile(r"[a-z0-9_-]{1,32}")


class BundleError(Exception):
    """The bundle cannot be made; the message says why."""


def manifest(board: str, version: str, bundle_format: str = "verity") -> str:
    """The manifest; `plain` bundles need no device mapper to install (hosts, test rigs)."""
    if bundle_format not in ("verity", "plain"):
        raise BundleError(f"{bundle_format!r} is not a bundle format (verity, plain)")
    if not BOARD.fullmatch(board):
        raise BundleError(f"{board!r} is not a board name")
    if not VERSION.fullmatch(version):
        raise BundleError(f"{version!r} is not a version (letters, digits, . _ + ~ -)")
    return (
        "[update]\n"
        f"compatible=vigil-{board}\n"
        f"version={version}\n"
        f"description=Vigil for {board}\n"
        "\n[bundle]\n"
        f"format={bundle_format}\n"
        "\n[image.rootfs]\n"
        "filename=rootfs.img\n"
    )


def root_version(rootfs: Path) -> str | None:
    """VERSION_ID from the squashfs's /etc/os-release, if it has one."""
    result = subprocess.run(
        ["unsquashfs", "-cat", str(rootfs), "etc/os-release"], capture_output=True, check=False
    )
    if result.returncode != 0:
        return None
    for line in result.stdout.decode(errors="replace").splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "VERSION_ID" and value.strip().strip("\"'"):
            return value.strip().strip("\"'")
    return None


def make_bundle(
    board: str,
    rootfs_squashfs: Path,
    version: str | None,
    out: Path,
    keys: SigningKeys | None = None,
    bundle_format: str = "verity",
) -> Path:
    """Sign `rootfs_squashfs` into the bundle `out` for `board`; `out`."""
    _check_squashfs(rootfs_squashfs)
    version = version or root_version(rootfs_squashfs) or __version__
    text = manifest(board, version, bundle_format)
    keys = keys or ensure_keys(KEYS_DIR)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".bundle-") as work:
        content = Path(work) / "content"
        content.mkdir()
        (content / "manifest.raucm").write_text(text, encoding="utf-8")
        _place(rootfs_squashfs, content / "rootfs.img")
        partial = Path(work) / "bundle.raucb"
        result = subprocess.run(
            ["rauc", "bundle", f"--cert={keys.cert}", f"--key={keys.key}",
             f"--signing-keyring={keys.ca_cert}", str(content), str(partial)],
            capture_output=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace").strip()
            raise BundleError(f"rauc bundle failed: {output.splitlines()[-1] if output else ''}")
        os.replace(partial, out)
    return out


def _check_squashfs(path: Path) -> None:
    try:
        with path.open("rb") as file:
            magic = file.read(4)
    except OSError as exc:
        raise BundleError(f"{path}: {exc.strerror}") from None
    if magic != SQUASHFS_MAGIC:
        raise BundleError(f"{path} is not a squashfs image")


def _place(source: Path, target: Path) -> None:
    """The image in the bundle's content folder: a hard link when it can be, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("bundle", help="sign a board's root into a RAUC update bundle")
    parser.add_argument("--board", required=True, help="a folder of board/ (qemu-x86_64)")
    parser.add_argument("--rootfs", type=Path, help="default build/<board>/rootfs.squashfs")
    parser.add_argument("--version", help="default the root's VERSION_ID (/etc/os-release)")
    parser.add_argument("--out", type=Path, help="default build/<board>/vigil-<board>-<v>.raucb")
    parser.add_argument("--keys", type=Path, default=KEYS_DIR, help="default build/keys")


def run(args: argparse.Namespace) -> int:
    build = REPO / "build" / args.board
    rootfs = args.rootfs or build / "rootfs.squashfs"
    started = time.monotonic()
    try:
        version = args.version or root_version(rootfs) or __version__
        out = args.out or build / f"vigil-{args.board}-{version}.raucb"
        made = make_bundle(args.board, rootfs, version, out, ensure_keys(args.keys))
    except (BundleError, KeysError) as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 1
    size = made.stat().st_size / 1e6
    print(
        f"{made}: vigil-{args.board} {version}, {size:.1f} MB in {time.monotonic() - started:.1f} s"
    )
    return 0
