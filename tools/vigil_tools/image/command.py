"""`vigil image rootfs|lock|build --board B`: the root squashfs of a board, its lock files, and
the whole image (root, then disk: `build.build_image`).

Outputs go to `build/<board>/` (`--out`), downloads to `$VIGIL_CACHE` (default ~/.cache/vigil,
`--cache`). A failure ends with one line saying why (and mmdebstrap's log for its own).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from vigil_tools.image.build import build_image
from vigil_tools.image.recipe import REPO, ImageError
from vigil_tools.image.rootfs import build_rootfs, lock_rootfs


def default_cache() -> Path:
    return Path(os.environ.get("VIGIL_CACHE") or Path.home() / ".cache" / "vigil")


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    image = commands.add_parser("image", help="build board images")
    steps = image.add_subparsers(dest="image_command", required=True, metavar="STEP")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--board", required=True, help="a folder of board/ (qemu-x86_64)")
    common.add_argument("--out", type=Path, help="build folder (default build/<board>)")
    common.add_argument(
        "--cache", type=Path, help="download cache (default $VIGIL_CACHE or ~/.cache/vigil)"
    )
    steps.add_parser(
        "rootfs", parents=[common], help="the root file system as <out>/rootfs.squashfs"
    )
    steps.add_parser(
        "lock", parents=[common], help="resolve the newest packages and wheels into the locks"
    )
    steps.add_parser(
        "build", parents=[common], help="the root, then the disk image as <out>/disk.img"
    )


def run(args: argparse.Namespace) -> int:
    logging.getLogger("vigil_tools.image").setLevel(logging.INFO)
    out = args.out or REPO / "build" / args.board
    cache = args.cache or default_cache()
    started = time.monotonic()
    try:
        if args.image_command == "lock":
            recipe = lock_rootfs(args.board, out, cache)
            print(f"wrote {recipe.packages_lock} and {recipe.wheels_lock}")
        elif args.image_command == "build":
            disk = build_image(args.board, out, cache)
            size = disk.stat().st_size / 1e6
            print(f"{disk}: {size:.1f} MB in {time.monotonic() - started:.0f} s")
        else:
            image = build_rootfs(args.board, out, cache)
            size = image.stat().st_size / 1e6
            print(f"{image}: {size:.1f} MB in {time.monotonic() - started:.0f} s")
    except ImageError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 1
    return 0
