"""Small real RAUC bundles for tests: a squashfs root made with mksquashfs, signed by `make_bundle`.

A root for the simulated board holds what the sim's boot looks at: `/etc/os-release` and vigild
where the unit runs it (`VIGILD`; `startable=False` leaves it out: a root whose vigild cannot
start), plus some random bytes so the payload spans several verity blocks.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from vigil.system.upgrade_sim import VIGILD
from vigil_tools.image.bundle import make_bundle
from vigil_tools.image.keys import SigningKeys

PAYLOAD_BYTES = 1024 * 1024


def make_root(directory: Path, version: str, *, startable: bool = True) -> Path:
    """A squashfs root at `directory/<version>.squashfs`."""
    tree = directory / f"{version}-tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text(f'ID=vigil\nVERSION_ID="{version}"\n')
    (tree / "usr" / "share").mkdir(parents=True)
    (tree / "usr" / "share" / "payload.bin").write_bytes(os.urandom(PAYLOAD_BYTES))
    if startable:
        vigild = tree / VIGILD
        vigild.parent.mkdir(parents=True)
        vigild.write_text("#!/opt/vigil/bin/python\nfrom vigil.daemon import main\nmain()\n")
        vigild.chmod(0o755)
    image = directory / f"{version}.squashfs"
    subprocess.run(
        ["mksquashfs", str(tree), str(image), "-noappend", "-quiet", "-all-root"], check=True
    )
    return image


def bundle(
    directory: Path,
    keys: SigningKeys,
    version: str,
    board: str = "sim",
    startable: bool = True,
    bundle_format: str = "verity",
) -> Path:
    """A bundle of a fresh root for `board`, signed with `keys`."""
    root = make_root(directory, version, startable=startable)
    out = directory / f"{version}-{board}.raucb"
    return make_bundle(board, root, version, out, keys, bundle_format)


def flip_byte(source: Path, target: Path, offset: int) -> Path:
    data = bytearray(source.read_bytes())
    data[offset] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def truncate(source: Path, target: Path, size: int) -> Path:
    target.write_bytes(source.read_bytes()[:size])
    return target
