"""A verity bundle's payload checked by veritysetup against the root hash `rauc info` read from
the signed manifest: real bundles made by the project's bundle tool, real rauc and veritysetup."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from tests.bundles import bundle, flip_byte, truncate
from vigil.system.verity import PayloadError, Verity, payload_size, verify_payload, verity_of
from vigil_tools.image.keys import SigningKeys, ensure_keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> SigningKeys:
    return ensure_keys(tmp_path_factory.mktemp("keys"))


def info(path: Path, keys: SigningKeys) -> str:
    done = subprocess.run(
        ["rauc", f"--keyring={keys.ca_cert}", "info", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def test_a_signed_verity_bundle_verifies_and_one_changed_byte_does_not(
    keys: SigningKeys, tmp_path: Path
) -> None:
    good = bundle(tmp_path, keys, "2.0.0")
    verity = verity_of(info(good, keys))
    assert verity is not None and len(verity.root_hash) == 64 and verity.tree_size > 0
    size = payload_size(good, verity.tree_size)
    assert size % 4096 == 0 and size > 1024 * 1024  # the payload's random megabyte and more
    asyncio.run(verify_payload(good, verity))

    for offset in (0, size // 2, size - 1):  # the first, a middle and the last payload block
        altered = flip_byte(good, tmp_path / f"altered-{offset}.raucb", offset)
        assert verity_of(info(altered, keys)) == verity  # the signature still holds
        with pytest.raises(PayloadError, match="does not match its signed hash"):
            asyncio.run(verify_payload(altered, verity))


def test_a_damaged_layout_or_hash_tree_is_refused(keys: SigningKeys, tmp_path: Path) -> None:
    good = bundle(tmp_path, keys, "2.0.0")
    verity = verity_of(info(good, keys))
    assert verity is not None
    size = payload_size(good, verity.tree_size)
    tree = flip_byte(good, tmp_path / "tree.raucb", size + 10)  # in the hash tree
    with pytest.raises(PayloadError, match="does not match"):
        asyncio.run(verify_payload(tree, verity))
    short = truncate(good, tmp_path / "short.raucb", good.stat().st_size - 4096)
    with pytest.raises(PayloadError, match="layout is damaged"):
        payload_size(short, verity.tree_size)
    wrong_root = Verity(verity.salt, "0" * 64, verity.tree_size)
    with pytest.raises(PayloadError):
        asyncio.run(verify_payload(good, wrong_root))


def test_plain_bundles_and_unreadable_output(keys: SigningKeys, tmp_path: Path) -> None:
    plain = bundle(tmp_path, keys, "2.0.0", bundle_format="plain")
    assert verity_of(info(plain, keys)) is None  # its signature covers the whole file
    with pytest.raises(PayloadError, match="no verity salt"):
        verity_of("Bundle Format: \tverity\n  Verity Salt: \t'00'\n")
