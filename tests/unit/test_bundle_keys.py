"""Development signing keys and bundles: keys made once and kept 0600, manifests, real `rauc`."""

from __future__ import annotations

import argparse
import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.bundles import bundle, make_root
from vigil_tools.image.bundle import (
    BundleError,
    add_parser,
    make_bundle,
    manifest,
    root_version,
    run,
)
from vigil_tools.image.keys import KeysError, ensure_keys


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def rauc_info(bundle_path: Path, keyring: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rauc", f"--keyring={keyring}", "info", "--output-format=json", str(bundle_path)],
        capture_output=True,
        text=True,
    )


def test_keys_are_made_once_private_and_reused(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path / "keys")
    ca_key = tmp_path / "keys" / "ca.key.pem"
    assert mode(keys.key) == 0o600 and mode(ca_key) == 0o600
    assert mode(keys.cert) == 0o644 and mode(keys.ca_cert) == 0o644
    before = {p.name: p.read_bytes() for p in (tmp_path / "keys").iterdir()}
    again = ensure_keys(tmp_path / "keys")
    assert again == keys
    assert {p.name: p.read_bytes() for p in (tmp_path / "keys").iterdir()} == before


def test_a_lost_signing_key_is_reissued_under_the_same_ca(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path)
    ca = keys.ca_cert.read_bytes()
    keys.key.unlink()
    again = ensure_keys(tmp_path)
    assert again.ca_cert.read_bytes() == ca and mode(again.key) == 0o600
    made = bundle(tmp_path, again, "1.0.1")
    assert rauc_info(made, again.ca_cert).returncode == 0


def test_a_ca_without_its_key_is_not_replaced(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path)
    (tmp_path / "ca.key.pem").unlink()
    with pytest.raises(KeysError, match=r"ca\.key\.pem"):
        ensure_keys(tmp_path)
    assert keys.ca_cert.exists()


def test_manifest() -> None:
    assert manifest("qemu-x86_64", "1.2.0") == (
        "[update]\ncompatible=vigil-qemu-x86_64\nversion=1.2.0\ndescription=Vigil for qemu-x86_64\n"
        "\n[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.img\n"
    )
    for board, version in (("Bad Board", "1"), ("sim", "1.0\nversion=2"), ("sim", "")):
        with pytest.raises(BundleError):
            manifest(board, version)


def test_bundle_is_signed_for_the_board_and_verifies_against_the_ca(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path / "keys")
    made = bundle(tmp_path, keys, "2.0.0", board="qemu-x86_64")
    info = rauc_info(made, keys.ca_cert)
    assert info.returncode == 0, info.stderr
    manifest_json = json.loads(info.stdout)
    assert manifest_json["compatible"] == "vigil-qemu-x86_64"
    assert manifest_json["version"] == "2.0.0"
    assert [list(image) for image in manifest_json["images"]] == [["rootfs"]]
    other = ensure_keys(tmp_path / "other-keys")
    refused = rauc_info(made, other.ca_cert)
    assert refused.returncode != 0 and "signature" in refused.stderr


def test_version_defaults_to_the_roots_os_release(tmp_path: Path) -> None:
    root = make_root(tmp_path, "3.1.4")
    assert root_version(root) == "3.1.4"
    made = make_bundle("sim", root, None, tmp_path / "out" / "b.raucb", ensure_keys(tmp_path / "k"))
    assert json.loads(rauc_info(made, tmp_path / "k" / "ca.cert.pem").stdout)["version"] == "3.1.4"


def test_not_a_squashfs_is_refused(tmp_path: Path) -> None:
    not_root = tmp_path / "root.img"
    not_root.write_bytes(b"\0" * 4096)
    out = tmp_path / "b.raucb"
    with pytest.raises(BundleError, match="not a squashfs"):
        make_bundle("sim", not_root, "1.0", out, ensure_keys(tmp_path / "k"))
    assert not out.exists()


def test_bundle_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path, "4.0.0")
    out = tmp_path / "out.raucb"
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    common = ["bundle", "--board", "qemu-x86_64", "--keys", str(tmp_path / "keys")]
    assert run(parser.parse_args([*common, "--rootfs", str(root), "--out", str(out)])) == 0
    assert f"{out}: vigil-qemu-x86_64 4.0.0" in capsys.readouterr().out
    assert rauc_info(out, tmp_path / "keys" / "ca.cert.pem").returncode == 0
    missing = parser.parse_args([*common, "--rootfs", str(tmp_path / "none.squashfs")])
    assert run(missing) == 1
    assert "none.squashfs: No such file or directory" in capsys.readouterr().err
