"""A verity bundle's whole payload checked against its signed root hash before RAUC writes any
of it to the spare slot.

RAUC's `info` checks the signature over the manifest, which carries the payload's dm-verity root
hash, salt and hash tree size; `install` then reads the payload through dm-verity, so a block
altered after signing is found only when the copy reaches it, with the spare slot half written
and marked bad. `veritysetup verify` (cryptsetup) reads the whole payload against the same hash
tree first, so a damaged or altered bundle is refused with nothing written.

A verity bundle is the squashfs payload (whole 4 KiB blocks), its hash tree (`Verity Size`
bytes), the CMS signature, and the signature's size as a big-endian 64-bit integer.
"""

from __future__ import annotations

import asyncio
import re
import struct
from dataclasses import dataclass
from pathlib import Path

BLOCK = 4096  # RAUC's data and hash block size
VERIFY_TIMEOUT_S = 20 * 60
_FORMAT = re.compile(r"^\s*Bundle Format:\s*(\S+)", re.M)
_FIELD = re.compile(r"^\s*Verity (Salt|Hash|Size):\s*'?([0-9a-fA-F]+)'?\s*$", re.M)


class PayloadError(ValueError):
    """The payload does not match its signed hash, or the bundle's layout is not RAUC's."""


@dataclass(frozen=True)
class Verity:
    salt: str
    root_hash: str
    tree_size: int


def verity_of(info_text: str) -> Verity | None:
    """The verity parameters in `rauc info`'s readable output (its JSON and shell outputs do
    not carry them); None for a plain bundle, whose signature covers the whole file."""
    found = _FORMAT.search(info_text)
    if found is None or found.group(1) != "verity":
        return None
    fields = dict(_FIELD.findall(info_text))
    try:
        return Verity(fields["Salt"], fields["Hash"], int(fields["Size"]))
    except (KeyError, ValueError):
        raise PayloadError("rauc info gave no verity salt, hash and size") from None


def payload_size(bundle: Path, tree_size: int) -> int:
    """Bytes of the payload: what precedes the hash tree, the signature and its size."""
    total = bundle.stat().st_size
    with bundle.open("rb") as file:
        file.seek(total - 8)
        (signature,) = struct.unpack(">Q", file.read(8))
    size = total - 8 - signature - tree_size
    if size <= 0 or size % BLOCK:
        raise PayloadError("the bundle's layout is damaged")
    return size


async def verify_payload(bundle: Path, verity: Verity) -> None:
    """`veritysetup verify` of the payload against the signed root hash; PayloadError if not."""
    size = payload_size(bundle, verity.tree_size)
    proc = await asyncio.create_subprocess_exec(
        "veritysetup", "verify", "--no-superblock", "--format=1", "--hash=sha256",
        f"--data-block-size={BLOCK}", f"--hash-block-size={BLOCK}",
        f"--data-blocks={size // BLOCK}", f"--hash-offset={size}", f"--salt={verity.salt}",
        str(bundle), str(bundle), verity.root_hash,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), VERIFY_TIMEOUT_S)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        where = output.decode(errors="replace").strip().splitlines()[:1]
        raise PayloadError(
            "the payload does not match its signed hash: the bundle was altered or damaged"
            + (f" ({where[0]})" if where else "")
        )
